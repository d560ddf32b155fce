'use strict'
// The compression scenario of bench/run.js (issue 16: compress each event
// once): sse-fanout with `compression: true` against the same hub uncompressed
// and against an Express app with the `compression` middleware and
// `res.flush()` after each event (a zlib stream per connection).
//
// Setups (each its own server process, started once for the passes):
//   native identity  servers/node-server.js native, compression off; the load
//                    generator sends no Accept-Encoding
//   native gzip      node-server.js native --compression; Accept-Encoding: gzip
//   express gzip     servers/express-compression-server.js; Accept-Encoding: gzip
// Variants (the event data):
//   json256          JSON order events of exactly 256 bytes (servers/payloads.js)
//   json1k           the same, 1024 bytes
//   pocketbase       PocketBase records (about 280 bytes of JSON) to realtime
//                    clients on posts/*: native through lib/pocketbase (the
//                    pocketbase scenario's route, variant plain), express by hand
//                    with the same frames
// Per variant, the setups take turns; per setup:
//   burst   BURST events in one request to N fresh connections (as the burst
//           scenario): deliveries/s, time to last, latency; bytes from the load
//           generator (wire: body bytes as read, chunk framing included;
//           decoded: what the SSE parser got), per event per connection; the
//           server process's CPU time (user + system, every thread:
//           process.cpuUsage() via /stats) from just before the publish request
//           until the last client had every event, per event published; the
//           load generator's own CPU per event (one thread: inflating each
//           event's Huffman block costs the client microseconds, so its rate
//           bounds deliveries/s of the compressed setups on this machine;
//           CLIENTS load generators share the connections)
//   cost    on fresh connections, after a warm-up on a topic nobody has: publish
//           calls one per event-loop turn, each timed on the JS thread (as the
//           cost scenario), the median
// Then memory, per setup in a fresh process with --max-semi-space-size=1 (as the
// memory scenario): RSS after a forced GC per idle connection, after N requests
// warmed the HTTP path; the setups take turns, twice (once with --quick).
// bench/README.md says what each figure means.

const VARIANTS = {
  json256: { kind: 'json', size: 256 },
  json1k: { kind: 'json', size: 1024 },
  pocketbase: { pocketbase: true }
}
const SETUPS = {
  'native identity': { server: 'native', args: [], acceptEncoding: null },
  'native gzip': { server: 'native', args: ['--compression'], acceptEncoding: 'gzip' },
  'express gzip': { server: 'express-compression', args: [], acceptEncoding: 'gzip' }
}
const BASE = 'native identity'
// Load generators per pass, N / CLIENTS connections each: one thread inflating
// every event's Huffman block is slower than the server's fan-out, so the
// clients are split as the bus scenario splits them.
const CLIENTS = 2
const BURST = 20
const JSON_PREFIX = '{"ts":'
const PB_PREFIX = '{"record":{"ts":'
const ONLY_NATIVE = 'runs once, on the native row (its own servers: node-server.js with and without --compression, express-compression-server.js)'

