'use strict'
// A server under test for the benchmark, in one of four implementations that
// share one contract (so the runner and the load generator treat them alike):
//
//   GET  /events?topics=a,b               an SSE stream subscribed to those topics
//   POST /publish?topic=T&count=C&size=S[&kind=json]
//                                          C events back to back in one JS job,
//                                          to topic T (absent: broadcast); each
//                                          event's data is "<CLOCK_MONOTONIC ns> "
//                                          padded to S bytes, or with kind=json a
//                                          JSON order event of S bytes starting
//                                          {"ts":<ns>, (servers/payloads.js);
//                                          answers 204, or with
//                                          --history 200 { first, last }: the ids of
//                                          the first and last event published
//   POST /cost?topic=T&n=N&size=S[&kind=json]
//                                          times N publishes on the JS thread, one
//                                          per event-loop turn; answers the median
//                                          { nsPerPublish, p90 }
//   GET  /warm                            answered and closed at once (memory baseline)
//   GET  /stats[?reset=1][&gc=1][&smaps=1] connections, memory, event-loop delay
//                                          and utilisation since the last reset,
//                                          cpuUs (the process's user + system CPU
//                                          time so far, every thread: process.cpuUsage()),
//                                          history { events, bytes } (null when off),
//                                          compression (hub.stats().compression);
//                                          smaps=1: brkHeapRss, the RSS of the main
//                                          malloc arena ([heap] in /proc/self/smaps),
//                                          and v8PhysicalBytes, V8's heap in RAM
//
// sse-fanout servers only (the pocketbase scenario uses native): the PocketBase
// realtime layer (lib/pocketbase.js) on the same hub, made at the first of these
// requests (404 on the others):
//   GET  /api/realtime?v=V&k=K             a realtime client (PB_CONNECT first), given
//                                          server-side (setSubscriptions) the
//                                          subscription of variant V for key K:
//                                          plain: posts/*; keys: posts/*?options=
//                                          {query:{key:"K"}} (a key of its own, no
//                                          filter); filtered: posts/*?options=
//                                          {query:{filter:"views > K"}}; rule: posts/*
//                                          as user K, the collection's listRule reading
//                                          @request.auth
//   POST /pb/burst?v=V&count=C[&warm=0]    C broadcastRecord calls back to back in one
//                                          JS job, after the warm-up (warm=0: none):
//                                          { totalNs, medianNs, maxNs, stats }
//   POST /pb/cost?v=V&n=N                  N broadcastRecord calls, each timed on its
//                                          own, one per event-loop turn:
//                                          { medianNs, p90Ns, p99Ns, meanNs, stats }
//   GET  /pb/stats                         rt.stats()
// Every record passes every variant's rule and filter (views = 1000, K < 100), so
// each client receives each record; its JSON starts with "ts" (the CLOCK_MONOTONIC
// ns) and "seq", where the load generator reads them (--data-prefix).
//
// With --history (native, js, plain; the resume and cost-history scenarios), the
// server keeps a history of 10,000 events and a stream resumes from its
// Last-Event-ID header: native and js are sse-fanout with `history: true`; plain
// is what a hand-written server does: an id per event, an array of
// { id, topic, frame } trimmed to 10,000, and on reconnect a findIndex for the
// cursor and a res.write of each missed frame the stream's topics match.
//
// With --pair (native, js, plain; the cost-history scenario), two of them in one
// process, history off and on: GET /events?...&hub=on goes to the one with
// history, any other to the one without, and POST /cost alternates its publishes
// between the two (one per event-loop turn each), so both are timed under the
// same conditions; it answers the off figures and { on: { nsPerPublish, p90 } }.
//
// With --bus <redis url> (native, js; history on; the bus scenarios of
// bench/scenarios/bus.js), the hub has a RedisBus (sse-fanout/redis): publish()
// sends one FCALL and every instance delivers what it reads back from the stream.
// --bus-prefix P and --bus-maxlen M set the bus's prefix and maxLen. LISTENING
// is printed only once the bus is up. Then also:
//   POST /stream?count=K&size=S&window=W  K events of S bytes to topic "stream"
//                                          through bus.publish(), at most W
//                                          unanswered at a time; answers once
//                                          Redis answered them all: { startNs,
//                                          endNs (strings, CLOCK_MONOTONIC ns),
//                                          count, queued (answered without an id:
//                                          the bus went down), failed }
//   GET  /bus/wait?read=R&timeoutMs=T      answers once stats().bus.read >= R
//                                          (polled every 2 ms): { reachedNs
//                                          (string; null after T ms), read }
// and /stats has bus (hub.stats().bus; null without a bus), /cost maxInflight
// (the most FCALLs unanswered after a timed call).
//
// With --compression (native, js), the hub compresses: new Hub({ compression: true })
// (gzip or deflate as the request's Accept-Encoding offers; the compression
// scenario, bench/scenarios/compression.js).
//
// Usage: node node-server.js <native|js|plain|better-sse> [port] [--history | --pair] [--bus URL] [--compression]
// Prints "LISTENING <port>" once ready.
const http = require('node:http')
const { monitorEventLoopDelay, performance } = require('node:perf_hooks')

