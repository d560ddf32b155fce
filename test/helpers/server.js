'use strict'
// An HTTP(S) server on 127.0.0.1 that hands every request to a Hub.
//
// The request says what it wants in its query string:
//   /sse?tag=7&t=a&t=room%2F*&user=u1&retry=1000
// tag names the client (the client process's connection index), t is a topic
// (repeatable), user and retry become accept() options. The server records
// tag -> connection ({ id, transport, user }) and every accept() error.

const http = require('node:http')
const https = require('node:https')
const { within } = require('./wait')

/** The request path for one client. */
function ssePath ({ tag, topics = [], user, retry, extra }) {
  const q = new URLSearchParams()
  q.set('tag', String(tag))
  for (const t of topics) q.append('t', t)
  if (user !== undefined) q.set('user', user)
  if (retry !== undefined) q.set('retry', String(retry))
  if (extra) for (const [k, v] of Object.entries(extra)) q.set(k, v)
  return `/sse?${q}`
}

/**
 * @param {import('../..').Hub} hub
 * @param {{ tls?: { key, cert }, beforeAccept?: (req, res, url) => void }} [options]
 */
async function startServer (hub, options = {}) {
  const conns = new Map() // tag -> connection
  const errors = [] // { tag, error }
  const onRequest = (req, res) => {
    const url = new URL(req.url, 'http://localhost')
    const tag = Number(url.searchParams.get('tag'))
    const accept = { topics: url.searchParams.getAll('t') }
    if (url.searchParams.has('user')) accept.user = url.searchParams.get('user')
    if (url.searchParams.has('retry')) accept.retry = Number(url.searchParams.get('retry'))
    if (options.beforeAccept) options.beforeAccept(req, res, url)
    try {
      const conn = hub.accept(req, res, accept)
      conns.set(tag, conn)
    } catch (error) {
      errors.push({ tag, error })
      if (!res.headersSent) {
        res.statusCode = 400
        res.setHeader('content-type', 'text/plain')
      }
      res.end(String(error.code || error.message))
    }
  }
  const server = options.tls
    ? https.createServer({ key: options.tls.key, cert: options.tls.cert }, onRequest)
    : http.createServer(onRequest)
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    // 1000 clients connect at once: keep the accept queue deep enough.
    server.listen({ host: '127.0.0.1', port: 0, backlog: 2048 }, resolve)
  })
  const port = server.address().port
  let closed = null
  return {
    server,
    port,
    conns,
    errors,
    /** The connection of a tag; throws when the tag was never accepted. */
    conn (tag) {
      const c = conns.get(tag)
      if (!c) throw new Error(`no connection accepted for tag ${tag}`)
      return c
    },
    close () {
      if (!closed) {
        closed = within(new Promise((resolve) => {
          server.close(() => resolve())
          server.closeAllConnections()
        }), 5000, 'server.close()')
      }
      return closed
    }
  }
}

/** Records the hub's 'disconnect' events. */
function recordDisconnects (hub) {
  const byId = new Map() // id -> [reasons...]
  const list = []
  hub.on('disconnect', (ev) => {
    list.push(ev)
    if (!byId.has(ev.id)) byId.set(ev.id, [])
    byId.get(ev.id).push(ev.reason)
  })
  return { byId, list }
}

module.exports = { startServer, ssePath, recordDisconnects }
