'use strict'
// An adversarial review of the Redis bus (issue 14, docs/redis.md), against a
// real redis-server: each test is a failure or concurrency path the bus got
// wrong before its fix in lib/redis/bus.js.
//  - a foreign entry whose id is not <seq>-0 (XADD with "<seq>-1") is skipped
//    once, not read again and again by a reader spinning on it;
//  - maxOutboxEvents: 0 (no outbox) still publishes through Redis: one
//    unanswered publish is not "more than the bound";
//  - an instance restarted with the same configured instanceId does not take
//    the origins of its previous life for its own: its outbox reaches Redis;
//  - a resync (meta's epoch changed while up) that finds the stream it holds
//    already does not send it again to live clients.
// Skipped (with the reason) only where redis-server is missing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Hub } = require('../../lib')
const { RedisBus, keysFor } = require('../../lib/redis')
const { redisMissing, startRedis, readStream } = require('../helpers/redis')
const { waitFor, within, cleanup, sleep } = require('../helpers/wait')

const missing = redisMissing()
const OPTIONS = { skip: missing || false, timeout: 60000 }
const FAST = { pingIntervalMs: 200, timeoutMs: 1000, blockMs: 500, minReconnectMs: 50, maxReconnectMs: 300 }

function startHub (t, options) {
  const bus = new RedisBus({ ...FAST, ...options })
  const states = []
  const warnings = []
  bus.on('state', (s) => states.push(`${s.previous}->${s.state}`))
  bus.on('warning', (w) => warnings.push(w.message))
  const hub = new Hub({ history: true, bus })
  cleanup(t)(() => hub.close(), 'hub.close()')
  return { bus, hub, states, warnings }
}

test('an entry with an id that is not <seq>-0 is skipped once: the reader does not spin on it', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'rev:{r1}'
  const keys = keysFor(prefix)
  const { bus, hub } = startHub(t, { url: redis.url, prefix })
  await within(bus.ready(), 5000, 'bus.ready()')
  const first = await bus.publish('t', 'one')
  await bus.publish('t', 'two')
  await waitFor(() => hub.stats().bus.seq === 2, 5000, 'seq 2 read')
  // Another publisher writes past the function, with an id of its own.
  assert.equal(await redis.cli('XADD', keys.stream, '2-1', 'v', '1', 'e', first.split('-')[0], 'd', 'hostile'), '2-1')
  await waitFor(() => hub.stats().bus.rejected >= 1, 5000, 'the entry rejected')
  await sleep(1000) // two XREAD BLOCK turns (blockMs 500): a spinning reader rejects it thousands of times
  assert.equal(hub.stats().bus.rejected, 1, 'the entry is rejected once, not read again at every turn')
  assert.equal(bus.state, 'up')
  // The stream goes on after it: the next event is read and delivered.
  const third = await bus.publish('t', 'three')
  await waitFor(() => hub.stats().bus.seq === 3, 5000, 'seq 3 read')
  const { events } = await hub.catchUp({ since: first, topics: ['t'] })
  assert.deepEqual(events.map((e) => [e.id, e.data]), [[third.replace(/-3$/, '-2'), 'two'], [third, 'three']])
  assert.equal(hub.stats().bus.rejected, 1)
})

test('an XRANGE page made only of entries with bad ids does not hold the catch-up in a loop', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'rev:{r2}'
  const keys = keysFor(prefix)
  const a = startHub(t, { url: redis.url, prefix, instanceId: 'A' })
  await within(a.bus.ready(), 5000, 'A ready')
  const first = await a.bus.publish('t', 'one')
  for (let i = 1; i <= 4; i++) await redis.cli('XADD', keys.stream, `1-${i}`, 'v', '1', 'e', first.split('-')[0], 'd', `bad ${i}`)
  const second = await a.bus.publish('t', 'two')
  assert.equal(second, first.replace(/-1$/, '-2'))
  // A second instance reads the stream in pages of 2: the second page is bad ids only.
  const b = startHub(t, { url: redis.url, prefix, instanceId: 'B', readCount: 2 })
  await within(b.bus.ready(), 5000, 'B ready (its catch-up ended)')
  assert.equal(b.hub.stats().bus.seq, 2)
  assert.equal(b.hub.stats().bus.rejected, 4)
  const { events } = await b.hub.catchUp({ since: first.replace(/-1$/, '-0'), topics: ['t'] })
  assert.deepEqual(events.map((e) => [e.id, e.data]), [[first, 'one'], [second, 'two']])
})

test('maxOutboxEvents: 0 publishes through Redis and stays up', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'rev:{r3}'
  const { bus, hub, states } = startHub(t, { url: redis.url, prefix, maxOutboxEvents: 0 })
  await within(bus.ready(), 5000, 'bus.ready()')
  const id = await bus.publish('t', 'x')
  assert.match(id, /^[A-Za-z0-9]{9}-1$/, 'the id Redis gave (not a local one)')
  hub.publish('t', 'y')
  await waitFor(() => hub.stats().bus.seq === 2, 5000, 'both read back')
  assert.deepEqual(states, ['connecting->up'])
  assert.deepEqual((await readStream(t, redis, prefix)).entries.map((e) => e.data), ['x', 'y'])
  assert.equal(hub.stats().bus.outbox.dropped, 0)
})