const impl = process.argv[2]
const port = Number(process.argv[3] || 0)
// --history-events N: history on, holding N events (maxBytes and maxAgeMs out of
// the way: the history-memory scenario fills it with 100k events).
const historyEventsArg = process.argv.indexOf('--history-events')
const historyEvents = historyEventsArg > 0 ? Number(process.argv[historyEventsArg + 1]) : 0
const pair = process.argv.includes('--pair')
const argValue = (name) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}
const busUrl = argValue('--bus') ?? null
const busPrefix = argValue('--bus-prefix')
const busMaxLen = argValue('--bus-maxlen')
const history = process.argv.includes('--history') || historyEvents > 0 || busUrl !== null
const compression = process.argv.includes('--compression')
if (compression && !['native', 'js'].includes(impl)) throw new Error(`${impl} has no compression`)
if (busUrl !== null && (!['native', 'js'].includes(impl) || pair)) throw new Error('--bus needs native or js, without --pair')
if ((history || pair) && !['native', 'js', 'plain'].includes(impl)) throw new Error(`${impl} has no history`)
const PLAIN_HISTORY_EVENTS = historyEvents || 10000 // sse-fanout's default maxEvents
const hubHistory = historyEvents ? { maxEvents: historyEvents, maxBytes: 2 ** 30, maxAgeMs: 3600000 } : history
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const payloads = require('./payloads')
let jsonSeq = 0
const payload = (size, kind) => payloads.make(kind, size, ++jsonSeq)

// Each implementation: accept(req, res, topics), publish(topic|null, data) (returns
// the event's id with a history), count(). `withHistory`: false, or sse-fanout's
// history option (true or an object; plain keeps as many events as it says).
// The pure-JS ones keep exact topics and "/*" patterns as a hand-written server
// would: a map per kind, patterns found by the topic's prefixes.

