'use strict'
// The Mercure scenario of bench/run.js (issue 15: sse-fanout/mercure): N
// subscribers on URI-template selectors against the same load on exact
// topics, in one server process (servers/mercure-server.js: a MercureHub,
// anonymous subscribers), the load generator in its own process.
//
// Connection i subscribes, by kind, to the selector of room i % 1000:
//   exact             https://example.com/rooms/<r>/m<r>          1000 exact topics
//   templates         https://example.com/rooms/<r>/{id}          1000 templates, 1000 literal prefixes
//   templates-shared  https://example.com/rooms/{room}/m<r>       1000 templates, one literal prefix:
//                                                                  every update tried against all 1000
// and updates go to https://example.com/rooms/<r>/m<r> by MercureHub.publish()
// in the server, so each update reaches N/1000 subscribers whatever the kind.
// A pass of a kind:
//   burst   `rounds` updates per room (1000 updates per request, back to
//           back, a request per round): deliveries/s end to end (the load
//           generator's count over last receive − first publish), every
//           connection checked complete and in order
//   cost    `costCalls` updates to fresh connections, one per event-loop turn,
//           each timed on the JS thread (process.hrtime around publish()):
//           median and p99
// The kinds take turns, PASSES passes each; a kind's figures are the medians
// of its passes. Then, once, the micro figure: publish() with 1000 selectors
// of each kind held and no connection at all (the JS thread alone, the kinds
// taking turns call by call). The goal is stated on templates / exact per
// update.
// bench/README.md says what each figure means.

const { median } = require('../tools')

const ROOMS = 1000
const ROOM = 'https://example.com/rooms/'
const enc = encodeURIComponent
// The load generator's path per kind: {mod:1000} is its placeholder (the
// connection index modulo 1000); everything else is percent-encoded, the
// template's braces included.
const PATHS = {
  exact: `/.well-known/mercure?topic=${enc(ROOM)}{mod:${ROOMS}}${enc('/m')}{mod:${ROOMS}}`,
  templates: `/.well-known/mercure?topic=${enc(ROOM)}{mod:${ROOMS}}${enc('/{id}')}`,
  'templates-shared': `/.well-known/mercure?topic=${enc(`${ROOM}{room}/m`)}{mod:${ROOMS}}`
}
const KINDS = Object.keys(PATHS)
const PASSES = 3
const sum = (xs) => xs.reduce((a, b) => a + b, 0)
const ONLY_NATIVE = 'runs once, on the native row (its own server: servers/mercure-server.js)'

function mercureScenarios ({ request, startServer, loadgen, sleep, N, EVENT_BYTES, quick }) {
  const rounds = quick ? 5 : 20
  const costCalls = quick ? 2000 : 5000
  const microCalls = quick ? 20000 : 100000

  async function waitForConnections (server, n) {
    const deadline = Date.now() + 30000
    while (Date.now() < deadline) {
      const s = await request(server.port, 'GET', '/stats')
      if (s.connections === n) return s
      await sleep(100)
    }
    throw new Error(`the server still has connections (expected ${n})`)
  }

  // One pass of a kind: the burst, then the timed calls (fresh connections).
  async function pass (server, name) {
    // burst: every connection expects one update per round.
    const lg = loadgen({ port: server.port, n: N, path: PATHS[name], expect: rounds, duration: 120 })
    const connected = await lg.ready
    await sleep(300)
    const held = await request(server.port, 'GET', '/stats')
    const burstCalls = []
    for (let i = 0; i < rounds; i++) {
      burstCalls.push(await request(server.port, 'POST', `/burst?rooms=${ROOMS}&count=${ROOMS}&size=${EVENT_BYTES}`))
    }
    const r = await lg.done
    await waitForConnections(server, 0)
    // cost: the same subscribers, updates one per event-loop turn.
    const lc = loadgen({ port: server.port, n: N, path: PATHS[name], duration: 300 })
    await lc.ready
    await sleep(300)
    await request(server.port, 'POST', `/cost?rooms=${ROOMS}&n=1000&size=${EVENT_BYTES}`) // warm-up
    const c = await request(server.port, 'POST', `/cost?rooms=${ROOMS}&n=${costCalls}&size=${EVENT_BYTES}`)
    lc.stop()
    await lc.done
    await waitForConnections(server, 0)
    return { connected, held: held.mercure || {}, r, c, burstUsPerUpdate: median(burstCalls.map((b) => b.totalNs / ROOMS)) / 1e3 }
  }

  // A kind's figures over its passes: counts added up, times the medians.
  function summary (passes) {
    const r = (f) => passes.map((p) => f(p))
    return {
      connected: Math.min(...r((p) => p.connected)),
      updatesPerRoom: rounds,
      selectors: passes[0].held.selectors,
      templates: passes[0].held.templates,
      profiles: passes[0].held.profiles,
      complete: Math.min(...r((p) => p.r.complete_connections)),
      deliveries: sum(r((p) => p.r.events)),
      expected: sum(r((p) => p.connected * rounds)),
      deliveriesPerS: median(r((p) => p.r.deliveries_per_s)),
      timeToLastMs: median(r((p) => p.r.duration_s * 1000)),
      p50Ms: median(r((p) => p.r.latency_us?.p50 / 1000)),
      p99Ms: median(r((p) => p.r.latency_us?.p99 / 1000)),
      burstUsPerUpdate: median(r((p) => p.burstUsPerUpdate)),
      costMedianUs: median(r((p) => p.c.medianNs / 1e3)),
      costP99Us: median(r((p) => p.c.p99Ns / 1e3)),
      costCalls: sum(r((p) => p.c.n)),
      inOrderViolations: sum(r((p) => p.r.in_order_violations)),
      untimed: sum(r((p) => p.r.untimed_events))
    }
  }

  async function mercure () {
    const server = await startServer('mercure')
    try {
      // Unmeasured: the JIT compiles the publish path before the first pass.
      await request(server.port, 'POST', `/burst?rooms=${ROOMS}&count=20000&size=${EVENT_BYTES}`)
      // The kinds take turns, PASSES times (the machine may be shared: a
      // slow moment then spoils one pass of each, not all of one kind).
      const passes = Object.fromEntries(KINDS.map((name) => [name, []]))
      for (let i = 0; i < PASSES; i++) {
        for (const name of KINDS) passes[name].push(await pass(server, name))
      }
      const kinds = Object.fromEntries(KINDS.map((name) => [name, summary(passes[name])]))
      const micro = await request(server.port, 'POST', `/micro?n=${microCalls}&size=${EVENT_BYTES}&selectors=${ROOMS}`)
      if (micro.error) throw new Error(`micro: ${micro.error}`)
      for (const name of KINDS) {
        kinds[name].microMedianUs = micro[name].medianNs / 1e3
        kinds[name].microP99Us = micro[name].p99Ns / 1e3
        kinds[name].microTemplates = micro[name].stats.templates
      }
      return { kinds }
    } finally {
      await server.stop()
    }
  }
  mercure.servers = ['native']
  mercure.note = ONLY_NATIVE
  mercure.ownServers = true
  mercure.table = kindsTable
  mercure.counts = true

  return { mercure }
}

