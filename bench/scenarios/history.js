'use strict'
// The history scenarios of bench/run.js (issue 12: Last-Event-ID replay):
//
//   resume          N clients reconnect at once with a Last-Event-ID RESUME_MISSED
//                   events back: time until every client has them all, and the
//                   server's event-loop delay meanwhile; sse-fanout (history: true)
//                   beside a hand-written node:http server keeping an array
//   cost-history    the cost scenario (ns per publish on the JS thread) with history
//                   off and on, in one server process, calls taking turns
//   history-memory  bytes per history entry beyond its frame: 100k events held
//                   with history on, against the same publishes with it off
//
// Each takes the runner's context (request, startServer, loadgen, N, ...)
// and returns one scenario object per name; bench/README.md says what each
// figure means.

const { median: middle } = require('../tools')

// The servers with a history (servers/node-server.js --history); the others get a note.
const HISTORY_SERVERS = ['native', 'js', 'plain']
const NO_HISTORY = 'no history: the floor and better-sse keep none'
const RESUME_MISSED = 100
const RESUME_ROUNDS = 3
const MEMORY_ENTRIES = 100000
const MEMORY_CHUNK = 1000 // events per POST /publish while filling the history

function historyScenarios ({ request, startServer, loadgen, waitForConnections, sleep, N, EVENT_BYTES }) {
  // Publishes 1 + RESUME_MISSED events to "all", then N clients connect with the
  // id of the first as their Last-Event-ID: each misses exactly RESUME_MISSED.
  // The ids come from the server (sse-fanout's publish() returns the wire id;
  // plain numbers its own). Nothing is published during the storm, so the load
  // generator's in-order check and event count see the replay alone, and it
  // holds the connections open once all have caught up (--hold) while the
  // server's event-loop figures are read, so the closing does not count.
  // Beside it, on the same server, the same storm without a cursor: the time
  // until every client has its response head, which both storms pay; the
  // resume's extra time over it is what the replay costs. After one unmeasured
  // storm that warms the accept path, RESUME_ROUNDS rounds of (without, with a
  // cursor); times and loop delays are the medians of the rounds (the machine
  // is shared: one storm can be off by 2x), counts are over all rounds.
  async function resume (server) {
    const ids = await request(server.port, 'POST', `/publish?topic=all&count=${RESUME_MISSED + 1}&size=${EVENT_BYTES}`)
    if (typeof ids.first !== 'string') throw new Error('the server returned no event id (is history on?)')
    await storm(server, [])
    const rounds = []
    for (let i = 0; i < RESUME_ROUNDS; i++) {
      const control = await storm(server, [])
      rounds.push({ control, resume: await storm(server, [`Last-Event-ID: ${ids.first}`]) })
    }
    const median = (f) => middle(rounds.map(f))
    const sum = (f) => rounds.reduce((n, x) => n + f(x), 0)
    const caughtUpMs = median((x) => x.resume.r.caught_up_s * 1000)
    const connectOnlyMs = median((x) => x.control.r.setup_s * 1000)
    return {
      connected: Math.min(...rounds.map((x) => x.resume.connected)),
      complete: Math.min(...rounds.map((x) => x.resume.r.complete_connections)),
      deliveries: sum((x) => x.resume.r.events),
      expected: sum((x) => x.resume.connected * RESUME_MISSED),
      caughtUpMs,
      connectOnlyMs,
      replayExtraMs: caughtUpMs - connectOnlyMs,
      perClientP50Ms: median((x) => x.resume.r.catch_up_us.p50 / 1000),
      perClientP99Ms: median((x) => x.resume.r.catch_up_us.p99 / 1000),
      eldP99Ms: median((x) => x.resume.s.eldP99Ms),
      eldMaxMs: median((x) => x.resume.s.eldMaxMs),
      elu: median((x) => x.resume.s.elu),
      connectOnlyEldP99Ms: median((x) => x.control.s.eldP99Ms),
      caughtUpRoundsMs: rounds.map((x) => Math.round(x.resume.r.caught_up_s * 1000)).join(' '),
      historyEvents: rounds[0].resume.s.history?.events,
      inOrderViolations: sum((x) => x.resume.r.in_order_violations),
      untimed: sum((x) => x.resume.r.untimed_events)
    }
  }
  // N clients at once; with a cursor each must get RESUME_MISSED events, without
  // one the storm is over when every client has its head.
  async function storm (server, headers) {
    await request(server.port, 'GET', '/stats?reset=1')
    const expect = headers.length ? RESUME_MISSED : 0
    const lg = loadgen({ port: server.port, n: N, expect, duration: 120, headers, hold: true })
    const connected = await lg.ready.catch(() => 0)
    if (expect) await lg.met.catch(() => {})
    const s = await request(server.port, 'GET', '/stats')
    lg.stop()
    const r = await lg.done
    await waitForConnections(server, 0)
    return { r, s, connected }
  }
  resume.servers = HISTORY_SERVERS
  resume.serverArgs = ['--history']
  resume.note = NO_HISTORY
  resume.counts = true

  // The cost scenario with history off and on in one server process (--pair: two
  // hubs, or two plain servers), so both are timed under the same conditions:
  // N/2 connections on each (all, s<i%10>, d<i%1000>, as in cost), the same
  // warm-up (it fills the history: every publish then also evicts the oldest),
  // then calls that alternate between the two, each timed on its own. The
  // figure is on / off at each subscriber count.
  async function costHistory (server) {
    const half = Math.floor(N / 2)
    const path = (hub) => `/events?topics=all,s{mod:10},d{mod:1000}&hub=${hub}`
    const lgs = ['off', 'on'].map((hub) => loadgen({ port: server.port, n: half, path: path(hub), duration: 180 }))
    await Promise.all(lgs.map((lg) => lg.ready))
    await sleep(500)
    await request(server.port, 'POST', `/cost?topic=nobody&n=50000&size=${EVENT_BYTES}`)
    const out = {}
    for (const [topic, subs] of [['d1', half / 1000], ['s1', half / 10], ['all', half]]) {
      const n = Math.max(10, Math.min(2000, Math.floor(200000 / subs)))
      const r = await request(server.port, 'POST', `/cost?topic=${topic}&n=${n}&size=${EVENT_BYTES}`)
      out[`off ns@${subs}`] = r.nsPerPublish
      out[`on ns@${subs}`] = r.on?.nsPerPublish
      out[`on/off ns@${subs}`] = r.on?.nsPerPublish / r.nsPerPublish
      await sleep(1500)
    }
    for (const lg of lgs) lg.stop()
    await Promise.all(lgs.map((lg) => lg.done))
    return out
  }
  costHistory.serverArgs = ['--pair']
  costHistory.servers = HISTORY_SERVERS
  costHistory.note = NO_HISTORY

  // Two fresh servers (Node's default flags; the runner's --expose-gc defines
  // gc() only), no connection: MEMORY_ENTRIES events of EVENT_BYTES published to a
  // topic nobody has, in chunks, with history off and with a history that holds
  // them all. Memory is read after two forced GCs before and after the publishes.
  // What an entry costs beyond its frame bytes (the history's own bytes count):
  //   rss: (growth on - growth off - frame bytes held) / entries
  // and the same for RSS as it stands at the end (the two processes did the same
  // work but for the history), which also counts what the history allocated at
  // construction; heapUsed growth shows what sits on the V8 heap (the pure-JS
  // history's objects and strings). The RSS difference splits into the main
  // malloc arena (brkPerEntryB: for sse-fanout the frames' blocks, header, wire
  // bytes, topic tag and malloc rounding, as the JS thread mallocs them), V8's
  // heap (v8PerEntryB, physical: pages V8 kept, used or not) and the rest
  // (restPerEntryB: for sse-fanout the history's ring, a block large enough to
  // be mmapped): what its history holds beyond its frames.
  async function historyMemory (server) {
    const runs = {}
    for (const [variant, args] of [['off', []], ['on', ['--history-events', String(MEMORY_ENTRIES)]]]) {
      runs[variant] = await withServer(server.name, args, async (s) => {
        const base = await request(s.port, 'GET', '/stats?gc=1&smaps=1')
        for (let i = 0; i < MEMORY_ENTRIES; i += MEMORY_CHUNK) {
          await request(s.port, 'POST', `/publish?topic=nobody&count=${MEMORY_CHUNK}&size=${EVENT_BYTES}`)
        }
        await sleep(500)
        const end = await request(s.port, 'GET', '/stats?gc=1&smaps=1')
        return { base, end }
      })
    }
    const { off, on } = runs
    const held = on.end.history
    if (!held || held.events !== MEMORY_ENTRIES) throw new Error(`the history holds ${held?.events} events, not ${MEMORY_ENTRIES}`)
    const growth = (run, key) => run.end[key] - run.base[key]
    const perEntry = (bytes) => bytes / held.events
    const diff = (key) => growth(on, key) - growth(off, key)
    return {
      entries: held.events,
      frameBytesPerEntry: perEntry(held.bytes),
      rssGrowthOnMiB: growth(on, 'rss') / 2 ** 20,
      rssGrowthOffMiB: growth(off, 'rss') / 2 ** 20,
      overheadPerEntryB: perEntry(growth(on, 'rss') - growth(off, 'rss') - held.bytes),
      overheadPerEntryEndRssB: perEntry(on.end.rss - off.end.rss - held.bytes),
      heapPerEntryB: perEntry(growth(on, 'heapUsed') - growth(off, 'heapUsed')),
      brkPerEntryB: perEntry(diff('brkHeapRss')),
      v8PerEntryB: perEntry(diff('v8PhysicalBytes')),
      restPerEntryB: perEntry(diff('rss') - diff('brkHeapRss') - diff('v8PhysicalBytes'))
    }
  }
  historyMemory.servers = HISTORY_SERVERS.filter((s) => s !== 'js') // the same history as native
  historyMemory.note = 'no history (the floor, better-sse), or native\'s (js: the same Hub)'
  historyMemory.ownServers = true

  async function withServer (name, args, fn) {
    const s = await startServer(name, [], args)
    s.name = name
    try {
      return await fn(s)
    } finally {
      await s.stop()
    }
  }

  return { resume, 'cost-history': costHistory, 'history-memory': historyMemory }
}

