'use strict'
// Fault test: soak. N connections (the load generator) for the whole run,
// each subscribed to "all" and to one of 100 rooms; moderate load: every
// 100 ms a 256-byte broadcast and a 128-byte publish to each of the next 10
// rooms (each client gets 11 events/s; N * 11 deliveries/s in all), default
// heartbeats; light churn beside it: a second client process opens 50 more
// connections (with users and pattern subscriptions), then closes them, in a
// loop. After each churn round, once the registry is back to N, the server is
// sampled after GC (RSS, heap, fds). Checked, after the warm-up:
//   - RSS growth under 1 MiB/min (least-squares slope over the samples; at
//     ci scale, where the window is 40 s, also allowing for the sample noise:
//     see RSS_NOISE);
//   - fd count flat: the same at every sample;
//   - every long-lived client got every event, once, in order.
// Scale: full = 10 min at 10k connections (SSE_STRESS_SOAK_S overrides the
// length); ci = 60 s at 1k.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { StressServer } = require('../helpers/stress-server')
const { Clients } = require('../helpers/clients')
const { cleanup, sleep, waitFor } = require('../helpers/wait')
const { SCALE, MiB, scaled, orAfter, slope, loadgen, record, fig, mib, machineLoad } = require('../helpers/stress-common')

const N = scaled({ ci: 1000, full: 10000 })
const SECONDS = Number(process.env.SSE_STRESS_SOAK_S) || scaled({ ci: 60, full: 600 })
const WARMUP_S = Math.min(scaled({ ci: 20, full: 120 }), Math.floor(SECONDS / 3))
const SAMPLE_EVERY_MS = scaled({ ci: 4000, full: 15000 })
const TICK_MS = 100
const TICKS = Math.floor((SECONDS * 1000) / TICK_MS / 10) * 10 // a multiple of 10: every room gets the same count
const ROOMS = Array.from({ length: 100 }, (_, i) => `room/${i}`)
const EXPECTED = TICKS + TICKS / 10 // per client: every broadcast, and one room publish in 10 ticks
const CHURN = 50
// RSS bound: 1 MiB/min after warm-up (the issue's). The samples are RSS after
// GC, which still moves by up to about 1 MiB between samples (malloc arenas,
// V8 pages); over a short window that noise alone can look like a slope, so
// the total growth over the window may also exceed slope * minutes by
// RSS_NOISE. The slope itself is asserted only over windows of 5 min or more.
const RSS_SLOPE_BOUND = 1 * MiB // per minute
const RSS_NOISE = 1.5 * MiB

