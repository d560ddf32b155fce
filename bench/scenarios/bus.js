'use strict'
// The Redis bus scenarios of bench/run.js (issue 14: several instances, one
// hub, through one Redis; lib/redis):
//
//   bus         cross-instance fan-out: INSTANCES instances of sse-fanout with a
//               RedisBus, N/INSTANCES connections on each (a load generator per
//               instance), a burst published on one of them; beside it the same
//               N connections on one process without Redis, and the tutorial
//               way (servers/redis-pubsub-server.js: Redis pub/sub and a
//               res.write loop) on INSTANCES processes
//   cost-bus    publish() on the JS thread with a bus (one FCALL, not awaited)
//               against the same server without one, in the same run
//   bus-stream  the limits of one stream: K events through one stream, end to
//               end (published on one instance, read back by 1 or INSTANCES),
//               and Redis's CPU per event
//
// Each starts its own redis-server (test/helpers/redis.js: a free port, a
// temporary directory, no persistence), and stops it at the end; without
// redis-server the scenario fails and says so. They run once, on the native
// row (they start their own processes). bench/README.md says what each figure
// means.
const { redisMissing, RedisServer } = require('../../test/helpers/redis')
const { median: middle } = require('../tools')

const INSTANCES = 3
const BUS_MAX_CONNECTIONS = 9000 // the bus scenario: at most 3 × 3000 (the standard --connections 10000 gives 9000)
const BURST_EVENTS = 20
const BUS_ROUNDS = 3 // bursts per setup in the bus scenario (1 with --quick)
const STREAM_WINDOW = 1024 // bus-stream: FCALLs unanswered at most (the bus's own bound is 10,000)
const STREAM_WAIT_MS = 100000
const ONLY_NATIVE = 'runs once, on the native row (it starts its own instances, baselines and redis-server)'

const sum = (xs) => xs.reduce((a, b) => a + b, 0)

