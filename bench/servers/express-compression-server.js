'use strict'
// The compression scenario's baseline (bench/scenarios/compression.js): what an
// Express app does to compress Server-Sent Events, the way the `compression`
// middleware's README shows it: `app.use(compression())`, then per event
// `res.write(frame)` and `res.flush()`. Each response has its own zlib stream
// (gzip or deflate as Accept-Encoding offers; the middleware's defaults, level
// 6), so every event is compressed once per connection, on libuv's threadpool,
// with the stream's whole window as context. The same contract as
// servers/node-server.js, as far as the scenario uses it:
//
//   GET  /events?topics=a,b               an SSE stream on those topics (exact names)
//   POST /publish?topic=T&count=C&size=S[&kind=json]
//                                          C events back to back in one JS job (data
//                                          from servers/payloads.js, as node-server.js)
//   POST /cost?topic=T&n=N&size=S[&kind=json]
//                                          N publishes, each timed on the JS thread,
//                                          one per event-loop turn: { nsPerPublish, p90, p99 }
//   GET  /warm                            answered and closed at once
//   GET  /stats[?gc=1]                    connections, rss, heapUsed, cpuUs (the
//                                          process's CPU time, every thread), eld, elu
// and a PocketBase realtime stream by hand, to compare with node-server.js's
// (lib/pocketbase on the hub): the same PB_CONNECT and record frames
// ("id:<clientId>", "event:<topic>", data {"record":{...},"action":"create"}):
//   GET  /api/realtime                    a client subscribed to posts/* (PB_CONNECT first)
//   POST /pb/burst?count=C                C records back to back: { totalNs }
//   POST /pb/cost?n=N                     N records, each timed: { medianNs, p90Ns, p99Ns }
//
// Usage: node express-compression-server.js [port]; prints "LISTENING <port>".
const crypto = require('node:crypto')
const { monitorEventLoopDelay, performance } = require('node:perf_hooks')
const express = require('express')
const compression = require('compression')
const payloads = require('./payloads')

const port = Number(process.argv[2] || 0)
const topics = new Map() // topic -> Set of responses
const realtime = new Map() // response -> clientId (PocketBase clients, all on posts/*)
let connections = 0
let seq = 0
let pbSeq = 0
const eld = monitorEventLoopDelay({ resolution: 1 })
eld.enable()
let eluStart = performance.eventLoopUtilization()

function open (res) {
  res.setHeader('content-type', 'text/event-stream')
  res.setHeader('cache-control', 'no-cache')
  res.setHeader('connection', 'keep-alive')
  res.flushHeaders()
}

function send (res, frame) {
  res.write(frame)
  res.flush() // the middleware's way to push what zlib holds (Z_SYNC_FLUSH)
}

function publish (topic, data) {
  const set = topics.get(topic)
  if (!set) return
  const frame = `data: ${data}\n\n`
  for (const res of set) send(res, frame)
}

function broadcastRecord (record) {
  const data = JSON.stringify({ record, action: 'create' })
  for (const [res, clientId] of realtime) send(res, `id:${clientId}\nevent:posts/*\ndata:${data}\n\n`)
}

function clockNs () {
  let clock = 0n
  for (let i = 0; i < 1000; i++) {
    const a = process.hrtime.bigint()
    clock += process.hrtime.bigint() - a
  }
  return Number(clock) / 1000
}

// Each call timed on its own, the event loop turning in between; the median
// less the cost of reading the clock.
function timed (n, call, done) {
  const clock = clockNs()
  const samples = []
  const step = () => {
    const t0 = process.hrtime.bigint()
    call()
    samples.push(Number(process.hrtime.bigint() - t0) - clock)
    if (samples.length < n) {
      setImmediate(step)
      return
    }
    samples.sort((a, b) => a - b)
    const at = (f) => samples[Math.min(n - 1, Math.floor(n * f))]
    done({ medianNs: at(0.5), p90Ns: at(0.9), p99Ns: at(0.99), n })
  }
  step()
}

const app = express()
app.use(compression())

app.get('/events', (req, res) => {
  const wanted = String(req.query.topics || '').split(',').filter(Boolean)
  open(res)
  connections++
  for (const t of wanted) {
    if (!topics.has(t)) topics.set(t, new Set())
    topics.get(t).add(res)
  }
  res.on('close', () => {
    connections--
    for (const t of wanted) topics.get(t)?.delete(res)
  })
})

app.get('/api/realtime', (req, res) => {
  const clientId = crypto.randomBytes(20).toString('hex') // 40 characters, as PocketBase's
  open(res)
  connections++
  send(res, `id:${clientId}\nevent:PB_CONNECT\ndata:{"clientId":"${clientId}"}\n\n`)
  realtime.set(res, clientId)
  res.on('close', () => {
    connections--
    realtime.delete(res)
  })
})

app.post('/publish', (req, res) => {
  const count = Number(req.query.count || 1)
  const size = Number(req.query.size || 256)
  for (let i = 0; i < count; i++) publish(req.query.topic, payloads.make(req.query.kind, size, ++seq))
  res.status(204).end()
})

app.post('/cost', (req, res) => {
  const data = payloads.make(req.query.kind, Number(req.query.size || 256), ++seq)
  timed(Number(req.query.n || 1000), () => publish(req.query.topic, data), (r) => {
    res.json({ nsPerPublish: r.medianNs, p90: r.p90Ns, p99: r.p99Ns, n: r.n })
  })
})

app.post('/pb/burst', (req, res) => {
  const count = Number(req.query.count || 20)
  const records = Array.from({ length: count }, () => payloads.pbRecord(++pbSeq)) // before the clock starts
  const start = process.hrtime.bigint()
  for (const record of records) {
    record.ts = Number(process.hrtime.bigint())
    broadcastRecord(record)
  }
  res.json({ totalNs: Number(process.hrtime.bigint() - start), count })
})

app.post('/pb/cost', (req, res) => {
  timed(Number(req.query.n || 200), () => broadcastRecord(payloads.pbRecord(++pbSeq)), (r) => res.json(r))
})

app.get('/warm', (req, res) => {
  res.set('connection', 'close').type('text/plain').send('warm')
})

app.get('/stats', (req, res) => {
  if (req.query.gc === '1' && global.gc) { global.gc(); global.gc() }
  const mem = process.memoryUsage()
  const { user, system } = process.cpuUsage()
  const elu = performance.eventLoopUtilization(eluStart)
  const body = {
    connections,
    rss: mem.rss,
    heapUsed: mem.heapUsed,
    external: mem.external,
    cpuUs: user + system,
    eldP50Ms: eld.percentile(50) / 1e6,
    eldP99Ms: eld.percentile(99) / 1e6,
    eldMaxMs: eld.max / 1e6,
    elu: elu.utilization
  }
  if (req.query.reset === '1') {
    eld.reset()
    eluStart = performance.eventLoopUtilization()
  }
  res.json(body)
})

const server = app.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`)
})
server.keepAliveTimeout = 60000
server.maxConnections = 20000
process.on('SIGTERM', () => {
  for (const res of [...realtime.keys(), ...[...topics.values()].flatMap((s) => [...s])]) res.end()
  server.close()
  process.exit(0)
})
