'use strict'
// Demo: a plain node:http server with native SSE fan-out.
//
//   GET  /                    the live dashboard (examples/dashboard/): this tab's
//                             stream state, live charts, a box to publish
//   GET  /dashboard/*.js|css  the dashboard's own files (read once at start)
//   GET  /events?topics=a,b   SSE stream subscribed to the listed topics; resumes
//                             after Last-Event-ID (or ?lastEventId=) from the history;
//                             gzip or deflate when the request's Accept-Encoding
//                             takes one (identity otherwise)
//   POST /publish?topic=a     publishes the request body as one event; answers
//                             202 { ok: true, id } with the event's id (with
//                             REDIS_URL: the id Redis gave it; null when it
//                             waits in the bus's outbox for Redis)
//   GET  /poll?topics=a&since=ID[&wait=S]
//                             the catch-up endpoint: the events after ID as JSON
//                             (204: nothing new; wait: long-poll up to S seconds)
//   GET  /stats               hub counters and process memory, as JSON (with
//                             REDIS_URL: `bus`, the bus's state and counters)
//   GET  /dashboard/stats     SSE: event `stats` every second, the main hub's
//                             cumulative counters (the page computes rates),
//                             disconnects by reason, memory and history; a new
//                             stream first gets the last 120 s of samples
//   GET  /sse-fanout-client.js
//                             the browser module (sse-fanout/client, serveClient()):
//                             `import { SseClient } from '/sse-fanout-client.js'`
//
// PORT (default 3000; 0 picks a free one), HOST (default 127.0.0.1).
//
// NATIVE_PORT (default: none; 0 picks a free one) also serves
// GET /events?topics=a,b on that port through the native listener
// (hub.listen(), docs/listener.md): the I/O threads accept, parse and open
// the streams themselves, with no JS object per connection. Same stream as
// on PORT (topics, Last-Event-ID or ?lastEventId=, retry, gzip/deflate, CORS
// *, anonymous); /publish, /poll, /stats and the dashboard stay on PORT.
//
// REDIS_URL (redis:// or rediss://; default: none) puts the main hub on a
// Redis bus (sse-fanout/redis, docs/redis.md; Redis 7 or later and
// @redis/client): every demo started with the same REDIS_URL (and
// REDIS_PREFIX) is one hub for /events, /publish and /poll, with one order
// and one set of ids, so a client may reconnect or poll on any of them.
// REDIS_PREFIX (default sse-fanout:{default}) is the hub's key prefix in
// Redis; it must hold a hash tag (`demo:{news}`). The dashboard's own stats
// stay per process. Three on one Redis:
//   for p in 3001 3002 3003; do REDIS_URL=redis://127.0.0.1:6379 PORT=$p npm start & done
//
// What is open: every stream is readable by anyone who can reach the server
// (any topic, CORS *). POST /publish takes the raw body, whatever its content
// type, so without PUBLISH_TOKEN any web page its visitors open can publish
// with a cross-origin simple POST (text/plain or a form). With PUBLISH_TOKEN
// set, /publish needs `Authorization: Bearer <token>` (401 otherwise); that
// header makes a cross-origin POST preflighted, and no CORS is granted here.
const crypto = require('node:crypto')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { Hub, SseError, serveClient } = require('..')
const { RedisBus } = require('../lib/redis')

