'use strict'
// Raw HTTP helpers for the PocketBase realtime endpoints (no SDK):
//   startRealtimeApp(kind, options)  a Fastify app with fastifyRealtime, an Express
//                                    app with expressRealtime, or a node:http server
//                                    with realtime.handler, on 127.0.0.1:0
//   openStream(port, opts)           GET /api/realtime, keeping the raw text and the
//                                    parsed events (test/helpers/sse-parser.js)
//   post(port, body, opts)           POST /api/realtime (JSON, or a string as is)
//   assertPbError(res, status, message, data)   the exact PocketBase error body

const assert = require('node:assert/strict')
const http = require('node:http')
const { SseParser } = require('./sse-parser')
const { waitFor, within } = require('./wait')

const PATH = '/api/realtime'

/**
 * @param {'fastify' | 'express' | 'http'} kind
 * @param {object} options Realtime options (authenticate, checkIp, maxBodyBytes, ...)
 */
async function startRealtimeApp (kind, options = {}) {
  // Required lazily: the module may not exist yet when this file is loaded.
  const { Realtime, fastifyRealtime, expressRealtime } = require('../../lib/pocketbase')
  if (kind === 'fastify') {
    const app = require('fastify')({ logger: false })
    await app.register(fastifyRealtime, options)
    await app.listen({ host: '127.0.0.1', port: 0 })
    return { kind, app, realtime: app.pocketbase, port: app.server.address().port, close: () => app.close() }
  }
  const realtime = new Realtime(options)
  let server
  if (kind === 'express') {
    const app = require('express')()
    app.use(expressRealtime(realtime))
    app.use((req, res) => { res.status(404).json({ data: {}, message: 'not here', status: 404 }) })
    server = http.createServer(app)
  } else {
    server = http.createServer((req, res) => {
      if (new URL(req.url, 'http://x').pathname === PATH) return realtime.handler(req, res)
      res.statusCode = 404
      res.end()
    })
  }
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, resolve)
  })
  let closing = null
  return {
    kind,
    server,
    realtime,
    port: server.address().port,
    close () {
      if (!closing) {
        closing = (async () => {
          await realtime.close()
          await new Promise((resolve) => {
            server.close(() => resolve())
            server.closeAllConnections()
          })
        })()
      }
      return within(closing, 10000, `${kind} app close`)
    }
  }
}

/**
 * Opens GET /api/realtime on its own socket. Resolves with the response head;
 * s.raw grows with the body text, s.events with the parsed events.
 */
function openStream (port, { localAddress = '127.0.0.1', headers = {} } = {}) {
  return within(new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: PATH, localAddress, agent: false, headers }, (res) => {
      const s = {
        status: res.statusCode,
        headers: res.headers,
        raw: '',
        events: [],
        ended: false,
        cid: null,
        close: () => req.destroy(),
        /** Complete frames (blank-line separated blocks) as arrays of lines, comments left out. */
        frames () {
          const blocks = s.raw.split('\n\n')
          blocks.pop() // incomplete (or empty) tail
          return blocks.map((b) => b.split('\n')).filter((lines) => lines.some((l) => !l.startsWith(':')))
        },
        /** Events after the first `skip` ones, by name. */
        names (skip = 0) { return s.events.slice(skip).map((e) => e.event) },
        wait (n, timeoutMs = 5000) {
          return waitFor(() => s.events.length >= n, timeoutMs,
            () => `${n} events on the stream (got ${s.events.length}: ${JSON.stringify(s.raw.slice(0, 2000))})`)
        },
        async connected () {
          await s.wait(1)
          s.cid = s.events[0].lastEventId
          return s.cid
        }
      }
      const parser = new SseParser((ev) => s.events.push(ev))
      res.setEncoding('utf8')
      res.on('data', (chunk) => { s.raw += chunk; parser.push(chunk) })
      res.on('end', () => { s.ended = true })
      res.on('error', () => {})
      resolve(s)
    })
    req.on('error', reject)
  }), 5000, 'GET /api/realtime response head')
}

/**
 * POST /api/realtime. `body` is JSON-encoded unless it is a string or Buffer.
 * @returns {Promise<{ status: number, headers: object, body: string }>}
 */
function post (port, body, { headers = {}, localAddress = '127.0.0.1', type = 'application/json', auth } = {}) {
  const payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body)
  const h = { 'content-type': type, 'content-length': Buffer.byteLength(payload), ...headers }
  if (auth !== undefined) h.authorization = auth
  return within(new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: PATH, localAddress, agent: false, headers: h }, (res) => {
      let data = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { data += c })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  }), 5000, 'POST /api/realtime')
}

/**
 * The PocketBase error body, exactly: {"data":...,"message":...,"status":N}
 * (key order as PocketBase writes it; one trailing newline allowed, as Go's encoder writes).
 */
function assertPbError (res, status, message, data = {}, what = '') {
  const expected = { data, message, status }
  assert.equal(res.status, status, `${what} status (body ${res.body})`)
  assert.match(String(res.headers['content-type']), /^application\/json/, `${what} content-type`)
  assert.deepEqual(JSON.parse(res.body), expected, `${what} body`)
  assert.equal(res.body.replace(/\n$/, ''), JSON.stringify(expected), `${what} body bytes (key order)`)
}

module.exports = { startRealtimeApp, openStream, post, assertPbError, PATH }