function compressionScenarios ({ request, startServer, loadgen, sleep, N, quick }) {
  // At most 2000 timed calls, about 400k deliveries at N connections.
  const costCalls = Math.max(quick ? 10 : 20, Math.min(quick ? 200 : 2000, Math.floor(4e5 / N)))
  const warmCalls = quick ? 500 : 5000
  const memRounds = quick ? 1 : 2
  // After the last connection has its head, before anything is published (the
  // CI smoke's 50 connections need less than 10k).
  const settleMs = quick ? 100 : 300

  async function waitForConnections (server, n) {
    const deadline = Date.now() + 30000
    while (Date.now() < deadline) {
      const s = await request(server.port, 'GET', '/stats')
      if (s.connections === n) return s
      await sleep(100)
    }
    throw new Error(`the server still has connections (expected ${n})`)
  }

  // CLIENTS load generators as one: counts added up, the time from the first
  // event's send timestamp to the last receive anywhere, the worst latency.
  function clients (options) {
    const n = options.n
    const lgs = Array.from({ length: CLIENTS }, (_, k) => loadgen({ ...options, n: Math.floor(n / CLIENTS) + (k < n % CLIENTS ? 1 : 0) }))
    const sum = (rs, f) => rs.reduce((a, r) => a + (r[f] || 0), 0)
    return {
      ready: Promise.all(lgs.map((lg) => lg.ready)).then((cs) => cs.reduce((a, b) => a + b, 0)),
      done: Promise.all(lgs.map((lg) => lg.done)).then((rs) => {
        const failed = rs.find((r) => r.error)
        if (failed) throw new Error(`loadgen: ${failed.error}`)
        const first = Math.min(...rs.map((r) => r.first_event_ns))
        const last = Math.max(...rs.map((r) => r.last_event_ns))
        const events = sum(rs, 'events')
        const out = { events, duration_s: (last - first) / 1e9, deliveries_per_s: last > first ? events / ((last - first) / 1e9) : 0 }
        for (const f of ['complete_connections', 'encoded_connections', 'decode_errors', 'wire_bytes', 'decoded_bytes', 'in_order_violations', 'untimed_events', 'cpu_after_ready_s']) out[f] = sum(rs, f)
        out.latency_us = { p50: Math.max(...rs.map((r) => r.latency_us?.p50)), p99: Math.max(...rs.map((r) => r.latency_us?.p99)) }
        return out
      }),
      stop: () => lgs.forEach((lg) => lg.stop())
    }
  }

  const streamPath = (variant) => VARIANTS[variant].pocketbase ? '/api/realtime?v=plain&k={mod:100}' : '/events?topics=all'

  // One variant on one setup: the burst, then the timed calls.
  async function pass (server, setup, variant) {
    const v = VARIANTS[variant]
    const lg = (expect) => clients({
      port: server.port,
      n: N,
      path: streamPath(variant),
      expect,
      duration: 180,
      dataPrefix: v.pocketbase ? PB_PREFIX : JSON_PREFIX,
      acceptEncoding: SETUPS[setup].acceptEncoding
    })
    const query = v.pocketbase ? '' : `&size=${v.size}&kind=${v.kind}`
    // The JIT compiles the publish path before anything is timed (on the
    // native PocketBase route, /pb/burst with count=0 runs its warm-up only).
    if (v.pocketbase) await request(server.port, 'POST', '/pb/burst?v=plain&count=0')
    else await request(server.port, 'POST', `/cost?topic=nobody&n=${warmCalls}${query}`)

    const burst = lg(BURST)
    const connected = await burst.ready
    await sleep(settleMs)
    const before = await request(server.port, 'GET', '/stats')
    await request(server.port, 'POST', v.pocketbase ? `/pb/burst?v=plain&count=${BURST}&warm=0` : `/publish?topic=all&count=${BURST}${query}`)
    const r = await burst.done
    const after = await request(server.port, 'GET', '/stats')
    await waitForConnections(server, 0)

    const cost = lg(costCalls)
    const costConnected = await cost.ready
    await sleep(settleMs)
    const c = await request(server.port, 'POST', v.pocketbase ? `/pb/cost?v=plain&n=${costCalls}` : `/cost?topic=all&n=${costCalls}${query}`)
    const rc = await cost.done
    await waitForConnections(server, 0)

    // The server's own rate (native setups: the hub's delivered count): the
    // same burst to N fresh connections that read and discard, the
    // Accept-Encoding sent as a plain header so nothing is inflated, timed
    // from the publish request until the hub counts every delivery (the
    // kernel took the last byte). On this machine the clients share the two
    // cores: inflating each event's own Huffman block makes the decoding load
    // generators slower than the server, so deliveriesPerS above is the
    // clients' rate; this is the server's.
    let serverDeliveriesPerS = null
    if (SETUPS[setup].server === 'native') {
      const enc = SETUPS[setup].acceptEncoding
      const sink = clients({ port: server.port, n: N, path: streamPath(variant), duration: 180, headers: enc ? [`Accept-Encoding: ${enc}`] : [] })
      const sinkConnected = await sink.ready
      await sleep(settleMs)
      const s0 = await request(server.port, 'GET', '/stats')
      const t0 = process.hrtime.bigint()
      await request(server.port, 'POST', v.pocketbase ? `/pb/burst?v=plain&count=${BURST}&warm=0` : `/publish?topic=all&count=${BURST}${query}`)
      const deadline = Date.now() + 60000
      let s1 = s0
      while (s1.delivered - s0.delivered < sinkConnected * BURST && Date.now() < deadline) {
        await sleep(2)
        s1 = await request(server.port, 'GET', '/stats')
      }
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9
      if (s1.delivered - s0.delivered >= sinkConnected * BURST) serverDeliveriesPerS = sinkConnected * BURST / seconds
      sink.stop()
      await sink.done.catch(() => {})
      await waitForConnections(server, 0)
    }

    const events = connected * BURST
    return {
      serverDeliveriesPerS,
      connected,
      complete: r.complete_connections,
      deliveries: r.events,
      expected: events,
      encoded: r.encoded_connections,
      decodeErrors: r.decode_errors + rc.decode_errors,
      decodedBytesPerEvent: r.decoded_bytes / events,
      wireBytesPerEvent: r.wire_bytes / events,
      deliveriesPerS: r.deliveries_per_s,
      timeToLastMs: r.duration_s * 1000,
      p50Ms: r.latency_us?.p50 / 1000,
      p99Ms: r.latency_us?.p99 / 1000,
      cpuUsPerPublish: (after.cpuUs - before.cpuUs) / BURST,
      cpuNsPerDelivery: (after.cpuUs - before.cpuUs) * 1e3 / r.events,
      // The load generator's own CPU per event after its setup: reading,
      // de-chunking, inflating, parsing (one thread: it bounds deliveriesPerS).
      clientNsPerEvent: r.cpu_after_ready_s * 1e9 / r.events, // summed over the load generators
      jsUsPerPublish: (v.pocketbase ? c.medianNs : c.nsPerPublish) / 1e3,
      costCalls: c.n,
      costConnected,
      costComplete: rc.complete_connections,
      inOrderViolations: r.in_order_violations + rc.in_order_violations,
      untimed: r.untimed_events + rc.untimed_events
    }
  }

  // Idle connections, as the memory scenario measures them (pinned young
  // generation, warm-up through /warm, GC before each reading).
  async function memory (setup) {
    const s = SETUPS[setup]
    const server = await startServer(s.server, ['--max-semi-space-size=1'], s.args)
    try {
      const warm = loadgen({ port: server.port, n: N, path: '/warm', duration: 60 })
      await warm.ready.catch(() => {})
      warm.stop()
      await warm.done
      const base = await request(server.port, 'GET', '/stats?gc=1')
      const lg = loadgen({ port: server.port, n: N, path: '/events?topics=all', duration: 120, acceptEncoding: s.acceptEncoding })
      const connected = await lg.ready
      await sleep(1000)
      const held = await request(server.port, 'GET', '/stats?gc=1')
      lg.stop()
      const r = await lg.done
      return { memConnected: connected, memEncoded: r.encoded_connections, rssPerConnB: (held.rss - base.rss) / connected, heapPerConnB: (held.heapUsed - base.heapUsed) / connected }
    } finally {
      await server.stop()
    }
  }

  async function compression () {
    const servers = {}
    const rows = {}
    try {
      for (const [setup, s] of Object.entries(SETUPS)) servers[setup] = await startServer(s.server, [], s.args)
      for (const variant of Object.keys(VARIANTS)) {
        for (const setup of Object.keys(SETUPS)) rows[`${variant}: ${setup}`] = await pass(servers[setup], setup, variant)
      }
    } finally {
      for (const server of Object.values(servers)) await server.stop()
    }
    // The setups take turns, memRounds times: RSS per connection moves by a
    // few hundred bytes from process to process, so one reading each would
    // not tell a difference of 64 bytes from noise; the rounds show the spread.
    const rounds = Object.fromEntries(Object.keys(SETUPS).map((setup) => [setup, []]))
    for (let k = 0; k < memRounds; k++) {
      for (const setup of Object.keys(SETUPS)) rounds[setup].push(await memory(setup))
    }
    const mem = {}
    for (const [setup, rs] of Object.entries(rounds)) {
      const mean = (f) => rs.reduce((a, r) => a + r[f], 0) / rs.length
      mem[setup] = {
        memConnected: rs.reduce((a, r) => a + r.memConnected, 0),
        memEncoded: rs.reduce((a, r) => a + r.memEncoded, 0),
        rssPerConnB: mean('rssPerConnB'),
        rssPerConnRoundsB: rs.map((r) => Math.round(r.rssPerConnB)).join(' '),
        heapPerConnB: mean('heapPerConnB')
      }
    }
    // Ratios against native identity, same variant; memory in bytes against it.
    for (const [name, row] of Object.entries(rows)) {
      const [variant, setup] = name.split(': ')
      const base = rows[`${variant}: ${BASE}`]
      row.wireRatio = row.wireBytesPerEvent / base.wireBytesPerEvent
      row.deliveriesRatio = row.deliveriesPerS / base.deliveriesPerS
      row.serverRatio = row.serverDeliveriesPerS === null ? null : row.serverDeliveriesPerS / base.serverDeliveriesPerS
      row.cpuRatio = row.cpuUsPerPublish / base.cpuUsPerPublish
      row.jsRatio = row.jsUsPerPublish / base.jsUsPerPublish
      Object.assign(row, mem[setup])
      row.rssPerConnDeltaB = mem[setup].rssPerConnB - mem[BASE].rssPerConnB
    }
    return { setups: rows }
  }
  compression.servers = ['native']
  compression.note = ONLY_NATIVE
  compression.ownServers = true
  compression.table = setupsTable

  return { compression }
}