// The summary lines of the history scenarios, in the units the goals are stated in.
function historyRatios (results, { fmt, ratio }) {
  const lines = []
  const get = (scenario, server) => results[scenario]?.find((r) => r.server === server)?.values
  if (results.resume) {
    const n = get('resume', 'native')
    const p = get('resume', 'plain')
    const j = get('resume', 'js')
    lines.push(`- resume storm (${n?.connected ?? '–'} clients, ${RESUME_MISSED} events back): caught up native ${fmt(n?.caughtUpMs)} ms, plain ${fmt(p?.caughtUpMs)} ms = ${ratio(p?.caughtUpMs, n?.caughtUpMs)} faster (goal ≥ 5×), js transport ${fmt(j?.caughtUpMs)} ms; event-loop delay p99 native ${fmt(n?.eldP99Ms)} ms (goal ≤ 5), plain ${fmt(p?.eldP99Ms)} ms, js ${fmt(j?.eldP99Ms)} ms`)
    lines.push(`- resume storm, the replay's extra time over the same storm without a cursor: native ${fmt(n?.replayExtraMs)} ms, plain ${fmt(p?.replayExtraMs)} ms = ${ratio(p?.replayExtraMs, n?.replayExtraMs)} less, js ${fmt(j?.replayExtraMs)} ms (connect-only storm: native ${fmt(n?.connectOnlyMs)} ms, plain ${fmt(p?.connectOnlyMs)} ms)`)
  }
  if (results['cost-history']) {
    for (const server of ['native', 'js', 'plain']) {
      const v = get('cost-history', server)
      if (!v || v.error || v.note) continue
      const keys = Object.keys(v).filter((k) => k.startsWith('on/off '))
      lines.push(`- publish() cost, history on / off, ${server}: ${keys.map((k) => `${fmt(v[k])}× at ${k.split('@')[1]} subscribers`).join(', ')}${server === 'native' ? ' (goal ≤ 1.1×)' : ''}`)
    }
  }
  if (results['history-memory']) {
    const entry = (s) => {
      const v = get('history-memory', s)
      return v && !v.error ? `${fmt(v.overheadPerEntryB)} B beyond its wire bytes (${fmt(v.overheadPerEntryEndRssB)} B by end RSS)` : '–'
    }
    const n = get('history-memory', 'native')
    lines.push(`- memory per history entry, RSS (${MEMORY_ENTRIES / 1000}k entries): native ${entry('native')}, plain ${entry('plain')}; native beyond its frame (RSS outside the malloc heap of the frames and V8's heap: the ring): ${fmt(n?.restPerEntryB)} B (goal ≤ 64 B; history_bench's BM_HistoryEntryBytes counts it exactly)`)
  }
  return lines
}

module.exports = { historyScenarios, historyRatios }