function busScenarios ({ request, startServer, loadgen, sleep, N, EVENT_BYTES, quick }) {
  async function withRedis (fn) {
    const missing = redisMissing()
    if (missing) throw new Error(`the bus scenarios need redis-server: ${missing}`)
    const redis = new RedisServer({})
    try {
      await redis.start()
      return await fn(redis)
    } finally {
      await redis.close()
    }
  }

  // Starts the servers ([name, args] each) at once; stops every one that started.
  async function withServers (specs, fn) {
    const started = await Promise.allSettled(specs.map(([name, args]) => startServer(name, [], args)))
    const servers = started.filter((r) => r.status === 'fulfilled').map((r) => r.value)
    try {
      const failed = started.find((r) => r.status === 'rejected')
      if (failed) throw failed.reason
      return await fn(servers)
    } finally {
      await Promise.all(servers.map((s) => s.stop()))
    }
  }

  const busArgs = (redis, more = []) => ['--history', '--bus', redis.url, ...more]
  const times = (n, spec) => Array.from({ length: n }, () => spec)

  // One load generator per port (min(N, BUS_MAX_CONNECTIONS) / ports.length
  // connections each), then a burst of BURST_EVENTS on publishPort.
  // Deliveries/s over all of them: every event received / (the last receive
  // anywhere − the first send); latency: the worst load generator's p50 and
  // p99. Resolves once every connection is closed again.
  async function burstRound (ports, publishPort) {
    const per = Math.floor(Math.min(N, BUS_MAX_CONNECTIONS) / ports.length)
    const lgs = ports.map((port) => loadgen({ port, n: per, expect: BURST_EVENTS, duration: 30 }))
    const connected = sum(await Promise.all(lgs.map((lg) => lg.ready.catch(() => 0))))
    await sleep(300)
    await request(publishPort, 'POST', `/publish?topic=all&count=${BURST_EVENTS}&size=${EVENT_BYTES}`)
    const rs = await Promise.all(lgs.map((lg) => lg.done))
    const failed = rs.find((r) => r.error)
    if (failed) throw new Error(`loadgen: ${failed.error}`)
    for (const port of new Set(ports)) await connectionsGone(port)
    const seen = rs.filter((r) => r.events > 0)
    const first = Math.min(...seen.map((r) => r.first_event_ns))
    const last = Math.max(...seen.map((r) => r.last_event_ns))
    const seconds = (last - first) / 1e9
    const deliveries = sum(rs.map((r) => r.events))
    return {
      connected,
      complete: sum(rs.map((r) => r.complete_connections)),
      deliveries,
      expected: connected * BURST_EVENTS,
      deliveriesPerS: seen.length ? deliveries / seconds : 0,
      timeToLastMs: seen.length ? seconds * 1000 : undefined,
      p50Ms: Math.max(...rs.map((r) => r.latency_us?.p50)) / 1000,
      p99Ms: Math.max(...rs.map((r) => r.latency_us?.p99)) / 1000,
      inOrderViolations: sum(rs.map((r) => r.in_order_violations)),
      untimed: sum(rs.map((r) => r.untimed_events))
    }
  }

  async function connectionsGone (port) {
    const deadline = Date.now() + 20000
    while (Date.now() < deadline) {
      if ((await request(port, 'GET', '/stats')).connections === 0) return
      await sleep(100)
    }
  }

  // The rounds of one setup as one row: times and rates are the medians of
  // the rounds (the rounds' deliveries/s listed), counts their sums
  // (connected: connections over all rounds).
  function summarize (rounds) {
    const median = (key) => middle(rounds.map((r) => r[key]))
    const total = (key) => sum(rounds.map((r) => r[key]))
    return {
      rounds: rounds.length,
      connected: total('connected'),
      complete: total('complete'),
      deliveries: total('deliveries'),
      expected: total('expected'),
      deliveriesPerS: median('deliveriesPerS'),
      timeToLastMs: median('timeToLastMs'),
      p50Ms: median('p50Ms'),
      p99Ms: median('p99Ms'),
      deliveriesRoundsPerS: rounds.map((r) => `${Math.round(r.deliveriesPerS / 1000)}k`).join(' '),
      inOrderViolations: total('inOrderViolations'),
      untimed: total('untimed')
    }
  }

  // The three setups run side by side, all their servers up at once (idle
  // between their turns): one unmeasured burst on each before anyone connects
  // (the publish path, and for the bus the FCALL, the read back and
  // publishBatch, run once; its read back awaited on every instance), then
  // BUS_ROUNDS rounds, each a burst to fresh connections on every setup in
  // turn, so a slow moment of the shared machine does not fall on one setup.
  async function bus () {
    const rounds = quick ? 1 : BUS_ROUNDS
    return withRedis((redis) => withServers([
      ['native', ['--history']],
      ...times(INSTANCES, ['native', busArgs(redis)]),
      ...times(INSTANCES, ['redis-pubsub', ['--redis', redis.url]])
    ], async (servers) => {
      const one = servers[0]
      const instances = servers.slice(1, 1 + INSTANCES)
      const tutorial = servers.slice(1 + INSTANCES)
      const busRead = (n) => Promise.all(instances.map((x) => request(x.port, 'GET', `/bus/wait?read=${n}&timeoutMs=10000`)))
      const setups = {
        'one process': { ports: times(INSTANCES, one.port), publish: one.port },
        bus: { ports: instances.map((x) => x.port), publish: instances[0].port },
        tutorial: { ports: tutorial.map((x) => x.port), publish: tutorial[0].port }
      }
      for (const setup of Object.values(setups)) {
        await request(setup.publish, 'POST', `/publish?topic=all&count=${BURST_EVENTS}&size=${EVENT_BYTES}`)
        setup.rounds = []
      }
      await busRead(BURST_EVENTS)
      await sleep(200)
      for (let i = 0; i < rounds; i++) {
        for (const setup of Object.values(setups)) setup.rounds.push(await burstRound(setup.ports, setup.publish))
      }
      const reads = await busRead((rounds + 1) * BURST_EVENTS)
      const out = {}
      for (const [name, setup] of Object.entries(setups)) out[name] = summarize(setup.rounds)
      out.bus.busReadMin = Math.min(...reads.map((x) => x.read))
      return { setups: out }
    }))
  }

  // Two servers, one with the bus, one without (history on in both), N/2
  // connections on "all" each; after the same warm-up on a topic nobody has,
  // /cost times `calls` publishes to "all" on each, one per event-loop turn,
  // each call on its own (median and p99, the clock's cost subtracted). The
  // bus server also reports the most FCALLs unanswered after a timed call, and
  // the time until it read all its events back; every connection must get
  // every timed event.
  async function costBus () {
    const half = Math.floor(N / 2)
    const warm = quick ? 5000 : 20000
    const calls = quick ? 1000 : 2000
    return withRedis((redis) => withServers([['native', busArgs(redis)], ['native', ['--history']]], async (servers) => {
      const lgs = servers.map((s) => loadgen({ port: s.port, n: half, expect: calls, duration: 120 }))
      const connected = await Promise.all(lgs.map((lg) => lg.ready.catch(() => 0)))
      await sleep(500)
      for (const s of servers) await request(s.port, 'POST', `/cost?topic=nobody&n=${warm}&size=${EVENT_BYTES}`)
      const setups = {}
      for (const [i, name] of [[0, 'bus'], [1, 'no bus']]) {
        const s = servers[i]
        const r = await request(s.port, 'POST', `/cost?topic=all&n=${calls}&size=${EVENT_BYTES}`)
        const out = { medianNs: r.nsPerPublish, p90Ns: r.p90, p99Ns: r.p99, calls: r.n }
        if (i === 0) {
          // Every FCALL answered and read back: warm + calls entries.
          const t0 = performance.now()
          const w = await request(s.port, 'GET', `/bus/wait?read=${warm + calls}&timeoutMs=30000`)
          const stats = await request(s.port, 'GET', '/stats')
          Object.assign(out, {
            maxInflight: r.maxInflight,
            readBackMs: w.reachedNs === null ? undefined : performance.now() - t0,
            read: w.read,
            expectedRead: warm + calls,
            inflightAfter: stats.bus?.inflight
          })
        }
        setups[name] = out
      }
      const rs = await Promise.all(lgs.map((lg) => lg.done))
      rs.forEach((r, i) => Object.assign(setups[i ? 'no bus' : 'bus'], {
        connected: connected[i],
        complete: r.complete_connections,
        inOrderViolations: r.in_order_violations
      }))
      return { setups }
    }))
  }

  // K events of EVENT_BYTES through one stream: one instance publishes them
  // (bus.publish, at most STREAM_WINDOW unanswered), 1 or INSTANCES instances
  // read them back (each on a prefix of its own, maxLen 2K: nothing trimmed
  // while it runs). eventsPerS = K / (the last instance's read of the K-th
  // event − the publisher's start); Redis's CPU (INFO cpu, user + sys) and
  // memory (INFO memory) before and after, per event.
  async function busStream () {
    const K = quick ? 10000 : 100000
    return withRedis(async (redis) => {
      const setups = {}
      for (const readers of [1, INSTANCES]) {
        const args = busArgs(redis, ['--bus-prefix', `bench:{stream${readers}}`, '--bus-maxlen', String(2 * K)])
        setups[`${readers} reading`] = await withServers(times(readers, ['native', args]), async (s) => {
          // One event first, read back by every instance: the stream's epoch is
          // made and every instance is at it (a rebase each, without a reset).
          await request(s[0].port, 'POST', `/stream?count=1&size=${EVENT_BYTES}`)
          await Promise.all(s.map((x) => request(x.port, 'GET', '/bus/wait?read=1&timeoutMs=10000')))
          const rebasesBefore = sum((await Promise.all(s.map((x) => request(x.port, 'GET', '/stats')))).map((x) => x.bus?.rebases))
          const before = await redisInfo(redis)
          const waits = s.map((x) => request(x.port, 'GET', `/bus/wait?read=${K + 1}&timeoutMs=${STREAM_WAIT_MS}`))
          const pub = await request(s[0].port, 'POST', `/stream?count=${K}&size=${EVENT_BYTES}&window=${STREAM_WINDOW}`)
          const reached = await Promise.all(waits)
          const after = await redisInfo(redis)
          const stats = await Promise.all(s.map((x) => request(x.port, 'GET', '/stats')))
          const start = BigInt(pub.startNs)
          const allRead = reached.every((r) => r.reachedNs !== null)
          const seconds = allRead ? Number(reached.reduce((m, r) => (BigInt(r.reachedNs) > m ? BigInt(r.reachedNs) : m), 0n) - start) / 1e9 : undefined
          const publishSeconds = Number(BigInt(pub.endNs) - start) / 1e9
          return {
            readers,
            events: K,
            eventsPerS: allRead ? K / seconds : undefined,
            allReadMs: allRead ? seconds * 1000 : undefined,
            publishedPerS: K / publishSeconds,
            redisCpuUsPerEvent: (after.cpu - before.cpu) / K * 1e6,
            redisCpuS: after.cpu - before.cpu,
            fcallUsPerEvent: (after.fcallUs - before.fcallUs) / K,
            xreadUsPerEvent: (after.xreadUs - before.xreadUs) / K,
            redisBytesPerEvent: (after.memory - before.memory) / K,
            readMin: Math.min(...reached.map((r) => r.read)) - 1,
            queued: pub.queued,
            failed: pub.failed,
            rebases: sum(stats.map((x) => x.bus?.rebases)) - rebasesBefore
          }
        })
      }
      return { setups }
    })
  }

  async function redisInfo (redis) {
    const text = await redis.cli('INFO', 'all')
    const field = (name) => Number(text.match(new RegExp(`^${name}:([0-9.]+)`, 'm'))?.[1])
    // cmdstat_<command>:calls=..,usec=..: the time inside the command (no I/O).
    const usec = (command) => Number(text.match(new RegExp(`^cmdstat_${command}:calls=\\d+,usec=(\\d+)`, 'm'))?.[1] ?? 0)
    return { cpu: field('used_cpu_sys') + field('used_cpu_user'), memory: field('used_memory'), fcallUs: usec('fcall'), xreadUs: usec('xread') }
  }

  for (const scenario of [bus, costBus, busStream]) {
    scenario.servers = ['native']
    scenario.note = ONLY_NATIVE
    scenario.ownServers = true
    scenario.table = setupsTable
  }
  return { bus, 'cost-bus': costBus, 'bus-stream': busStream }
}

