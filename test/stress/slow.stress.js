'use strict'
// Fault test: slow consumers. N clients subscribe to one topic; S of them
// never read (their sockets are paused right after the request); the server
// publishes 1 KiB events at 50/s. Checked:
//   - every stalled client is dropped with reason `slow`, not before its
//     queue could have filled and not later than the bound below;
//   - the server's RSS and the kernel's TCP memory (/proc/net/sockstat) stay
//     under the bounds below, computed from the hub's options;
//   - every healthy client receives every event, once, in order (the load
//     generator counts and order-checks all of them; a sample of clients in a
//     Node process is compared event by event).
//
// Scale (SSE_STRESS_SCALE): full = 10k clients, 1k stalled, hub defaults
// (maxQueueBytes 1 MiB, sndbufBytes 128 KiB); ci = 1k clients, 100 stalled,
// maxQueueBytes 256 KiB (a shorter run: the drop comes sooner).
//
// Processes: the hub in test/helpers/stress-server.js (measured), the healthy
// clients in bench/loadgen.cpp (C++, epoll) plus a Node sample, the stalled
// clients in test/helpers/sse-clients.js.
//
// The JS transport is not run here: its sockets have no SO_SNDBUF cap (Node's
// send buffer autotunes up to tcp_wmem[2], 4 MiB), so a stalled client takes
// minutes to pass the cap at 50 KiB/s; test/js/hub-slow-clients.test.js covers it.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { StressServer } = require('../helpers/stress-server')
const { Clients } = require('../helpers/clients')
const { cleanup, sleep, waitFor } = require('../helpers/wait')
const {
  SCALE, KiB, MiB, scaled, orAfter, sockstat, tcpBufSysctl, loadgen, record, fig, mib, machineLoad
} = require('../helpers/stress-common')

const N = scaled({ ci: 1000, full: 10000 })
const STALLED = scaled({ ci: 100, full: 1000 })
const SAMPLE = scaled({ ci: 50, full: 100 }) // healthy clients checked event by event (Node)
const LOADGEN_N = N - STALLED - SAMPLE // healthy clients in the load generator
const EVENT_BYTES = 1024
const RATE = 50 // events per second
// Published in bursts of PER_TICK every TICK_MS (50/s on average): each burst
// reaches a client's socket in one writev. One event per 20 ms would mean
// 450k writev calls a second at full scale, more than this 2-core machine's
// server and load generator can do together (measured: ~100k/s under load).
const PER_TICK = 5
const TICK_MS = (1000 / RATE) * PER_TICK
const HUB = scaled({
  ci: { maxQueueBytes: 256 * KiB, sndbufBytes: 128 * KiB, heartbeatMs: 15000 },
  full: { maxQueueBytes: 1 * MiB, sndbufBytes: 128 * KiB, heartbeatMs: 15000 } // the defaults
})

// Drop time. A stalled client absorbs, before its queue passes maxQueueBytes:
// the queue itself, the server socket's send buffer (Linux doubles SO_SNDBUF:
// 2 * sndbufBytes) and its own receive buffer (tcp_rmem[1]: receive-buffer
// autotuning grows it only for an application that reads). At RATE events of
// EVENT_BYTES per second that takes ABSORB / (RATE * EVENT_BYTES) seconds;
// 4 s are added for scheduling on a loaded 2-core machine. It cannot be
// dropped before its queue alone could fill: maxQueueBytes / rate.
const RMEM_DEFAULT = tcpBufSysctl('tcp_rmem')[1]
const ABSORB = HUB.maxQueueBytes + 2 * HUB.sndbufBytes + RMEM_DEFAULT
const BYTES_PER_S = RATE * EVENT_BYTES
const DROP_MAX_MS = Math.ceil((ABSORB / BYTES_PER_S) * 1000) + 4000
const DROP_MIN_MS = Math.floor((HUB.maxQueueBytes / BYTES_PER_S) * 1000)
// Publish long enough for every drop, then 5 s more that only healthy clients get.
const TICKS = Math.ceil((DROP_MAX_MS + 5000) / TICK_MS)
const EVENTS = TICKS * PER_TICK
// Healthy clients keep up: their delivery latency p99 (publish to receipt)
// stays under this; past it, the run says the machine was too slow.
const KEEPUP_MS = 5000

