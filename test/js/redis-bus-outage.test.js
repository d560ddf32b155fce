'use strict'
// The Redis bus when Redis goes away (docs/redis.md, "Outage"), against a real
// redis-server and instances as child processes: a SIGKILLed Redis leaves every
// instance delivering its own publishes locally (state down, nothing hangs);
// once Redis is back with its data the outboxes are flushed, the other
// instances get those events and the publisher's clients do not get them
// twice; a Redis back without its data starts a new epoch (live clients go
// on, a client resuming with an old cursor gets a reset); the outbox bound
// holds and counts what it drops; under CLIENT PAUSE publish() stays fast on
// the JS thread, the bus goes down and up, and every event is in the stream
// exactly once. Skipped (with the reason) only where redis-server is missing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { performance } = require('node:perf_hooks')
const { Hub } = require('../../lib')
const { RedisBus, keysFor } = require('../../lib/redis')
const { redisMissing, startRedis, readStream } = require('../helpers/redis')
const { startInstance } = require('../helpers/bus-instance')
const { waitFor, within, cleanup } = require('../helpers/wait')

const missing = redisMissing()
const OPTIONS = { skip: missing || false, timeout: 60000 }
const FAST = { pingIntervalMs: 200, timeoutMs: 1000, blockMs: 500, minReconnectMs: 50, maxReconnectMs: 300 }
const LOCAL_ID = /^[A-Za-z0-9]{8}-\d+$/

const allStats = (instances) => Promise.all(instances.map((i) => i.stats()))

test('Redis SIGKILLed and back with its data: local delivery meanwhile, outboxes flushed, nothing twice', OPTIONS, async (t) => {
  const redis = await startRedis(t, { persistence: true })
  const prefix = 'bus:{o1}'
  const names = ['A', 'B', 'C']
  const instances = await Promise.all(names.map((instanceId) => startInstance(t, redis, { prefix, instanceId, bus: FAST })))
  for (const i of instances) assert.deepEqual(await i.get('/ready'), { ok: true })
  const streams = await Promise.all(instances.map((i) => i.stream('/events?topics=orders')))
  await instances[0].post('/publish', [0, 1, 2].map((k) => ({ topic: 'orders', data: `before ${k}` })))
  await waitFor(() => streams.every((s) => s.events.length === 3), 10000, 'the first 3 events everywhere')
  const { epoch } = await readStream(t, redis, prefix)

  await redis.kill()
  await waitFor(async () => (await allStats(instances)).every((s) => s.bus.state === 'down'), 10000, 'every instance down')
  const local = {} // name -> the ids its own publishes got
  for (let k = 0; k < 3; k++) {
    const { ids } = await instances[k].post('/publish', [0, 1, 2].map((n) => ({ topic: 'orders', data: `${names[k]} out ${n}` })))
    for (const id of ids) assert.match(id, LOCAL_ID, 'down: delivered locally with a local id')
    local[names[k]] = ids
  }
  // Each instance's clients get its own events at once, nobody else's.
  await waitFor(() => streams.every((s) => s.events.length === 6), 10000, 'local delivery during the outage')
  for (let k = 0; k < 3; k++) {
    assert.deepEqual(streams[k].events.slice(3).map((e) => [e.id, e.data]), local[names[k]].map((id, n) => [id, `${names[k]} out ${n}`]))
  }
  await waitFor(async () => (await allStats(instances)).every((s) => s.bus.reconnects >= 1), 10000, 'every instance to try again')
  for (const s of await allStats(instances)) {
    assert.equal(s.bus.state, 'down')
    assert.deepEqual(s.bus.outbox, { events: 3, bytes: s.bus.outbox.bytes, dropped: 0 })
  }

  await redis.start()
  await waitFor(async () => (await allStats(instances)).every((s) => s.bus.state === 'up' && s.bus.seq === 12 && s.bus.outbox.events === 0),
    15000, 'every instance up again, outbox flushed, at seq 12')
  const after = await readStream(t, redis, prefix)
  assert.equal(after.epoch, epoch, 'the same epoch: Redis kept its data')
  assert.deepEqual(after.entries.map((e) => e.seq), Array.from({ length: 12 }, (_, i) => i + 1))
  for (const e of after.entries.slice(3)) assert.match(e.origin, /^[ABC]:\d+$/, 'outbox events carry their origin')
  await waitFor(() => streams.every((s) => s.events.length === 12), 10000, 'every client to get the others\' outage events')
  for (let k = 0; k < 3; k++) {
    const others = after.entries.slice(3).filter((e) => !e.data.startsWith(`${names[k]} `))
    assert.deepEqual(streams[k].events.slice(6).map((e) => [e.id, e.data]), others.map((e) => [`${epoch}-${e.seq}`, e.data]),
      `${names[k]}: the others' events with their Redis ids, its own not again`)
    assert.equal(streams[k].events.filter((e) => e.event === 'reset').length, 0, 'no reset: nothing was missed')
  }
  // Live again: one more event reaches everyone with the next id.
  await instances[1].post('/publish', [{ topic: 'orders', data: 'after' }])
  await waitFor(() => streams.every((s) => s.events.length === 13), 10000, 'the live event')
  for (const s of streams) assert.deepEqual(s.events[12], { event: 'message', data: 'after', id: `${epoch}-13` })
  for (const s of streams) s.close()
})