const port = Number(process.env.PORT || 3000)
const host = process.env.HOST || '127.0.0.1'
const publishToken = process.env.PUBLISH_TOKEN || ''
const redisUrl = process.env.REDIS_URL || ''
const redisPrefix = process.env.REDIS_PREFIX || undefined
const nativePort = process.env.NATIVE_PORT === undefined || process.env.NATIVE_PORT === '' ? null : Number(process.env.NATIVE_PORT)
const maxBody = 64 * 1024
// The demo listens on 127.0.0.1 and is load-tested from there (thousands of
// streams from one address), so it lifts maxConnectionsPerIp (default 256).
// A public server keeps a limit, and behind a proxy passes accept()'s `ip`.
// History on: a client that reconnects gets exactly what it missed. With
// positionEvent each stream also carries its position as a visible
// `sse-position` event (after a replay, in each heartbeat): SseClient keeps it
// as its cursor and, when it stops coming, knows the stream has stalled.
// With REDIS_URL, the history is the Redis stream's (the bus needs history).
// Compression on: a client sending Accept-Encoding: gzip (or deflate) gets a
// compressed stream, each event compressed once for all of them; one without
// gets identity (README.md, "Compression").
const bus = redisUrl === '' ? null : new RedisBus({ url: redisUrl, prefix: redisPrefix })
const hub = new Hub({ maxConnectionsPerIp: 0, history: { positionEvent: true }, bus, compression: true })

// The dashboard's figures travel over SSE too, from a second, small hub (no
// history: a sample is of interest only live); its streams do not count in
// the main hub's figures. Every STATS_MS a sample of the main hub's counters
// goes to every dashboard, and a new dashboard first gets the samples of the
// last STATS_KEEP_MS, so its charts have a past from the start.
const STATS_MS = 1000
const STATS_KEEP_MS = 120 * 1000
const statsHub = new Hub({ threads: 1 })
const recentSamples = []
// Cumulative, from the main hub's 'disconnect' events (every reason listed
// from the start, so a chart has its line before the first disconnect).
const disconnects = { client: 0, slow: 0, kicked: 0, error: 0, timeout: 0, shutdown: 0 }

function statsSample () {
  const s = hub.stats()
  const { rss, heapUsed } = process.memoryUsage()
  return {
    t: Date.now(),
    connections: s.connections,
    subscriptions: s.subscriptions,
    published: s.published,
    delivered: s.delivered,
    bytesWritten: s.bytesWritten,
    queueBytes: s.queueBytes,
    slow: s.slow,
    heartbeats: s.heartbeats,
    disconnects: { ...disconnects },
    rss,
    heapUsed,
    history: s.history === null ? null : { events: s.history.events, bytes: s.history.bytes, latest: s.history.latest }
  }
}

const statsTimer = setInterval(() => {
  const sample = statsSample()
  recentSamples.push(sample)
  while (recentSamples.length > 0 && recentSamples[0].t <= sample.t - STATS_KEEP_MS) recentSamples.shift()
  statsHub.publish('stats', sample, { event: 'stats' })
}, STATS_MS)
statsTimer.unref() // the server keeps the process alive, not the sampling

statsHub.on('connect', ({ id }) => {
  for (const sample of recentSamples) statsHub.send(id, sample, { event: 'stats' })
})

// The dashboard's files, read once at start. The page runs only its own
// scripts and styles (no inline script, no other origin): the CSP says so.
const DASHBOARD_DIR = path.join(__dirname, 'dashboard')
const PAGE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "img-src 'self' data:",
  "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"
].join('; ')
const dashboardFiles = new Map([
  ['/', ['index.html', 'text/html; charset=utf-8']],
  ['/dashboard/dashboard.js', ['dashboard.js', 'text/javascript; charset=utf-8']],
  ['/dashboard/dashboard.css', ['dashboard.css', 'text/css; charset=utf-8']]
].map(([urlPath, [file, type]]) => [urlPath, { type, body: fs.readFileSync(path.join(DASHBOARD_DIR, file)) }]))

