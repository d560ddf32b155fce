'use strict'
// Demo: a plain node:http server with native SSE fan-out.
//
//   GET  /events?topics=a,b   SSE stream subscribed to the listed topics; resumes
//                             after Last-Event-ID (or ?lastEventId=) from the history
//   POST /publish?topic=a     publishes the request body as one event; answers
//                             202 { ok: true, id } with the event's id
//   GET  /poll?topics=a&since=ID[&wait=S]
//                             the catch-up endpoint: the events after ID as JSON
//                             (204: nothing new; wait: long-poll up to S seconds)
//   GET  /stats               hub counters and process memory, as JSON
//   GET  /sse-fanout-client.js
//                             the browser module (sse-fanout/client, serveClient()):
//                             `import { SseClient } from '/sse-fanout-client.js'`
//
// PORT (default 3000; 0 picks a free one), HOST (default 127.0.0.1).
//
// What is open: every stream is readable by anyone who can reach the server
// (any topic, CORS *). POST /publish takes the raw body, whatever its content
// type, so without PUBLISH_TOKEN any web page its visitors open can publish
// with a cross-origin simple POST (text/plain or a form). With PUBLISH_TOKEN
// set, /publish needs `Authorization: Bearer <token>` (401 otherwise); that
// header makes a cross-origin POST preflighted, and no CORS is granted here.
const crypto = require('node:crypto')
const http = require('node:http')
const { Hub, SseError, serveClient } = require('..')

const port = Number(process.env.PORT || 3000)
const host = process.env.HOST || '127.0.0.1'
const publishToken = process.env.PUBLISH_TOKEN || ''
const maxBody = 64 * 1024
// The demo listens on 127.0.0.1 and is load-tested from there (thousands of
// streams from one address), so it lifts maxConnectionsPerIp (default 256).
// A public server keeps a limit, and behind a proxy passes accept()'s `ip`.
// History on: a client that reconnects gets exactly what it missed.
const hub = new Hub({ maxConnectionsPerIp: 0, history: true })

/** Whether the request carries `Authorization: Bearer <PUBLISH_TOKEN>` (or no token is set). */
function mayPublish (req) {
  if (publishToken === '') return true
  const given = Buffer.from(String(req.headers.authorization || ''))
  const expected = Buffer.from(`Bearer ${publishToken}`)
  return given.length === expected.length && crypto.timingSafeEqual(given, expected)
}

function json (res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost')
  if (req.method === 'GET' && url.pathname === '/events') {
    const topics = (url.searchParams.get('topics') || '').split(',').filter(Boolean)
    res.setHeader('access-control-allow-origin', '*')
    try {
      // A reconnect storm spreads out: each stream draws its retry from the range.
      hub.accept(req, res, { topics, retry: { min: 1000, max: 3000 } })
    } catch (err) {
      // statusCode: 429 past maxConnectionsPerIp, 503 when the hub is full.
      json(res, err.statusCode || (err instanceof SseError ? 400 : 500), { error: err.code, message: err.message })
    }
    return
  }
  if (req.method === 'POST' && url.pathname === '/publish') {
    if (!mayPublish(req)) {
      req.resume()
      json(res, 401, { error: 'unauthorized' })
      return
    }
    const chunks = []
    let size = 0
    req.on('data', (c) => {
      size += c.length
      if (size > maxBody) {
        json(res, 413, { error: 'body too large' })
        req.destroy()
      } else {
        chunks.push(c)
      }
    })
    req.on('end', () => {
      try {
        const id = hub.publish(url.searchParams.get('topic') || '', Buffer.concat(chunks), {
          event: url.searchParams.get('event') || undefined
        })
        json(res, 202, { ok: true, id })
      } catch (err) {
        // ERR_SSE_QUEUE_FULL: the I/O threads are behind; the client may retry.
        const status = err.code === 'ERR_SSE_QUEUE_FULL' ? 503 : err instanceof SseError ? 400 : 500
        json(res, status, { error: err.code, message: err.message })
      }
    })
    return
  }
  if (req.method === 'GET' && url.pathname === '/poll') {
    const topics = (url.searchParams.get('topics') || '').split(',').filter(Boolean)
    res.setHeader('access-control-allow-origin', '*')
    hub.poll(req, res, { topics })
    return
  }
  if (url.pathname === '/sse-fanout-client.js') {
    // Any page may import it (a module script cross-origin needs CORS).
    res.setHeader('access-control-allow-origin', '*')
    serveClient(req, res) // GET and HEAD; 405 for other methods
    return
  }
  if (req.method === 'GET' && url.pathname === '/stats') {
    const s = hub.stats()
    json(res, 200, { ...s, rss: process.memoryUsage().rss })
    return
  }
  json(res, 404, { error: 'not found' })
})

hub.on('disconnect', ({ id, reason }) => {
  if (reason !== 'client' && reason !== 'shutdown') console.log(`connection ${id} closed: ${reason}`)
})

server.listen(port, host, () => {
  const base = `http://${host}:${server.address().port}`
  const auth = publishToken === '' ? '' : ' -H "Authorization: Bearer $PUBLISH_TOKEN"'
  console.log(`sse-fanout demo on ${base} (${hub.options.threads} I/O thread(s))`)
  console.log('  open: GET /events (any topic, CORS *) and GET /stats to anyone who can reach it')
  console.log(publishToken === ''
    ? '  open: POST /publish to anyone, any web page included (set PUBLISH_TOKEN to require a bearer token)'
    : '  POST /publish needs Authorization: Bearer $PUBLISH_TOKEN')
  console.log(`  curl -N '${base}/events?topics=news'`)
  console.log(`  curl -X POST${auth} --data 'hello' '${base}/publish?topic=news'`)
})

async function shutdown () {
  server.close()
  await hub.close()
  process.exit(0)
}
process.once('SIGINT', shutdown)
process.once('SIGTERM', shutdown)