test('Redis back without its data: a new epoch; live clients go on, an old cursor gets a reset', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'bus:{o2}'
  const [a, b] = await Promise.all(['A', 'B'].map((instanceId) => startInstance(t, redis, { prefix, instanceId, bus: FAST })))
  for (const i of [a, b]) assert.deepEqual(await i.get('/ready'), { ok: true })
  const live = await a.stream('/events?topics=orders')
  await b.post('/publish', [{ topic: 'orders', data: 'one' }, { topic: 'orders', data: 'two' }])
  await waitFor(() => live.events.length === 2, 10000, 'two events')
  const { epoch: first } = await readStream(t, redis, prefix)
  await redis.restart() // SIGKILL, no persistence: meta and stream are gone
  await waitFor(async () => (await allStats([a, b])).every((s) => s.bus.state === 'up' && s.bus.reconnects >= 1), 15000, 'both up again')
  await b.post('/publish', [{ topic: 'orders', data: 'three' }])
  await waitFor(async () => (await allStats([a, b])).every((s) => s.bus.seq === 1 && s.bus.epoch !== first), 10000, 'both at seq 1 of a new epoch')
  const { epoch: second } = await readStream(t, redis, prefix)
  assert.notEqual(second, first)
  await waitFor(() => live.events.length === 3, 10000, 'the live client to get the new epoch\'s event')
  assert.deepEqual(live.events[2], { event: 'message', data: 'three', id: `${second}-1` })
  // A client coming back with a cursor of the lost epoch: a reset (epoch), then live events.
  const resumed = await a.stream('/events?topics=orders', { 'last-event-id': `${first}-2` })
  await waitFor(() => resumed.events.length === 1, 10000, 'the reset')
  assert.equal(resumed.events[0].event, 'reset')
  const reset = JSON.parse(resumed.events[0].data)
  assert.equal(reset.reason, 'epoch')
  assert.equal(reset.requested, null, 'an epoch reset does not echo the cursor')
  assert.equal(reset.latest, `${second}-1`)
  live.close()
  resumed.close()
})

test('FLUSHALL while up: the liveness probe and the reader each notice, the new epoch is read from its first entry, no reset', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'bus:{o6}'
  // B's probe is out of the way: its reader alone must notice.
  const a = await startInstance(t, redis, { prefix, instanceId: 'A', bus: FAST })
  const b = await startInstance(t, redis, { prefix, instanceId: 'B', bus: { ...FAST, pingIntervalMs: 600000 } })
  for (const i of [a, b]) assert.deepEqual(await i.get('/ready'), { ok: true })
  const streams = [await a.stream('/events?topics=orders'), await b.stream('/events?topics=orders')]
  const publish = async (...data) => (await a.post('/publish-async', data.map((d) => ({ topic: 'orders', data: d })))).ids
  const before = await publish('one', 'two')
  await waitFor(() => streams.every((s) => s.events.length === 2), 10000, 'two events on both')
  await redis.cli('FLUSHALL')
  // Seq 1 of a new epoch: the readers wait for what comes after seq 2, so
  // only A's probe (meta's epoch changed) can find it.
  const three = await publish('three')
  const { epoch } = await readStream(t, redis, prefix)
  assert.notEqual(epoch, before[0].split('-')[0])
  assert.deepEqual(three, [`${epoch}-1`])
  await waitFor(() => streams[0].events.length === 3, 10000, 'A\'s probe to find the new epoch')
  assert.equal(streams[1].events.length, 2, 'B has no probe: it has not seen seq 1')
  // Seq 3 is past B's seq 2: B's reader sees another epoch and reads the new stream from its start.
  const more = await publish('four', 'five')
  await waitFor(() => streams.every((s) => s.events.length === 5), 10000, 'the new epoch\'s three events on both')
  for (const s of streams) {
    assert.deepEqual(s.events.map((e) => [e.event, e.data, e.id]), [
      ...['one', 'two'].map((data, i) => ['message', data, before[i]]),
      ...['three', 'four', 'five'].map((data, i) => ['message', data, [...three, ...more][i]])
    ], 'every event once, no reset: nothing was missed')
  }
  for (const i of [a, b]) {
    const s = (await i.stats()).bus
    assert.deepEqual({ state: s.state, resyncs: s.resyncs, reconnects: s.reconnects, epoch: s.epoch, seq: s.seq }, { state: 'up', resyncs: 1, reconnects: 0, epoch, seq: 3 })
  }
  for (const s of streams) s.close()
})