// One row per setup (the scenario ran once, on the native row); the other
// servers' rows (a note that says so) only when it did not run.
function setupsTable (title, rows, { table, fmtCount }) {
  const flat = []
  for (const r of rows) {
    for (const [name, values] of Object.entries(r.values.setups || {})) flat.push({ server: name, values })
  }
  return table(title, flat.length ? flat : rows, undefined, fmtCount)
}

// --check: every client of every setup got every event, in order; nothing
// piled up or was lost on the bus.
function busProblems (results) {
  const problems = []
  const setups = (scenario) => (results[scenario] || []).flatMap((r) => Object.entries(r.values.setups || {}))
  for (const [name, x] of setups('bus')) {
    if (!(x.connected > 0) || x.complete !== x.connected || x.deliveries !== x.expected) problems.push(`bus/${name}: ${x.complete} of ${x.connected} clients got every event (${x.deliveries} of ${x.expected})`)
    if (x.inOrderViolations !== 0 || x.untimed !== 0) problems.push(`bus/${name}: ${x.inOrderViolations} events out of order, ${x.untimed} without a timestamp`)
  }
  for (const [name, x] of setups('cost-bus')) {
    if (!(x.connected > 0) || x.complete !== x.connected) problems.push(`cost-bus/${name}: ${x.complete} of ${x.connected} clients got every timed event`)
    if (x.inOrderViolations !== 0) problems.push(`cost-bus/${name}: ${x.inOrderViolations} events out of order`)
    if (name === 'bus' && (x.read !== x.expectedRead || x.inflightAfter !== 0)) problems.push(`cost-bus/bus: ${x.read} of ${x.expectedRead} events read back, ${x.inflightAfter} FCALLs unanswered`)
  }
  for (const [name, x] of setups('bus-stream')) {
    if (x.readMin !== x.events || x.queued !== 0 || x.failed !== 0 || x.rebases !== 0) problems.push(`bus-stream/${name}: ${x.readMin} of ${x.events} events read by every instance (${x.queued} queued, ${x.failed} failed, ${x.rebases} rebases)`)
  }
  return problems
}