// Calls visit(key) for the topic and for each pattern prefix ("a/b/c" -> "a/", "a/b/").
function forEachKey (topic, visitExact, visitPattern) {
  visitExact(topic)
  for (let i = topic.indexOf('/'); i >= 0 && i + 1 < topic.length; i = topic.indexOf('/', i + 1)) {
    visitPattern(topic.slice(0, i + 1))
  }
}
const keyOf = (t) => t.endsWith('/*') ? ['p', t.slice(0, -1)] : ['e', t]
function makeImpl (name, withHistory, busOptions = null) {
  if (name === 'native' || name === 'js') {
    const { Hub } = require('../..')
    const bus = busOptions === null ? null : new (require('../../lib/redis').RedisBus)(busOptions)
    // Every load-generator connection comes from 127.0.0.1, and a run may
    // hold more than the default maxConnections: no per-address limit here.
    // One address for every load-generator client, and bursts larger than the
    // default pending-command bound (the pocketbase burst posts one command per
    // key and event): those limits are lifted; the bench measures the fan-out.
    const hub = new Hub({ transport: name === 'js' ? 'js' : 'auto', heartbeatMs: 0, maxConnectionsPerIp: 0, maxConnections: 1 << 21, maxPendingCommands: 0, maxPendingBytes: 0, history: withHistory, bus, compression })
    let pb = null
    return {
      bus,
      accept: (req, res, topics) => hub.accept(req, res, { topics }),
      publish: (topic, data) => topic ? hub.publish(topic, data) : hub.broadcast(data),
      count: () => hub.stats().connections,
      compressionStats: () => hub.stats().compression,
      delivered: () => hub.stats().delivered,
      historyStats: () => hub.stats().history,
      busStats: () => bus === null ? null : hub.stats().bus,
      close: () => hub.close(),
      // Made on first use, so the other scenarios run on the hub alone.
      pocketbase: () => pb || (pb = makePocketBase(hub))
    }
  }
  if (name === 'plain') {
    // What people write by hand: a Set of responses per topic and a write loop.
    const all = new Set()
    const maps = { e: new Map(), p: new Map() }
    // --history: { id, topic, frame } per event, oldest first; ids are 1, 2, ...
    const events = []
    let seq = 0
    const matches = (topics, topic) => topic === null || topics.some((t) => {
      const [kind, key] = keyOf(t)
      return kind === 'e' ? key === topic : topic.startsWith(key)
    })
    return {
      accept (req, res, topics) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
        res.flushHeaders()
        const last = withHistory ? req.headers['last-event-id'] : undefined
        if (last !== undefined) {
          const at = events.findIndex((e) => e.id === last)
          if (at >= 0) {
            for (let i = at + 1; i < events.length; i++) {
              if (matches(topics, events[i].topic)) res.write(events[i].frame)
            }
          }
        }
        all.add(res)
        for (const t of topics) {
          const [kind, key] = keyOf(t)
          if (!maps[kind].has(key)) maps[kind].set(key, new Set())
          maps[kind].get(key).add(res)
        }
        res.on('close', () => {
          all.delete(res)
          for (const t of topics) {
            const [kind, key] = keyOf(t)
            maps[kind].get(key)?.delete(res)
          }
        })
      },
      publish (topic, data) {
        let frame = `data: ${data}\n\n`
        let id
        if (withHistory) {
          id = String(++seq)
          frame = `id: ${id}\n${frame}`
          events.push({ id, topic: topic || null, frame })
          if (events.length > PLAIN_HISTORY_EVENTS) events.shift()
        }
        if (!topic) {
          for (const res of all) res.write(frame)
          return id
        }
        const write = (set) => { if (set) for (const res of set) res.write(frame) }
        forEachKey(topic, (k) => write(maps.e.get(k)), (k) => write(maps.p.get(k)))
        return id
      },
      count: () => all.size,
      historyStats: () => withHistory ? { events: events.length, bytes: events.reduce((n, e) => n + e.frame.length, 0) } : null,
      close: async () => { for (const res of all) res.end() }
    }
  }
  if (name === 'better-sse') {
    const { createSession, createChannel } = require('better-sse')
    const everyone = createChannel()
    const channels = new Map() // "e:<topic>" and "p:<prefix>" -> channel
    const channel = (name) => {
      if (!channels.has(name)) channels.set(name, createChannel())
      return channels.get(name)
    }
    return {
      async accept (req, res, topics) {
        // Data goes out as is (the default would JSON-quote the timestamped string).
        const session = await createSession(req, res, { serializer: String })
        everyone.register(session)
        for (const t of topics) channel(keyOf(t).join(':')).register(session)
      },
      publish (topic, data) {
        if (!topic) {
          everyone.broadcast(data)
          return
        }
        const send = (name) => channels.get(name)?.broadcast(data)
        forEachKey(topic, (k) => send(`e:${k}`), (k) => send(`p:${k}`))
      },
      count: () => everyone.sessionCount,
      close: async () => {}
    }
  }
  throw new Error(`unknown implementation ${name}`)
}

// ---- PocketBase realtime (sse-fanout servers) ----------------------------------