// One row per variant and setup ("json1k: native gzip"); the rest of the
// figures (latency, counts) are in the results file.
const COLUMNS = ['connected', 'complete', 'decodedBytesPerEvent', 'wireBytesPerEvent', 'wireRatio', 'deliveriesPerS', 'deliveriesRatio', 'serverDeliveriesPerS', 'serverRatio',
  'timeToLastMs', 'p99Ms', 'cpuUsPerPublish', 'cpuRatio', 'cpuNsPerDelivery', 'clientNsPerEvent', 'jsUsPerPublish', 'jsRatio', 'rssPerConnB', 'rssPerConnRoundsB', 'rssPerConnDeltaB', 'decodeErrors']

function setupsTable (title, rows, { table, fmtCount }) {
  const flat = []
  for (const r of rows) {
    if (r.values.setups) {
      for (const [name, values] of Object.entries(r.values.setups)) flat.push({ server: name, values })
    } else {
      flat.push(r)
    }
  }
  const columns = [...COLUMNS]
  if (flat.some((r) => r.values.note)) columns.push('note')
  if (flat.some((r) => r.values.error)) columns.push('error')
  return table(title, flat, columns, fmtCount)
}

// Every connection got every event, in order, each with its timestamp, and was
// decoded without an error; the gzip setups' responses were gzip, identity's not.
function compressionProblems (results) {
  const problems = []
  for (const r of results.compression || []) {
    if (r.values.error) continue // reported with the other errors
    for (const [name, x] of Object.entries(r.values.setups || {})) {
      const where = `compression/${name}`
      const coded = SETUPS[name.split(': ')[1]].acceptEncoding !== null
      if (!(x.connected > 0)) problems.push(`${where}: no client connected`)
      if (x.complete !== x.connected || x.deliveries !== x.expected) problems.push(`${where}: ${x.complete} of ${x.connected} clients got every event (${x.deliveries} of ${x.expected} deliveries)`)
      if (x.costComplete !== x.costConnected) problems.push(`${where}: ${x.costComplete} of ${x.costConnected} clients got every event of the timed calls`)
      if (x.inOrderViolations !== 0 || x.untimed !== 0) problems.push(`${where}: ${x.inOrderViolations} events out of order, ${x.untimed} without a timestamp`)
      if (x.decodeErrors !== 0) problems.push(`${where}: ${x.decodeErrors} bodies failed to decode`)
      if (x.encoded !== (coded ? x.connected : 0)) problems.push(`${where}: ${x.encoded} of ${x.connected} responses compressed (expected ${coded ? 'all' : 'none'})`)
      if (!(x.memConnected > 0) || x.memEncoded !== (coded ? x.memConnected : 0)) problems.push(`${where}: memory: ${x.memEncoded} of ${x.memConnected} responses compressed`)
    }
  }
  return problems
}