test(`slow consumers: ${N} clients, ${STALLED} never read, 1 KiB at ${RATE}/s (scale ${SCALE})`, async (t) => {
  const defer = cleanup(t, 20000)
  const tcp0 = sockstat()
  const server = await StressServer.start(HUB)
  defer(() => server.stop(), 'server.stop()')
  const clients = await Clients.start({ lifetimeMs: 10 * 60 * 1000 })
  defer(() => clients.stop(), 'clients.stop()')

  // Connect: the Node sample (reads), the stalled clients, the load generator.
  const sample = (await clients.open({ n: SAMPLE, port: server.port, path: '/sse?t=feed&tag=h{i}' })).indices
  const stalled = (await clients.open({ n: STALLED, port: server.port, path: '/sse?t=feed&tag=s{i}&track=1', stall: true, timeoutMs: 30000 })).indices
  const lg = loadgen({ port: server.port, n: LOADGEN_N, path: '/sse?t=feed', expect: EVENTS, duration: Math.ceil(TICKS * TICK_MS / 1000) + 120 })
  defer(() => lg.kill('SIGTERM'), 'loadgen')
  assert.equal(await lg.ready, LOADGEN_N, 'every load-generator client connected')
  await waitFor(async () => (await server.stats()).hub.connections === N, 30000, `${N} connections accepted`)
  await waitFor(async () => (await server.tracked()).length === STALLED, 10000, 'the stalled clients to be tracked')

  const base = await server.mem()
  const tcpBase = sockstat()

  // RSS bound (by design, whatever the clients do). Queued frames are shared:
  // every client queues references to the same frames, so the frame bytes
  // alive are at most about 2 * maxQueueBytes (what the fullest queue holds
  // plus what is being written). Each queue entry costs at most 32 bytes (a
  // 16-byte ring slot, the ring a power of two), and no queue holds more than
  // maxQueueBytes / EVENT_BYTES entries: the stalled ones reach that; the
  // healthy ones too when the machine cannot write as fast as events come
  // (then they lag, and their queues fill). 24 MiB are left for the JS heap,
  // malloc arenas and the publishing loop.
  const entriesPerQueue = Math.ceil(HUB.maxQueueBytes / EVENT_BYTES) + PER_TICK
  const RSS_BOUND = base.rss + 2 * HUB.maxQueueBytes + N * entriesPerQueue * 32 + 24 * MiB
  // Kernel TCP memory bound (sockstat counts both ends: the server's sockets and
  // the clients'). A stalled connection pins at most its send buffer (2 *
  // sndbufBytes) and its peer's receive buffer (tcp_rmem[1]) — both limits count
  // skb truesize, so loopback overhead is inside them — plus a page of forward
  // allocation per socket. A healthy connection holds what is in flight: 64 KiB
  // each is generous at 50 KiB/s for a client that keeps up (see KEEPUP_MS: a
  // reader that lags has its receive buffer autotuned up to tcp_rmem[2], which
  // no server setting bounds). Measured from the level before any client.
  const TCP_BOUND = tcp0.memBytes + STALLED * (2 * HUB.sndbufBytes + RMEM_DEFAULT + 2 * 4096) + (N - STALLED) * 64 * KiB

  // Publish; sample the server and the kernel every 500 ms meanwhile.
  const running = server.run({ ticks: TICKS, tickMs: TICK_MS, items: [{ kind: 'publish', topic: 'feed', bytes: EVENT_BYTES, n: PER_TICK }] })
  let done = false
  running.finally(() => { done = true }).catch(() => {})
  let rssPeak = base.rss
  let tcpPeak = tcpBase.memBytes
  let queuePeak = 0
  let connectionsAfterDrops = null
  const samples = []
  const t0 = Date.now()
  // eslint-disable-next-line no-unmodified-loop-condition -- `done` is set when `running` settles
  while (!done) {
    await sleep(500)
    if (done) break
    const s = await server.stats()
    const k = sockstat()
    rssPeak = Math.max(rssPeak, s.rss)
    tcpPeak = Math.max(tcpPeak, k.memBytes)
    queuePeak = Math.max(queuePeak, s.hub.queueBytes)
    samples.push({ ms: Date.now() - t0, rss: s.rss, tcpMem: k.memBytes, queueBytes: s.hub.queueBytes, connections: s.hub.connections, slow: s.reasons.slow || 0 })
    if ((s.reasons.slow || 0) >= STALLED && connectionsAfterDrops === null) connectionsAfterDrops = s.hub.connections
  }
  const run = await running
  assert.equal(run.total, EVENTS)

  // Healthy clients: everything, once, in order.
  const lgResult = await orAfter(lg.done, 60000, () => lg.kill('SIGTERM'))
  const tracked = await server.tracked()
  const after = await server.stats()
  const drops = tracked.map((e) => ({ tag: e.tag, reason: e.reason, ms: e.atNs ? (e.atNs - run.firstNs) / 1e6 : null }))
  const dropMs = drops.filter((d) => d.ms !== null).map((d) => Math.round(d.ms)).sort((a, b) => a - b)
  const figures = {
    clients: N,
    stalled: STALLED,
    events: EVENTS,
    hub: HUB,
    serverRssBaseMiB: mib(base.rss),
    serverRssPeakMiB: fig(mib(rssPeak), mib(RSS_BOUND)),
    queueBytesPeakMiB: mib(queuePeak),
    tcpMemBaseMiB: mib(tcpBase.memBytes),
    tcpMemPeakMiB: fig(mib(tcpPeak), mib(TCP_BOUND)),
    dropMsMin: fig(dropMs[0], `>= ${DROP_MIN_MS}`),
    dropMsMax: fig(dropMs[dropMs.length - 1], DROP_MAX_MS),
    latencyP99MsBound: KEEPUP_MS,
    droppedSlow: fig(drops.filter((d) => d.reason === 'slow').length, STALLED),
    healthyComplete: fig(lgResult.complete_connections, LOADGEN_N),
    healthyEvents: fig(lgResult.events, EVENTS * LOADGEN_N),
    inOrderViolations: fig(lgResult.in_order_violations, 0),
    latencyP99Ms: lgResult.latency_us ? Number((lgResult.latency_us.p99 / 1000).toFixed(1)) : null,
    // What the healthy clients need (RATE events/s each) and what the machine
    // delivered to the load generator: when the second falls short, healthy
    // clients fall behind and are dropped as slow too (the hub cannot tell).
    deliveriesPerSNeeded: RATE * LOADGEN_N,
    deliveriesPerSAchieved: Math.round(lgResult.deliveries_per_s || 0),
    publisherLateMs: run.lateMs,
    samples: samples.filter((_, i) => i % 4 === 0)
  }
  record('slow', t.name, figures)
  t.diagnostic(JSON.stringify({ ...figures, samples: undefined, ...machineLoad() }))

  // The load generator: every connection complete (EVENTS events), none lost,
  // exactly EVENTS * n events in all (so none twice), no event older than the
  // one before it on any connection, no framing error.
  assert.equal(lgResult.exit_reason, 'expect', `healthy clients did not all complete (latency p99 ${figures.latencyP99Ms} ms; ` +
    `${figures.deliveriesPerSAchieved} deliveries/s achieved of ${figures.deliveriesPerSNeeded} needed, load ${machineLoad().loadavg1}): ` +
    JSON.stringify({ ...lgResult, latency_us: undefined }))
  assert.equal(lgResult.complete_connections, LOADGEN_N)
  assert.equal(lgResult.lost, 0)
  assert.equal(lgResult.protocol_errors, 0)
  assert.equal(lgResult.events, EVENTS * LOADGEN_N, 'each healthy connection got each event exactly once')
  assert.equal(lgResult.in_order_violations, 0)

  // The Node sample: the exact sequence 0..EVENTS-1.
  await clients.waitCounts(sample, EVENTS, 30000)
  const report = await clients.report({ indices: sample, events: true, truncate: 40, headers: false })
  for (const c of report) {
    assert.equal(c.framingError, null)
    const seqs = c.events.map((e) => Number(e.data.split(' ')[1]))
    assert.equal(seqs.length, EVENTS, `sample client ${c.i}: count`)
    for (let k = 0; k < seqs.length; k++) {
      if (seqs[k] !== k) assert.fail(`sample client ${c.i}: event ${k} has seq ${seqs[k]}`)
    }
  }

  // Stalled clients: each dropped as slow, within [DROP_MIN_MS, DROP_MAX_MS]
  // of the first event (it fell behind from that event on).
  assert.equal(tracked.length, STALLED)
  for (const d of drops) {
    assert.equal(d.reason, 'slow', `stalled client ${d.tag} disconnect reason`)
    assert.ok(d.ms >= DROP_MIN_MS, `stalled client ${d.tag} dropped after ${d.ms} ms, before its queue could fill (${DROP_MIN_MS} ms)`)
    assert.ok(d.ms <= DROP_MAX_MS, `stalled client ${d.tag} dropped after ${d.ms} ms, bound ${DROP_MAX_MS} ms`)
  }
  // Only they: no other disconnect while the run lasted, and the healthy
  // connections were all still there once the stalled ones were gone.
  assert.equal(connectionsAfterDrops, N - STALLED, 'connections once every stalled client was dropped')
  assert.equal(after.reasons.slow, STALLED)

  // RSS: the design bound holds whether or not the healthy clients keep up.
  assert.ok(rssPeak <= RSS_BOUND, `server RSS peaked at ${mib(rssPeak)} MiB, bound ${mib(RSS_BOUND)} MiB`)
  // queueBytes sums every queue's bytes (shared frames counted per queue): each
  // is capped at maxQueueBytes (plus the burst that passed it).
  assert.ok(queuePeak <= N * (HUB.maxQueueBytes + PER_TICK * (EVENT_BYTES + 64)),
    `queueBytes peaked at ${queuePeak}: each queue is capped at maxQueueBytes`)
  // The TCP bound assumes the healthy clients kept up (the machine delivered
  // RATE events/s to each): delivery latency p99 under KEEPUP_MS. On a 2-core
  // machine shared with other work, 445k deliveries/s of 1 KiB (full scale)
  // may be more than the server and the load generator get done; then this
  // fails and says so (the hub is not at fault: see deliveriesPerSAchieved).
  assert.ok(figures.latencyP99Ms !== null && figures.latencyP99Ms <= KEEPUP_MS,
    `capacity: the healthy clients lagged (latency p99 ${figures.latencyP99Ms} ms, bound ${KEEPUP_MS} ms): the machine delivered ` +
    `${figures.deliveriesPerSAchieved} of the ${figures.deliveriesPerSNeeded} deliveries/s needed (load ${machineLoad().loadavg1})`)
  // Memory bounds (see above).
  assert.ok(tcpPeak <= TCP_BOUND, `kernel TCP memory peaked at ${mib(tcpPeak)} MiB, bound ${mib(TCP_BOUND)} MiB`)

  // The stalled clients see their stream cut (a reset, no clean end).
  await clients.resume(stalled)
  await clients.waitSummary((s) => stalled.every((i) => s[i].closed), 15000, 'the dropped clients to see the close')
})
