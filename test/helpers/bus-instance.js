'use strict'
// One sse-fanout instance on a Redis bus, as a child process of a test
// (test/js/redis-bus*.test.js): a node:http server on 127.0.0.1 with
// Hub({ history: true, bus: new RedisBus(...) }). It prints one JSON line
// { port, instanceId } on stdout once listening (the bus may still be
// connecting: GET /ready waits for it).
//
// Environment: REDIS_URL, BUS_PREFIX, BUS_INSTANCE (instance id),
// BUS_OPTIONS (JSON: more RedisBus options), LIFETIME_MS (exits after it).
//
// Routes:
//   GET  /events?topics=a,b&user=u   an SSE stream (Last-Event-ID honoured)
//   POST /publish  body: JSON [{ topic?, data, event?, id?, users? }, ...]:
//                  all published in one tick (topic absent: broadcast);
//                  answers { ids } (null: sent to Redis)
//   POST /publish-async  same, through bus.publish/broadcast: { ids } once Redis answered
//   GET  /poll?since=&wait=           the catch-up endpoint
//   GET  /stats                       hub.stats() (bus included)
//   GET  /ready                       { ok } once bus.ready() settles ({ ok: false, error } if it rejects)
//   GET  /states                      every 'state' event seen, in order
//   POST /close                       hub.close(), then the process exits 0
// The process exits when its parent goes away (stdin closed) or after LIFETIME_MS.
//
// Required (not run), it gives the tests' side: startInstance(t, redis, ...)
// spawns one and returns a handle (get/post JSON, SSE streams), killed in t.after.
const { spawn } = require('node:child_process')
const httpClient = require('node:http')
const { SseParser } = require('./sse-parser')
const { within, cleanup } = require('./wait')

/** A GET or POST to an instance; resolves { status, body } (body parsed as JSON). */
function request (port, method, path, value, timeoutMs = 10000) {
  return within(new Promise((resolve, reject) => {
    const req = httpClient.request({ host: '127.0.0.1', port, method, path, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { text += c })
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode, body: JSON.parse(text) })
        } catch (err) {
          reject(new Error(`${method} ${path}: not JSON (${res.statusCode}): ${text.slice(0, 200)}`))
        }
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(value === undefined ? undefined : JSON.stringify(value))
  }), timeoutMs, `${method} ${path} on port ${port}`)
}

/**
 * An SSE stream from an instance: { events: [{ event, data, id }], status, close() }.
 * Resolves once the response head arrived.
 */
function openStream (port, path, headers = {}) {
  return within(new Promise((resolve, reject) => {
    const stream = { events: [], status: 0, req: null, close () { this.req.destroy() } }
    const parser = new SseParser((ev) => stream.events.push({ event: ev.event, data: ev.data, id: ev.lastEventId }))
    stream.req = httpClient.get({ host: '127.0.0.1', port, path, headers }, (res) => {
      stream.status = res.statusCode
      res.on('data', (chunk) => parser.push(chunk))
      res.on('error', () => {})
      resolve(stream)
    })
    stream.req.on('error', (err) => { if (stream.status === 0) reject(err) })
  }), 10000, `the SSE stream ${path} on port ${port}`)
}

/**
 * Spawns an instance on `redis`; resolves with its handle once it listens.
 * options: { prefix, instanceId, bus: more RedisBus options, lifetimeMs }
 */