// One row per kind of selector ("native: templates"). (Not `variants`: the
// runner's --check reads that key as the pocketbase scenario's.)
function kindsTable (title, rows, { table, fmtCount }) {
  const flat = []
  for (const r of rows) {
    if (r.values.kinds) {
      for (const [v, values] of Object.entries(r.values.kinds)) flat.push({ server: `${r.server}: ${v}`, values })
    } else {
      flat.push(r)
    }
  }
  return table(title, flat, undefined, fmtCount)
}

// Every connection got every update, in order, each with its timestamp.
function mercureProblems (results) {
  const problems = []
  for (const r of results.mercure || []) {
    if (r.values.error) continue // reported with the other errors
    for (const [v, x] of Object.entries(r.values.kinds || {})) {
      const where = `mercure/${r.server} ${v}`
      if (!(x.connected > 0)) problems.push(`${where}: no client connected`)
      if (x.complete !== x.connected || x.deliveries !== x.expected) problems.push(`${where}: ${x.complete} of ${x.connected} clients got every update (${x.deliveries} of ${x.expected} deliveries)`)
      if (x.inOrderViolations !== 0 || x.untimed !== 0) problems.push(`${where}: ${x.inOrderViolations} updates out of order, ${x.untimed} without a timestamp`)
    }
  }
  return problems
}

// The summary lines, in the units the goal is stated in (templates / exact).
function mercureRatios (results, { fmt, ratio }) {
  const v = results.mercure?.find((r) => r.server === 'native')?.values?.kinds
  if (!v) return []
  const e = v.exact
  const line = (name) => {
    const t = v[name]
    return `${name} ${fmt(t.costMedianUs)} µs = ${ratio(t.costMedianUs, e.costMedianUs)} (p99 ${ratio(t.costP99Us, e.costP99Us)}), deliveries/s ${fmt(t.deliveriesPerS)} = ${ratio(t.deliveriesPerS, e.deliveriesPerS)}, no connection ${fmt(t.microMedianUs)} µs = ${ratio(t.microMedianUs, e.microMedianUs)}`
  }
  return [
    `- mercure, ${e.connected} subscribers on ${e.selectors} distinct selectors (${fmt(e.connected / e.selectors)} each), ${e.updatesPerRoom} updates per room, ${PASSES} passes: JS time per update (median) exact ${fmt(e.costMedianUs)} µs, deliveries/s ${fmt(e.deliveriesPerS)}, no connection ${fmt(e.microMedianUs)} µs`,
    `- mercure, against exact: ${line('templates')}; ${line('templates-shared')} (goal: templates ≤ 1.2× per update at ${ROOMS} distinct templates; the no-connection figures hold ${ROOMS} selectors of each kind)`
  ]
}

module.exports = { mercureScenarios, mercureRatios, mercureProblems }