const PB_KEYS = 100
const PB_RULE = 'owner = @request.auth.id || @request.auth.role = "member"'
const { pbId } = payloads
const pbCollection = (variant) => {
  const rule = variant === 'rule' ? PB_RULE : ''
  return { name: 'posts', id: 'pbc_1125843985', listRule: rule, viewRule: rule }
}
const PB_KEYED = Array.from({ length: PB_KEYS }, (_, k) =>
  'posts/*?options=' + encodeURIComponent(JSON.stringify({ query: { key: String(k) } })))
const PB_FILTERED = Array.from({ length: PB_KEYS }, (_, k) =>
  'posts/*?options=' + encodeURIComponent(JSON.stringify({ query: { filter: `views > ${k}` } })))

function makePocketBase (hub) {
  const { Realtime } = require('../../lib/pocketbase')
  // Every client of the load generator comes from one address: the budgets
  // per address (meant for one office behind NAT, not 10k clients) are lifted.
  const perIp = { maxOptionSubscriptionsPerIp: 2 ** 31 - 1, maxFilterNodesPerIp: 2 ** 31 - 1, maxCompiledBytesPerIp: 2 ** 31 - 1, maxSubscriptionsPerIp: 2 ** 31 - 1 }
  const rt = new Realtime({ hub, idleTimeoutMs: 0, maxLifetimeMs: 0, checkIp: false, ...perIp })
  const collections = { plain: pbCollection('plain'), keys: pbCollection('keys'), filtered: pbCollection('filtered'), rule: pbCollection('rule') }
  let seq = 0
  return {
    rt,
    connect (req, res, variant, k) {
      if (!collections[variant]) throw new Error(`unknown variant ${variant}`)
      const { clientId } = rt.connect(req, res)
      k %= PB_KEYS
      if (variant === 'plain') rt.setSubscriptions(clientId, ['posts/*'])
      if (variant === 'keys') rt.setSubscriptions(clientId, [PB_KEYED[k]])
      if (variant === 'filtered') rt.setSubscriptions(clientId, [PB_FILTERED[k]])
      if (variant === 'rule') {
        rt.setSubscriptions(clientId, ['posts/*'],
          { id: pbId('u', k), collectionId: '_pb_users_auth_', collectionName: 'users', role: 'member' })
      }
    },
    collection: (variant) => collections[variant],
    // Calls on a collection nobody subscribes to, with the same rules: the JIT
    // compiles the JS path, the native side caches the rules, parses the record
    // and finds no key. Nothing is delivered.
    warm (collection) {
      const nobody = { ...collection, name: 'nobody', id: 'pbc_0' }
      const record = this.record()
      for (let i = 0; i < 20000; i++) rt.broadcastRecord(nobody, 'create', record)
    },
    // About 280 bytes of JSON; "ts" first, so the load generator finds it.
    record: () => payloads.pbRecord(++seq, PB_KEYS)
  }
}

const busOptions = busUrl === null
  ? null
  : { url: busUrl, ...(busPrefix ? { prefix: busPrefix } : {}), ...(busMaxLen ? { maxLen: Number(busMaxLen) } : {}) }
const server = makeImpl(impl, pair ? false : hubHistory, busOptions)
const withHistory = pair ? makeImpl(impl, hubHistory || true) : null // --pair: the one with history
const eld = monitorEventLoopDelay({ resolution: 1 })
eld.enable()
let eluStart = performance.eventLoopUtilization()

// RSS of the [heap] mapping: the main malloc arena (brk), where the JS thread's
// malloc()s of small blocks go (sse-fanout's frames); V8's heap and large
// blocks (mmap) are elsewhere. Linux only; null without /proc.
function brkHeapRss () {
  let text
  try { text = require('node:fs').readFileSync('/proc/self/smaps', 'utf8') } catch { return null }
  let inHeap = false
  let rss = 0
  for (const line of text.split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inHeap = line.endsWith('[heap]')
    else if (inHeap && line.startsWith('Rss:')) rss += Number(line.match(/(\d+)/)[1]) * 1024
  }
  return rss
}

function cpuUs () {
  const { user, system } = process.cpuUsage()
  return user + system
}