async function startInstance (t, redis, { prefix, instanceId, bus = {}, lifetimeMs = 60000 } = {}) {
  // The instance is a node process that loads the addon: under
  // scripts/sanitize-js.js it keeps LD_PRELOAD (the sanitized addon needs the
  // runtimes first), unlike redis-server and redis-cli (redisEnv()).
  const env = {
    ...process.env,
    REDIS_URL: redis.url,
    BUS_PREFIX: prefix,
    BUS_INSTANCE: instanceId,
    BUS_OPTIONS: JSON.stringify(bus),
    LIFETIME_MS: String(lifetimeMs)
  }
  if (prefix === undefined) delete env.BUS_PREFIX
  if (instanceId === undefined) delete env.BUS_INSTANCE
  const child = spawn(process.execPath, [__filename], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (c) => { stderr = (stderr + c).slice(-8192) })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const stopped = cleanup(t)
  stopped(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }, `instance ${instanceId} to exit`)
  const first = await within(new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (c) => {
      out += c
      const nl = out.indexOf('\n')
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)))
    })
    child.once('exit', (code) => reject(new Error(`bus-instance exited (${code}) before listening:\n${stderr}`)))
  }), 15000, 'bus-instance to listen')
  const port = first.port
  return {
    port,
    instanceId: first.instanceId,
    child,
    exited,
    stderr: () => stderr,
    get: (path) => request(port, 'GET', path).then((r) => r.body),
    post: (path, value) => request(port, 'POST', path, value).then((r) => r.body),
    stats: () => request(port, 'GET', '/stats').then((r) => r.body),
    stream: (path, headers) => openStream(port, path, headers)
  }
}

if (require.main === module) main()
else module.exports = { startInstance, openStream, request }

function main () {
  const http = require('node:http')
  const { Hub } = require('../../lib')
  const { RedisBus } = require('../../lib/redis')

  const lifetime = setTimeout(() => {
    process.stderr.write('bus-instance: lifetime over\n')
    process.exit(3)
  }, Number(process.env.LIFETIME_MS) || 60000)
  lifetime.unref()
  process.stdin.on('end', () => process.exit(0))
  process.stdin.on('error', () => process.exit(0))
  process.stdin.resume()

  const bus = new RedisBus({
    url: process.env.REDIS_URL,
    prefix: process.env.BUS_PREFIX,
    instanceId: process.env.BUS_INSTANCE,
    ...JSON.parse(process.env.BUS_OPTIONS || '{}')
  })
  const states = []
  bus.on('state', (s) => states.push(s))
  bus.on('warning', (w) => process.stderr.write(`bus-instance ${bus.instanceId}: warning ${w.message}\n`))
  const hub = new Hub({ history: true, bus, heartbeatMs: 0 })

  function body (req) {
    return new Promise((resolve, reject) => {
      let text = ''
      req.setEncoding('utf8')
      req.on('data', (c) => { text += c })
      req.on('end', () => resolve(text))
      req.on('error', reject)
    })
  }

  function json (res, status, value) {
    res.writeHead(status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(value))
  }

  async function route (req, res) {
    const url = new URL(req.url, 'http://x')
    if (url.pathname === '/events') {
      const topics = url.searchParams.get('topics')
      hub.accept(req, res, { topics: topics ? topics.split(',') : [], user: url.searchParams.get('user') || undefined })
    } else if (url.pathname === '/publish' || url.pathname === '/publish-async') {
      const events = JSON.parse(await body(req))
      const sync = url.pathname === '/publish'
      const ids = events.map((e) => {
        const opts = { event: e.event, id: e.id, users: e.users }
        if (sync) return e.topic === undefined ? hub.broadcast(e.data, opts) : hub.publish(e.topic, e.data, opts)
        return e.topic === undefined ? bus.broadcast(e.data, opts) : bus.publish(e.topic, e.data, opts)
      })
      json(res, 200, { ids: sync ? ids : await Promise.all(ids) })
    } else if (url.pathname === '/poll') {
      hub.poll(req, res)
    } else if (url.pathname === '/stats') {
      json(res, 200, hub.stats())
    } else if (url.pathname === '/ready') {
      try {
        await bus.ready()
        json(res, 200, { ok: true })
      } catch (err) {
        json(res, 200, { ok: false, error: err.message })
      }
    } else if (url.pathname === '/states') {
      json(res, 200, states)
    } else if (url.pathname === '/close') {
      await hub.close()
      json(res, 200, { ok: true })
      server.close()
      setImmediate(() => process.exit(0))
    } else {
      json(res, 404, { error: 'no route' })
    }
  }

  const server = http.createServer((req, res) => {
    route(req, res).catch((err) => {
      if (!res.headersSent) json(res, 500, { error: err.message, code: err.code })
      else res.destroy()
    })
  })
  server.listen(0, '127.0.0.1', () => {
    process.stdout.write(JSON.stringify({ port: server.address().port, instanceId: bus.instanceId }) + '\n')
  })
}