test('an instance restarted with the same instanceId flushes its outbox: the origins of its previous life are not its own', OPTIONS, async (t) => {
  const redis = await startRedis(t, { persistence: true })
  const prefix = 'rev:{r4}'
  const before = startHub(t, { url: redis.url, prefix, instanceId: 'web-1' })
  await within(before.bus.ready(), 5000, 'first life ready')
  // The first life's events carry origins web-1:<n> (an outage, then a flush).
  await redis.stop()
  await waitFor(() => before.bus.state === 'down', 5000, 'first life down')
  for (let i = 0; i < 5; i++) before.hub.publish('t', `old ${i}`)
  await redis.start()
  await waitFor(() => before.bus.state === 'up' && before.hub.stats().bus.seq === 5, 10000, 'first life flushed its outbox')
  await before.hub.close()
  assert.ok((await readStream(t, redis, prefix)).entries.every((e) => /^web-1:\d+$/.test(e.origin)))

  // The second life (the same configured id) starts while Redis is down.
  await redis.stop()
  const after = startHub(t, { url: redis.url, prefix, instanceId: 'web-1' })
  for (let i = 0; i < 3; i++) after.hub.publish('t', `new ${i}`)
  assert.equal(after.hub.stats().bus.outbox.events, 3)
  await redis.start()
  await waitFor(() => after.bus.state === 'up' && after.hub.stats().bus.outbox.events === 0, 10000, 'second life up, outbox empty')
  await waitFor(() => after.hub.stats().bus.seq === 8, 5000, `the 3 new events in Redis (seq ${after.hub.stats().bus.seq})`)
  const { entries } = await readStream(t, redis, prefix)
  assert.deepEqual(entries.map((e) => e.data), ['old 0', 'old 1', 'old 2', 'old 3', 'old 4', 'new 0', 'new 1', 'new 2'])
  // Its history keeps the first life's events (their origins are not in its outage's set).
  const { events } = await after.hub.catchUp({ since: `${after.hub.stats().bus.epoch}-0`, topics: ['t'] })
  assert.deepEqual(events.slice(0, 5).map((e) => e.data), ['old 0', 'old 1', 'old 2', 'old 3', 'old 4'])
})

/** A hub on the bus with an HTTP server and one live SSE client on topic t. */
async function liveClient (t, redis, prefix, busOptions = {}) {
  const { startHub: startServedHub } = require('../helpers/fixture')
  const { openStream } = require('../helpers/bus-instance')
  const bus = new RedisBus({ ...FAST, url: redis.url, prefix, ...busOptions })
  const { hub, port } = await startServedHub(t, {
    hub: { heartbeatMs: 0, history: true, bus },
    handler: (hub) => (req, res) => hub.accept(req, res, { topics: ['t'] })
  })
  await within(bus.ready(), 5000, 'bus.ready()')
  const live = await openStream(port, '/events')
  t.after(() => live.close())
  await waitFor(() => hub.stats().connections === 1, 5000, 'one connection')
  return { bus, hub, live }
}

const shown = (stream) => stream.events.map((e) => e.event === 'reset' ? 'reset' : e.data)

test('meta overwritten by hand while up (HSET epoch): live clients do not get the stream a second time', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'rev:{r6}'
  const keys = keysFor(prefix)
  const { bus, hub, live } = await liveClient(t, redis, prefix)
  for (let i = 1; i <= 3; i++) await bus.publish('t', `e${i}`)
  await waitFor(() => live.events.length === 3, 5000, 'e1..e3 live')
  const resyncs = hub.stats().bus.resyncs
  await redis.cli('HSET', keys.meta, 'epoch', 'Handmade')
  await waitFor(() => hub.stats().bus.resyncs > resyncs, 5000, 'the probe sees the epoch change')
  await bus.publish('t', 'after')
  await waitFor(() => shown(live).includes('after'), 5000, `'after' live (got ${JSON.stringify(shown(live))})`)
  await sleep(300)
  assert.deepEqual(shown(live).filter((d) => d !== 'reset'), ['e1', 'e2', 'e3', 'after'], `each event once (the stream: ${JSON.stringify(shown(live))})`)
})

test('a well-formed entry of another epoch written past the function: rejected once, nothing delivered again, no reset', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'rev:{r7}'
  const keys = keysFor(prefix)
  const { bus, hub, live } = await liveClient(t, redis, prefix)
  const ids = []
  for (let i = 1; i <= 3; i++) ids.push(await bus.publish('t', `e${i}`))
  await waitFor(() => live.events.length === 3, 5000, 'e1..e3 live')
  const epoch = ids[0].split('-')[0]
  assert.equal(await redis.cli('XADD', keys.stream, '4-0', 'v', '1', 'e', 'Zz', 't', 't', 'd', 'foreign'), '4-0')
  await waitFor(() => hub.stats().bus.rejected === 1, 5000, 'the entry rejected')
  await sleep(1000) // five probes (pingIntervalMs 200): meta's epoch is still ours, nothing to resync
  assert.deepEqual(shown(live), ['e1', 'e2', 'e3'], 'nothing delivered, no reset')
  assert.deepEqual({ resyncs: hub.stats().bus.resyncs, rejected: hub.stats().bus.rejected, position: hub.stats().bus.position },
    { resyncs: 1, rejected: 1, position: { epoch, seq: 4 } }, 'one resync read meta and rejected the entry; its seq is a skipped one')
  // The function cannot add seq 4 after it: a new epoch over a new stream, which the probe finds.
  const after = await bus.publish('t', 'after')
  assert.notEqual(after.split('-')[0], epoch)
  assert.match(after, /-1$/)
  await waitFor(() => shown(live).includes('after'), 5000, `'after' live (got ${JSON.stringify(shown(live))})`)
  assert.deepEqual(shown(live), ['e1', 'e2', 'e3', 'after'])
  assert.equal(live.events.at(-1).id, after)
})