// The summary lines, in the units the goals are stated in.
function busRatios (results, { fmt, ratio }) {
  const lines = []
  const setup = (scenario, name) => results[scenario]?.find((r) => r.values.setups)?.values.setups[name]
  if (results.bus) {
    const b = setup('bus', 'bus')
    const one = setup('bus', 'one process')
    const tut = setup('bus', 'tutorial')
    lines.push(`- bus fan-out (${INSTANCES} instances, ${b ? b.connected / b.rounds : '–'} clients, a burst of ${BURST_EVENTS} on one instance, median of ${b?.rounds ?? '–'} rounds): ${fmt(b?.deliveriesPerS)} deliveries/s = ${ratio(b?.deliveriesPerS, one?.deliveriesPerS)} one process (goal ≥ 0.7×), ${ratio(b?.deliveriesPerS, tut?.deliveriesPerS)} the tutorial (Redis pub/sub + res.write); p99 (worst instance) bus ${fmt(b?.p99Ms)} ms, one process ${fmt(one?.p99Ms)} ms, tutorial ${fmt(tut?.p99Ms)} ms`)
  }
  if (results['cost-bus']) {
    const b = setup('cost-bus', 'bus')
    const n = setup('cost-bus', 'no bus')
    lines.push(`- publish() on the JS thread with a bus: median ${fmt(b?.medianNs / 1000)} µs (goal ≤ 2 µs), p99 ${fmt(b?.p99Ns / 1000)} µs; without: median ${fmt(n?.medianNs / 1000)} µs, p99 ${fmt(n?.p99Ns / 1000)} µs (${ratio(b?.medianNs, n?.medianNs)}); at most ${fmt(b?.maxInflight)} FCALLs unanswered, all read back ${fmt(b?.readBackMs)} ms after the last call`)
  }
  if (results['bus-stream']) {
    const one = setup('bus-stream', '1 reading')
    const all = setup('bus-stream', `${INSTANCES} reading`)
    lines.push(`- one stream, ${fmt(one?.events)} events of 256 B end to end: ${fmt(one?.eventsPerS)} events/s with 1 instance reading, ${fmt(all?.eventsPerS)} with ${INSTANCES}; Redis CPU ${fmt(one?.redisCpuUsPerEvent)} µs/event (1), ${fmt(all?.redisCpuUsPerEvent)} µs/event (${INSTANCES})`)
  }
  return lines
}

module.exports = { busScenarios, busRatios, busProblems }