test(`soak: ${SECONDS} s at ${N} connections, moderate load and churn (scale ${SCALE})`, async (t) => {
  const defer = cleanup(t, 20000)
  const server = await StressServer.start({}, { lifetimeMs: (SECONDS + 600) * 1000 })
  defer(() => server.stop(), 'server.stop()')
  const lg = loadgen({ port: server.port, n: N, path: '/sse?t=all&t=room/{mod:100}', expect: EXPECTED, duration: SECONDS + 180 })
  defer(() => lg.kill('SIGTERM'), 'loadgen')
  assert.equal(await lg.ready, N)
  await waitFor(async () => (await server.stats()).hub.connections === N, 60000, `${N} connections`)
  const churn = await Clients.start({ lifetimeMs: (SECONDS + 300) * 1000 })
  defer(() => churn.stop(), 'churn clients')

  const t0 = Date.now()
  const running = server.run({
    ticks: TICKS,
    tickMs: TICK_MS,
    maxMs: (SECONDS + 60) * 1000,
    items: [
      { kind: 'broadcast', bytes: 256 },
      { kind: 'publish', topics: ROOMS, perTick: 10, bytes: 128 }
    ]
  })
  let done = false
  running.finally(() => { done = true }).catch(() => {})

  const samples = []
  let churnRounds = 0
  let churnFailures = 0
  let nextSample = Date.now()
  // eslint-disable-next-line no-unmodified-loop-condition -- `done` is set when `running` settles
  while (!done) {
    // A churn round: 50 connections open, receive for a moment, close.
    const opened = await churn.open({
      n: CHURN,
      port: server.port,
      path: `/sse?t=room/*&t=all&u=churn{i}&tag=${churnRounds}`,
      allowFailures: true,
      timeoutMs: 20000
    })
    churnFailures += opened.notReady.length
    await sleep(200)
    await churn.close({ indices: opened.indices })
    churnRounds++
    // (Once the publisher is done the load generator leaves too: stop waiting then.)
    await waitFor(async () => done || (await server.stats()).hub.connections === N, 20000, 'churn connections gone')
    if (Date.now() >= nextSample && !done) {
      const m = await server.mem()
      if (m.hub.connections === N) { // still quiescent after the GC pause
        samples.push({ s: (Date.now() - t0) / 1000, rss: m.rss, heapUsed: m.heapUsed, external: m.external, fds: m.fds, queueBytes: m.hub.queueBytes })
      }
      nextSample += SAMPLE_EVERY_MS
    }
    await sleep(300)
  }
  const run = await running
  const lgResult = await orAfter(lg.done, 60000, () => lg.kill('SIGTERM'))

  const steady = samples.filter((x) => x.s >= WARMUP_S)
  const minutes = steady.length > 1 ? (steady[steady.length - 1].s - steady[0].s) / 60 : 0
  const rssSlope = slope(steady.map((x) => x.s / 60), steady.map((x) => x.rss)) // bytes per minute
  const rssGrowth = steady.length > 1 ? steady[steady.length - 1].rss - steady[0].rss : 0
  const heapSlope = slope(steady.map((x) => x.s / 60), steady.map((x) => x.heapUsed))
  const fdSet = [...new Set(steady.map((x) => x.fds))]
  const figures = {
    connections: N,
    seconds: SECONDS,
    warmupS: WARMUP_S,
    published: run.total,
    deliveriesPerS: Math.round(lgResult.events / SECONDS),
    churnRounds,
    samplesAfterWarmup: steady.length,
    rssStartMiB: steady.length ? mib(steady[0].rss) : null,
    rssEndMiB: steady.length ? mib(steady[steady.length - 1].rss) : null,
    rssSlopeMiBPerMin: fig(Number((rssSlope / MiB).toFixed(3)), minutes >= 5 ? 1 : 'not asserted: window < 5 min'),
    rssGrowthMiB: fig(mib(rssGrowth), mib(RSS_SLOPE_BOUND * minutes + RSS_NOISE)),
    heapSlopeMiBPerMin: Number((heapSlope / MiB).toFixed(3)),
    fdValues: fig(fdSet, 'one value'),
    complete: fig(lgResult.complete_connections, N),
    events: fig(lgResult.events, EXPECTED * N),
    inOrderViolations: fig(lgResult.in_order_violations, 0),
    latencyP99Ms: lgResult.latency_us ? Number((lgResult.latency_us.p99 / 1000).toFixed(1)) : null,
    publisherLateMs: run.lateMs,
    samples: samples.map((x) => ({ s: Math.round(x.s), rssMiB: mib(x.rss), heapMiB: mib(x.heapUsed), fds: x.fds }))
  }
  record('soak', t.name, figures)
  t.diagnostic(JSON.stringify({ ...figures, samples: undefined, ...machineLoad() }))

  assert.equal(run.ticks, TICKS, 'the publisher ran its whole course')
  assert.equal(churnFailures, 0, 'every churn connection opened')
  assert.ok(steady.length >= 5, `${steady.length} samples after the warm-up`)
  // fd count flat: identical at every quiescent sample (N long-lived + the
  // server's own), i.e. every churn connection's fd was closed.
  assert.equal(fdSet.length, 1, `fd counts after warm-up: ${fdSet.join(', ')}`)
  // Memory growth under 1 MiB/min (see RSS_SLOPE_BOUND / RSS_NOISE).
  assert.ok(rssGrowth <= RSS_SLOPE_BOUND * minutes + RSS_NOISE,
    `RSS grew ${mib(rssGrowth)} MiB in ${minutes.toFixed(1)} min after warm-up`)
  if (minutes >= 5) {
    assert.ok(rssSlope < RSS_SLOPE_BOUND, `RSS slope ${(rssSlope / MiB).toFixed(3)} MiB/min after warm-up`)
  }
  // Delivery: every long-lived client got all EXPECTED events, once, in order.
  assert.equal(lgResult.exit_reason, 'expect', `load generator: ${JSON.stringify({ ...lgResult, latency_us: undefined })}`)
  assert.equal(lgResult.complete_connections, N)
  assert.equal(lgResult.lost, 0)
  assert.equal(lgResult.protocol_errors, 0)
  assert.equal(lgResult.events, EXPECTED * N)
  assert.equal(lgResult.in_order_violations, 0)
})