// The summary lines, in the units the goals are stated in.
function compressionRatios (results, { fmt, ratio }) {
  const rows = results.compression?.find((r) => r.server === 'native')?.values?.setups
  if (!rows) return []
  const row = (v, s) => rows[`${v}: ${s}`]
  const lines = []
  for (const v of Object.keys(VARIANTS)) {
    const b = row(v, BASE)
    const g = row(v, 'native gzip')
    const e = row(v, 'express gzip')
    lines.push(`- compression ${v}, ${b.connected} connections: wire bytes per event native gzip ${fmt(g.wireBytesPerEvent)} = ${ratio(g.wireBytesPerEvent, b.wireBytesPerEvent)} identity (${fmt(b.wireBytesPerEvent)}), express ${fmt(e.wireBytesPerEvent)} = ${ratio(e.wireBytesPerEvent, b.wireBytesPerEvent)}; deliveries/s native gzip ${ratio(g.deliveriesPerS, b.deliveriesPerS)} identity, express ${ratio(e.deliveriesPerS, b.deliveriesPerS)}; CPU per publish native gzip ${fmt(g.cpuUsPerPublish)} µs = ${ratio(g.cpuUsPerPublish, b.cpuUsPerPublish)}, express ${fmt(e.cpuUsPerPublish)} µs = ${ratio(e.cpuUsPerPublish, b.cpuUsPerPublish)}; JS per publish native gzip ${fmt(g.jsUsPerPublish)} µs, express ${fmt(e.jsUsPerPublish)} µs`)
  }
  const b = row('json1k', BASE)
  const g = row('json1k', 'native gzip')
  const e = row('json1k', 'express gzip')
  lines.push(`- compression goals: idle RSS per connection native gzip − identity ${fmt(g.rssPerConnDeltaB)} B (goal ≤ 64 B; rounds: identity ${b.rssPerConnRoundsB} B, native gzip ${g.rssPerConnRoundsB} B, express gzip ${e.rssPerConnRoundsB} B); deliveries/s native gzip / identity, decoding clients ${Object.keys(VARIANTS).map((v) => `${v} ${ratio(row(v, 'native gzip').deliveriesPerS, row(v, BASE).deliveriesPerS)}`).join(', ')}, the server's own rate ${Object.keys(VARIANTS).map((v) => `${v} ${ratio(row(v, 'native gzip').serverDeliveriesPerS, row(v, BASE).serverDeliveriesPerS)}`).join(', ')} (goal ≥ 0.9×); json1k wire bytes ${ratio(g.wireBytesPerEvent, b.wireBytesPerEvent)} (goal ≤ 0.5×)`)
  return lines
}

module.exports = { compressionScenarios, compressionProblems, compressionRatios }