function json (res, body) {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

const httpServer = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x')
  const q = url.searchParams
  if (url.pathname === '/events') {
    const topics = (q.get('topics') || '').split(',').filter(Boolean)
    const target = withHistory && q.get('hub') === 'on' ? withHistory : server
    target.accept(req, res, topics)
    return
  }
  if ((url.pathname === '/api/realtime' || url.pathname.startsWith('/pb/')) && !server.pocketbase) {
    res.writeHead(404)
    res.end()
    return
  }
  if (url.pathname === '/api/realtime') {
    try {
      server.pocketbase().connect(req, res, q.get('v') || 'plain', Number(q.get('k') || 0))
    } catch (err) {
      console.error(err)
      res.destroy()
    }
    return
  }
  if (url.pathname === '/pb/stats') {
    json(res, server.pocketbase().rt.stats())
    return
  }
  if (url.pathname === '/pb/burst') {
    // C calls back to back in one JS job, as a batch of record changes would go
    // out; after the warm-up (JIT, rule cache), as in a server that has run a while.
    const pb = server.pocketbase()
    const collection = pb.collection(q.get('v'))
    const count = Number(q.get('count') || 20)
    if (q.get('warm') !== '0') pb.warm(collection)
    const records = Array.from({ length: count }, () => pb.record()) // before the clock starts
    const samples = []
    const start = process.hrtime.bigint()
    for (const record of records) {
      record.ts = Number(process.hrtime.bigint())
      const t0 = process.hrtime.bigint()
      pb.rt.broadcastRecord(collection, 'create', record)
      samples.push(Number(process.hrtime.bigint() - t0))
    }
    const totalNs = Number(process.hrtime.bigint() - start)
    samples.sort((a, b) => a - b)
    json(res, { totalNs, medianNs: samples[samples.length >> 1], maxNs: samples[samples.length - 1], count, stats: pb.rt.stats() })
    return
  }
  if (url.pathname === '/pb/cost') {
    // As /cost: each call timed on its own, the event loop turning in between,
    // after the warm-up.
    const pb = server.pocketbase()
    const collection = pb.collection(q.get('v'))
    const n = Number(q.get('n') || 200)
    pb.warm(collection)
    let clock = 0n
    for (let i = 0; i < 1000; i++) {
      const a = process.hrtime.bigint()
      clock += process.hrtime.bigint() - a
    }
    const clockNs = Number(clock) / 1000
    const samples = []
    const step = () => {
      const record = pb.record()
      const t0 = process.hrtime.bigint()
      pb.rt.broadcastRecord(collection, 'create', record)
      samples.push(Number(process.hrtime.bigint() - t0) - clockNs)
      if (samples.length < n) {
        setImmediate(step)
        return
      }
      const meanNs = samples.reduce((a, b) => a + b, 0) / n
      samples.sort((a, b) => a - b)
      const at = (f) => samples[Math.min(n - 1, Math.floor(n * f))]
      json(res, { medianNs: samples[n >> 1], p90Ns: at(0.9), p99Ns: at(0.99), meanNs, n, stats: pb.rt.stats() })
    }
    step()
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
    const kind = q.get('kind')
    const ids = []
    for (let i = 0; i < count; i++) ids.push(server.publish(topic, payload(size, kind)))
    if (history) {
      json(res, { first: ids[0], last: ids[ids.length - 1] })
      return
    }
    res.writeHead(204, { 'content-length': 0 })
    res.end()
    return
  }
  if (url.pathname === '/cost') {
    // Each publish is timed on its own, with the event loop turning between
    // calls as in real traffic (the fan-out and the flush run in between);
    // the figure is the median, less the cost of reading the clock. With
    // --pair, the two implementations take turns, n publishes each.
    const n = Number(q.get('n') || 1000)
    const size = Number(q.get('size') || 256)
    const topic = q.get('topic')
    const data = payload(size, q.get('kind'))
    const impls = withHistory ? [server, withHistory] : [server]
    const runs = impls.map(() => [])
    let turn = 0
    let clock = 0n
    for (let i = 0; i < 1000; i++) {
      const a = process.hrtime.bigint()
      clock += process.hrtime.bigint() - a
    }
    const clockNs = Number(clock) / 1000
    const figures = (samples) => {
      samples.sort((a, b) => a - b)
      return { nsPerPublish: samples[samples.length >> 1], p90: samples[Math.floor(samples.length * 0.9)], p99: samples[Math.floor(samples.length * 0.99)] }
    }
    let maxInflight = 0
    const step = () => {
      const k = turn++ % impls.length
      const t0 = process.hrtime.bigint()
      impls[k].publish(topic, data)
      runs[k].push(Number(process.hrtime.bigint() - t0) - clockNs)
      // Untimed: the FCALLs Redis has not answered yet (they must not pile up).
      if (server.bus) maxInflight = Math.max(maxInflight, server.bus.stats().inflight)
      if (runs[runs.length - 1].length < n) {
        setImmediate(step)
        return
      }
      json(res, { ...figures(runs[0]), n, on: withHistory ? figures(runs[1]) : undefined, maxInflight: server.bus ? maxInflight : undefined })
    }
    step()
    return
  }
  if (url.pathname === '/stream' && server.bus) {
    // The stream's throughput: K events through bus.publish(), at most W
    // unanswered (refilled when half of them are answered), so the bus's own
    // bound (maxOutboxEvents) is never reached and the FCALLs queue nowhere.
    const count = Number(q.get('count') || 10000)
    const size = Number(q.get('size') || 256)
    const window = Math.max(2, Number(q.get('window') || 1024))
    let sent = 0
    let answered = 0
    let queued = 0
    let failed = 0
    const start = process.hrtime.bigint()
    const pump = () => {
      while (sent < count && sent - answered < window) {
        sent++
        server.bus.publish('stream', payload(size)).then((id) => { if (id === null) queued++ }, () => { failed++ }).finally(() => {
          answered++
          if (answered === count) json(res, { startNs: String(start), endNs: String(process.hrtime.bigint()), count, queued, failed })
          else if (sent - answered <= window >> 1) pump()
        })
      }
    }
    pump()
    return
  }
  if (url.pathname === '/bus/wait' && server.bus) {
    const target = Number(q.get('read'))
    const deadline = Date.now() + Number(q.get('timeoutMs') || 60000)
    const check = () => {
      const { read } = server.bus.stats()
      if (read >= target) json(res, { reachedNs: String(process.hrtime.bigint()), read })
      else if (Date.now() > deadline) json(res, { reachedNs: null, read })
      else setTimeout(check, 2)
    }
    check()
    return
  }
  if (url.pathname === '/stats') {
    if (q.get('gc') === '1' && global.gc) { global.gc(); global.gc() }
    const mem = process.memoryUsage()
    const elu = performance.eventLoopUtilization(eluStart)
    const body = {
      connections: server.count() + (withHistory ? withHistory.count() : 0),
      rss: mem.rss,
      heapUsed: mem.heapUsed,
      external: mem.external,
      eldP50Ms: eld.percentile(50) / 1e6,
      eldP99Ms: eld.percentile(99) / 1e6,
      eldMaxMs: eld.max / 1e6,
      elu: elu.utilization,
      cpuUs: cpuUs(),
      history: server.historyStats?.() ?? null,
      compression: server.compressionStats?.() ?? null,
      delivered: server.delivered?.() ?? null,
      bus: server.busStats?.() ?? null
    }
    if (q.get('smaps') === '1') {
      body.brkHeapRss = brkHeapRss()
      body.v8PhysicalBytes = require('node:v8').getHeapStatistics().total_physical_size
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
// With a bus, LISTENING once it is up (connected, function loaded, caught up).
async function busUp (bus, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs
  while (bus.state !== 'up') {
    if (Date.now() > deadline) throw new Error(`the bus is not up after ${timeoutMs} ms (${bus.state}): ${bus.stats().lastError}`)
    await bus.ready().catch(() => sleep(100))
  }
}
httpServer.listen(port, '127.0.0.1', async () => {
  if (server.bus) {
    try {
      await busUp(server.bus)
    } catch (err) {
      console.error(err.message)
      process.exit(1)
    }
  }
  process.stdout.write(`LISTENING ${httpServer.address().port}\n`)
})
process.on('SIGTERM', async () => {
  httpServer.close()
  await server.close()
  await withHistory?.close()
  process.exit(0)
})