test('a long outage: the outbox bound holds, drops are counted, everything is still delivered locally', OPTIONS, async (t) => {
  const redis = await startRedis(t, { persistence: true })
  const prefix = 'bus:{o3}'
  const a = await startInstance(t, redis, { prefix, instanceId: 'A', bus: { ...FAST, maxOutboxEvents: 5 } })
  assert.deepEqual(await a.get('/ready'), { ok: true })
  const client = await a.stream('/events?topics=orders')
  await redis.kill()
  await waitFor(async () => (await a.stats()).bus.state === 'down', 10000, 'down')
  const { ids } = await a.post('/publish', Array.from({ length: 8 }, (_, n) => ({ topic: 'orders', data: `out ${n}` })))
  for (const id of ids) assert.match(id, LOCAL_ID)
  await waitFor(() => client.events.length === 8, 10000, 'all 8 delivered locally')
  const down = (await a.stats()).bus
  assert.deepEqual({ events: down.outbox.events, dropped: down.outbox.dropped }, { events: 5, dropped: 3 })
  await redis.start()
  await waitFor(async () => { const s = (await a.stats()).bus; return s.state === 'up' && s.seq === 5 }, 15000, 'up, the outbox flushed')
  const { entries } = await readStream(t, redis, prefix)
  assert.deepEqual(entries.map((e) => e.data), ['out 0', 'out 1', 'out 2', 'out 3', 'out 4'], 'the first five reached Redis, in order')
  assert.equal(client.events.length, 8, 'nothing delivered twice')
  assert.equal((await a.stats()).bus.outbox.dropped, 3)
  client.close()
})

test('CLIENT PAUSE 3000 ALL: publish() stays fast, the bus goes down and up, every event lands exactly once', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'bus:{o4}'
  const bus = new RedisBus({ url: redis.url, prefix, ...FAST })
  const states = []
  bus.on('state', (s) => states.push(`${s.previous}->${s.state}`))
  const hub = new Hub({ history: true, bus })
  cleanup(t)(() => hub.close(), 'hub.close()')
  await within(bus.ready(), 5000, 'bus.ready()')
  const durations = []
  let n = 0
  const publishFor = async (ms) => {
    const end = Date.now() + ms
    while (Date.now() < end) {
      const start = performance.now()
      hub.publish('t', `e${n++}`)
      durations.push(performance.now() - start)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }
  await publishFor(300)
  await redis.pause(3000)
  await publishFor(3000)
  await waitFor(() => bus.state === 'up', 10000, 'the bus up again')
  await publishFor(300)
  await waitFor(() => bus.state === 'up' && hub.stats().bus.outbox.events === 0 && hub.stats().bus.seq === n, 10000, `every one of ${n} events read back`)
  durations.sort((x, y) => x - y)
  const median = durations[Math.floor(durations.length / 2)]
  const max = durations[durations.length - 1]
  console.log(`# CLIENT PAUSE 3000: ${durations.length} publish() calls, median ${median.toFixed(3)} ms, p99 ${durations[Math.floor(durations.length * 0.99)].toFixed(3)} ms, max ${max.toFixed(3)} ms; states ${states.join(', ')}`)
  assert.ok(median < 1, `median publish() ${median} ms`)
  assert.ok(max < 50, `max publish() ${max} ms`)
  assert.deepEqual(states.slice(0, 3), ['connecting->up', 'up->down', 'down->up'])
  const { entries } = await readStream(t, redis, prefix)
  assert.deepEqual(entries.map((e) => e.data), Array.from({ length: n }, (_, i) => `e${i}`), 'every event once, in publish order')
  const s = hub.stats().bus
  assert.equal(s.read, n)
  assert.equal(s.outbox.dropped, 0)
})

test('Redis back at an older seq of the same epoch (an older snapshot): a warning, a reset, then the new events', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'bus:{o5}'
  const keys = keysFor(prefix)
  const bus = new RedisBus({ url: redis.url, prefix, ...FAST })
  const warnings = []
  bus.on('warning', (w) => warnings.push(w.message))
  const hub = new Hub({ history: true, bus })
  cleanup(t)(() => hub.close(), 'hub.close()')
  await within(bus.ready(), 5000, 'bus.ready()')
  for (let i = 0; i < 5; i++) await bus.publish('t', `e${i}`)
  await waitFor(() => hub.stats().bus.seq === 5, 5000, 'seq 5 read')
  const { epoch } = await readStream(t, redis, prefix)
  // What a restore of an older snapshot looks like: meta and stream at seq 2.
  await redis.cli('DEL', keys.stream)
  await redis.cli('HSET', keys.meta, 'seq', '2')
  await redis.cli('CLIENT', 'KILL', 'TYPE', 'normal')
  await waitFor(() => warnings.some((w) => /behind/.test(w)) && bus.state === 'up', 10000, 'the warning, then up')
  assert.deepEqual(hub.stats().bus.position, { epoch, seq: 2 })
  assert.equal(await bus.publish('t', 'after'), `${epoch}-3`)
  await waitFor(() => hub.stats().bus.seq === 3, 5000, 'seq 3 read')
  const { events } = await hub.catchUp({ since: `${epoch}-2`, topics: ['t'] })
  assert.deepEqual(events.map((e) => [e.id, e.data]), [[`${epoch}-3`, 'after']])
})