/** Answers GET or HEAD of a dashboard file. */
function serveDashboardFile (req, res, { type, body }) {
  res.writeHead(200, {
    'content-type': type,
    'content-length': body.length,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'content-security-policy': PAGE_CSP,
    'referrer-policy': 'no-referrer'
  })
  res.end(req.method === 'HEAD' ? undefined : body)
}

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
  if ((req.method === 'GET' || req.method === 'HEAD') && dashboardFiles.has(url.pathname)) {
    serveDashboardFile(req, res, dashboardFiles.get(url.pathname))
    return
  }
  if (req.method === 'GET' && url.pathname === '/dashboard/stats') {
    try {
      statsHub.accept(req, res, { topics: ['stats'], retry: { min: 1000, max: 3000 } })
    } catch (err) {
      json(res, err.statusCode || (err instanceof SseError ? 400 : 500), { error: err.code, message: err.message })
    }
    return
  }
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
    req.on('end', async () => {
      const topic = url.searchParams.get('topic') || ''
      const options = { event: url.searchParams.get('event') || undefined }
      try {
        // With a bus: the id once Redis gave it (a local one while Redis is
        // down, null while the event waits for Redis); an event Redis refuses
        // rejects with an SseError, as bad input does here.
        const id = bus === null
          ? hub.publish(topic, Buffer.concat(chunks), options)
          : await bus.publish(topic, Buffer.concat(chunks), options)
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
    const body = { ...s, rss: process.memoryUsage().rss }
    if (nativeListener !== null) body.nativeListener = { port: nativeListener.port, ...nativeListener.stats() }
    json(res, 200, body)
    return
  }
  json(res, 404, { error: 'not found' })
})

if (bus !== null) {
  bus.on('state', ({ state, reason }) => console.log(`redis bus ${bus.instanceId}: ${state} (${reason})`))
  bus.on('warning', ({ message }) => console.log(`redis bus ${bus.instanceId}: ${message}`))
}

/** REDIS_URL as the log shows it: without its password. */
function shownUrl (text) {
  try {
    const u = new URL(text)
    u.password = ''
    return u.href
  } catch {
    return '(REDIS_URL)'
  }
}

hub.on('disconnect', ({ id, reason }) => {
  disconnects[reason] = (disconnects[reason] || 0) + 1
  if (reason !== 'client' && reason !== 'shutdown') console.log(`connection ${id} closed: ${reason}`)
})

// The native listener, when NATIVE_PORT asks for it: the same /events as
// PORT's (the hub's history and compression, retry 1-3 s, CORS *).
let nativeListener = null
const nativeListening = nativePort === null
  ? Promise.resolve(null)
  : hub.listen({ port: nativePort, host, path: '/events', retry: { min: 1000, max: 3000 }, cors: true, maxConnectionsPerIp: 0 })
    .then((l) => { nativeListener = l; return l })
nativeListening.catch((err) => {
  console.error(`sse-fanout demo: NATIVE_PORT ${nativePort}: ${err.message}`)
  process.exit(1)
})

server.listen(port, host, async () => {
  const base = `http://${host}:${server.address().port}`
  const listener = await nativeListening
  const auth = publishToken === '' ? '' : ' -H "Authorization: Bearer $PUBLISH_TOKEN"'
  console.log(`sse-fanout demo on ${base} (${hub.options.threads} I/O thread(s))`)
  console.log(bus === null
    ? '  no Redis bus (set REDIS_URL to make several demos one hub)'
    : `  redis bus: ${shownUrl(redisUrl)} prefix ${bus.options.prefix}, instance ${bus.instanceId} (${bus.state})`)
  console.log('  open: GET /events (any topic, CORS *) and GET /stats to anyone who can reach it')
  console.log(publishToken === ''
    ? '  open: POST /publish to anyone, any web page included (set PUBLISH_TOKEN to require a bearer token)'
    : '  POST /publish needs Authorization: Bearer $PUBLISH_TOKEN')
  console.log(`  dashboard: ${base}/`)
  console.log(`  curl -N '${base}/events?topics=news'`)
  if (listener !== null) console.log(`  native listener: curl -N 'http://${host}:${listener.port}/events?topics=news'`)
  console.log(`  curl -X POST${auth} --data 'hello' '${base}/publish?topic=news'`)
})

async function shutdown () {
  clearInterval(statsTimer)
  server.close()
  if (nativeListener !== null) await nativeListener.close()
  await Promise.all([hub.close(), statsHub.close()])
  process.exit(0)
}
process.once('SIGINT', shutdown)
process.once('SIGTERM', shutdown)
