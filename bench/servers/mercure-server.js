'use strict'
// The server of the mercure scenario (bench/scenarios/mercure.js): one
// MercureHub (sse-fanout/mercure) in node:http, anonymous subscribers (no
// subscriber key, so no token is read), history on (the layer's default),
// no limit per IP (the load generator is one address).
//
//   GET  /.well-known/mercure?topic=S      a Mercure subscription (the protocol)
//   POST /burst?rooms=R&count=C&size=S     C updates back to back in one JS job,
//                                          update k to https://example.com/rooms/<k % R>/m<k % R>,
//                                          by MercureHub.publish(); each update's data
//                                          is "<CLOCK_MONOTONIC ns> " padded to S
//                                          bytes (the load generator reads it); each
//                                          call timed: { n, totalNs, medianNs, p99Ns }
//   POST /cost?rooms=R&n=N&size=S          N updates as in /burst, one per
//                                          event-loop turn, each timed on its own,
//                                          less the cost of reading the clock:
//                                          { n, medianNs, p90Ns, p99Ns, meanNs }
//   POST /micro?n=N&size=S&selectors=K     the JS thread alone, no connection: one
//                                          MercureHub per variant (VARIANTS below),
//                                          each holding K selectors of its kind,
//                                          publish() calls taking turns between
//                                          them, N each, timed one by one:
//                                          { <variant>: { medianNs, p99Ns, stats } }
//   GET  /stats                            { connections, mercure (stats()), rss }
//
// Usage: node mercure-server.js [port]; prints "LISTENING <port>" once ready.
const http = require('node:http')
const crypto = require('node:crypto')
const { MercureHub } = require('../../lib/mercure')

const port = Number(process.argv[2] || 0)
const HUB_PATH = '/.well-known/mercure'
const ROOM = 'https://example.com/rooms/'

// The three kinds of selectors the scenario compares, for K distinct ones; an
// update to topic(r) matches exactly one selector of each kind (the one of
// room r):
//   exact             https://example.com/rooms/<k>/m<k>
//   templates         https://example.com/rooms/<k>/{id}: K templates, K distinct
//                     literal prefixes (the index tries only the templates whose
//                     prefix the topic starts with)
//   templates-shared  https://example.com/rooms/{room}/m<k>: K templates with one
//                     literal prefix, so every update is tried against all K
const VARIANTS = {
  exact: (k) => `${ROOM}${k}/m${k}`,
  templates: (k) => `${ROOM}${k}/{id}`,
  'templates-shared': (k) => `${ROOM}{room}/m${k}`
}
const topic = (r) => `${ROOM}${r}/m${r}`

function makeHub (hubOptions = {}) {
  return new MercureHub({
    path: HUB_PATH,
    // HTTP publishing is not benchmarked (publish() is): a random key nobody holds.
    publisherJwt: { key: crypto.randomBytes(32).toString('hex') },
    subscriberJwt: null,
    anonymous: true,
    maxDistinctSelectors: 100000,
    hubOptions: { history: true, maxConnectionsPerIp: 0, ...hubOptions }
  })
}

const mercure = makeHub()

function payload (size) {
  const head = `${process.hrtime.bigint()} `
  return head.length >= size ? head : head + 'x'.repeat(size - head.length)
}

// What reading the clock twice costs, taken off each timed call.
function clockNs () {
  let clock = 0n
  for (let i = 0; i < 1000; i++) {
    const a = process.hrtime.bigint()
    clock += process.hrtime.bigint() - a
  }
  return Number(clock) / 1000
}

function figures (samples) {
  const sorted = [...samples].sort((a, b) => a - b)
  const at = (p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]
  return {
    n: sorted.length,
    medianNs: at(0.5),
    p90Ns: at(0.9),
    p99Ns: at(0.99),
    meanNs: sorted.reduce((a, b) => a + b, 0) / sorted.length
  }
}

function json (res, body, status = 200) {
  res.writeHead(status, { 'content-type': 'application/json' })
  res.end(JSON.stringify(body))
}

// The micro figure: the variants' hubs, each with K profiles of one selector
// held by nobody. The public API holds selectors only for open streams, so the
// profiles are acquired on the layer's native index directly (lib/mercure/
// native-mercure.js: acquire(selectors, claims), the call a subscription makes).
async function micro (n, size, selectors) {
  const hubs = {}
  try {
    for (const [variant, selector] of Object.entries(VARIANTS)) {
      const hub = makeHub({ threads: 1 })
      hubs[variant] = hub
      for (let k = 0; k < selectors; k++) hub._index.acquire([selector(k)], null)
    }
    const names = Object.keys(hubs)
    const data = payload(size)
    // Warm-up: the JIT compiles the publish path of each.
    for (let i = 0; i < 20000; i++) hubs[names[i % names.length]].publish({ topic: topic(i % selectors), data })
    const clock = clockNs()
    const samples = Object.fromEntries(names.map((name) => [name, []]))
    for (let i = 0; i < n * names.length; i++) {
      const name = names[i % names.length]
      const t = topic(Math.floor(i / names.length) % selectors)
      const t0 = process.hrtime.bigint()
      hubs[name].publish({ topic: t, data })
      samples[name].push(Number(process.hrtime.bigint() - t0) - clock)
      // Every so often the event loop turns, so the I/O threads' completions
      // and the history's trimming run as they would.
      if (i % 300 === 299) await new Promise((resolve) => setImmediate(resolve))
    }
    return Object.fromEntries(names.map((name) => [name, { ...figures(samples[name]), stats: hubs[name].stats() }]))
  } finally {
    await Promise.all(Object.values(hubs).map((hub) => hub.close()))
  }
}

const server = http.createServer((req, res) => {
  if (mercure.handle(req, res)) return
  const url = new URL(req.url, 'http://localhost')
  const q = url.searchParams
  const size = Number(q.get('size') || 256)
  const rooms = Number(q.get('rooms') || 1000)
  if (url.pathname === '/burst') {
    const count = Number(q.get('count') || 1000)
    const clock = clockNs()
    const samples = []
    const start = process.hrtime.bigint()
    for (let k = 0; k < count; k++) {
      const t0 = process.hrtime.bigint()
      mercure.publish({ topic: topic(k % rooms), data: payload(size) })
      samples.push(Number(process.hrtime.bigint() - t0) - clock)
    }
    const totalNs = Number(process.hrtime.bigint() - start)
    json(res, { ...figures(samples), totalNs })
    return
  }
  if (url.pathname === '/cost') {
    const n = Number(q.get('n') || 2000)
    const clock = clockNs()
    const samples = []
    const step = () => {
      const t = topic(samples.length % rooms)
      const data = payload(size)
      const t0 = process.hrtime.bigint()
      mercure.publish({ topic: t, data })
      samples.push(Number(process.hrtime.bigint() - t0) - clock)
      if (samples.length < n) setImmediate(step)
      else json(res, figures(samples))
    }
    step()
    return
  }
  if (url.pathname === '/micro') {
    micro(Number(q.get('n') || 20000), size, Number(q.get('selectors') || 1000))
      .then((out) => json(res, out), (err) => json(res, { error: err.message }, 500))
    return
  }
  if (url.pathname === '/stats') {
    json(res, { connections: mercure.hub.stats().connections, mercure: mercure.stats(), rss: process.memoryUsage().rss })
    return
  }
  res.writeHead(404)
  res.end()
})

server.listen(port, '127.0.0.1', () => {
  console.log(`LISTENING ${server.address().port}`)
})

process.on('SIGTERM', async () => {
  server.close()
  await mercure.close()
  process.exit(0)
})
