'use strict'
// A server under test for the benchmark, in one of four implementations that
// share one contract (so the runner and the load generator treat them alike):
//
//   GET  /events?topics=a,b               an SSE stream subscribed to those topics
//   POST /publish?topic=T&count=C&size=S  C events back to back in one JS job,
//                                          to topic T (absent: broadcast); each
//                                          event's data is "<CLOCK_MONOTONIC ns> "
//                                          padded to S bytes
//   POST /cost?topic=T&n=N&size=S          times N publishes on the JS thread
//                                          and answers { nsPerPublish }
//   GET  /warm                            answered and closed at once (memory baseline)
//   GET  /stats[?reset=1]                  connections, memory, event-loop delay
//                                          and utilisation since the last reset
//
// Usage: node node-server.js <native|js|plain|better-sse> [port]
// Prints "LISTENING <port>" once ready.
const http = require('node:http')
const { monitorEventLoopDelay, performance } = require('node:perf_hooks')

const impl = process.argv[2]
const port = Number(process.argv[3] || 0)

function payload (size) {
  const head = `${process.hrtime.bigint()} `
  return size > head.length ? head + 'x'.repeat(size - head.length) : head
}

// Each implementation: accept(req, res, topics), publish(topic|null, data), count().
function makeImpl (name) {
  if (name === 'native' || name === 'js') {
    const { Hub } = require('../..')
    const hub = new Hub({ transport: name === 'js' ? 'js' : 'auto', heartbeatMs: 0 })
    return {
      accept: (req, res, topics) => hub.accept(req, res, { topics }),
      publish: (topic, data) => topic ? hub.publish(topic, data) : hub.broadcast(data),
      count: () => hub.stats().connections,
      close: () => hub.close()
    }
  }
  if (name === 'plain') {
    // What people write by hand: a Set of responses per topic and a write loop.
    const all = new Set()
    const byTopic = new Map()
    return {
      accept (req, res, topics) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
        res.flushHeaders()
        all.add(res)
        for (const t of topics) {
          if (!byTopic.has(t)) byTopic.set(t, new Set())
          byTopic.get(t).add(res)
        }
        res.on('close', () => {
          all.delete(res)
          for (const t of topics) byTopic.get(t)?.delete(res)
        })
      },
      publish (topic, data) {
        const frame = `data: ${data}\n\n`
        const targets = topic ? byTopic.get(topic) : all
        if (targets) for (const res of targets) res.write(frame)
      },
      count: () => all.size,
      close: async () => { for (const res of all) res.end() }
    }
  }
  if (name === 'better-sse') {
    const { createSession, createChannel } = require('better-sse')
    const everyone = createChannel()
    const channels = new Map()
    const channel = (t) => {
      if (!channels.has(t)) channels.set(t, createChannel())
      return channels.get(t)
    }
    return {
      async accept (req, res, topics) {
        // Data goes out as is (the default would JSON-quote the timestamped string).
        const session = await createSession(req, res, { serializer: String })
        everyone.register(session)
        for (const t of topics) channel(t).register(session)
      },
      publish (topic, data) {
        const target = topic ? channels.get(topic) : everyone
        if (target) target.broadcast(data)
      },
      count: () => everyone.sessionCount,
      close: async () => {}
    }
  }
  throw new Error(`unknown implementation ${name}`)
}

const server = makeImpl(impl)
const eld = monitorEventLoopDelay({ resolution: 1 })
eld.enable()
let eluStart = performance.eventLoopUtilization()

function json (res, body) {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

const httpServer = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x')
  const q = url.searchParams
  if (url.pathname === '/events') {
    const topics = (q.get('topics') || '').split(',').filter(Boolean)
    server.accept(req, res, topics)
    return
  }
  if (url.pathname === '/warm') {
    // Accepted and answered at once: warms Node's HTTP path for the memory scenario.
    res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' })
    res.end('warm')
    return
  }
  if (url.pathname === '/publish') {
    const count = Number(q.get('count') || 1)
    const size = Number(q.get('size') || 256)
    const topic = q.get('topic')
    for (let i = 0; i < count; i++) server.publish(topic, payload(size))
    res.writeHead(204, { 'content-length': 0 })
    res.end()
    return
  }
  if (url.pathname === '/cost') {
    const n = Number(q.get('n') || 10000)
    const size = Number(q.get('size') || 256)
    const topic = q.get('topic')
    const data = payload(size)
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < n; i++) server.publish(topic, data)
    const t1 = process.hrtime.bigint()
    json(res, { nsPerPublish: Number(t1 - t0) / n })
    return
  }
  if (url.pathname === '/stats') {
    if (q.get('gc') === '1' && global.gc) { global.gc(); global.gc() }
    const mem = process.memoryUsage()
    const elu = performance.eventLoopUtilization(eluStart)
    const body = {
      connections: server.count(),
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      eldP50Ms: eld.percentile(50) / 1e6,
      eldP99Ms: eld.percentile(99) / 1e6,
      eldMaxMs: eld.max / 1e6,
      elu: elu.utilization
    }
    if (q.get('reset') === '1') {
      eld.reset()
      eluStart = performance.eventLoopUtilization()
    }
    json(res, body)
    return
  }
  res.writeHead(404)
  res.end()
})
httpServer.keepAliveTimeout = 60000
httpServer.maxConnections = 20000
httpServer.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${httpServer.address().port}\n`)
})
process.on('SIGTERM', async () => {
  httpServer.close()
  await server.close()
  process.exit(0)
})
