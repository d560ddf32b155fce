'use strict'
// The Redis bus (sse-fanout/redis, docs/redis.md "The bus") against a real
// redis-server, with instances as child processes (test/helpers/
// bus-instance.js) and SSE clients on real sockets: every client of every
// instance gets every matching event once, in the stream's order, with the
// ids Redis gave (<epoch>-<seq>); a client moving to another instance resumes
// with exactly the events it missed; a foreign publisher (the redis-cli block
// of docs/redis.md) reaches every instance with one id; the options are
// validated, a bus needs history and one hub, and closing leaves no Redis
// connection and no timer behind.
// Skipped (with the reason) only where redis-server is missing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { Registry } = require('prom-client')
const { Hub } = require('../../lib')
const { metrics } = require('../../lib/metrics')
const { RedisBus } = require('../../lib/redis')
const { redisMissing, startRedis, redisEnv, readStream } = require('../helpers/redis')
const { startInstance } = require('../helpers/bus-instance')
const { waitFor, within } = require('../helpers/wait')

const missing = redisMissing()
const OPTIONS = { skip: missing || false, timeout: 60000 }
const FAST = { pingIntervalMs: 200, timeoutMs: 1000, blockMs: 500, minReconnectMs: 50, maxReconnectMs: 300 }

const messages = (stream) => stream.events.filter((e) => e.event !== 'reset')

async function readyAll (instances) {
  for (const inst of instances) assert.deepEqual(await inst.get('/ready'), { ok: true }, `instance ${inst.instanceId} ready`)
}

test('three instances: every client gets every matching event once, in one global order, ids <redisEpoch>-<seq>', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'bus:{t1}'
  const names = ['A', 'B', 'C']
  const instances = await Promise.all(names.map((instanceId) => startInstance(t, redis, { prefix, instanceId, bus: FAST })))
  await readyAll(instances)
  const kinds = {
    orders: '/events?topics=orders',
    news: '/events?topics=news/*',
    u1: '/events?topics=orders&user=u1',
    u2: '/events?topics=orders&user=u2'
  }
  const streams = [] // [instance index][kind] -> stream
  for (const inst of instances) {
    const byKind = {}
    for (const [kind, p] of Object.entries(kinds)) byKind[kind] = await inst.stream(p)
    streams.push(byKind)
  }
  // Each instance publishes K events in one tick, all three at once: orders,
  // news/<instance>, a private order for u1, a broadcast.
  const K = 40
  const batch = (name) => Array.from({ length: K }, (_, i) => {
    const data = `${name}:${i}`
    switch (i % 4) {
      case 0: return { topic: 'orders', data }
      case 1: return { topic: `news/${name}`, data }
      case 2: return { topic: 'orders', data, users: ['u1'] }
      default: return { data }
    }
  })
  const replies = await Promise.all(instances.map((inst, k) => inst.post('/publish', batch(names[k]))))
  for (const r of replies) assert.deepEqual(r.ids, new Array(K).fill(null), 'up: publish() returns null (the id comes from Redis)')

  const N = 3 * K
  await waitFor(async () => (await Promise.all(instances.map((i) => i.stats()))).every((s) => s.bus.seq === N), 15000, `every instance to read ${N} entries`)
  const { epoch, entries } = await readStream(t, redis, prefix)
  assert.match(epoch, /^[A-Za-z0-9]{9}$/)
  assert.deepEqual(entries.map((e) => e.seq), Array.from({ length: N }, (_, i) => i + 1), 'dense seqs 1..N')
  for (const e of entries) assert.equal(e.epoch, epoch)
  // Each instance's events keep their publish order in the stream.
  for (const name of names) {
    const mine = entries.filter((e) => e.data.startsWith(`${name}:`)).map((e) => e.data)
    assert.deepEqual(mine, batch(name).map((e) => e.data), `${name}'s events in its order`)
  }
  const matches = {
    orders: (e) => e.topic === null ? e.users === undefined : e.topic === 'orders' && e.users === undefined,
    news: (e) => e.topic === null || e.topic.startsWith('news/'),
    u1: (e) => e.topic === null || e.topic === 'orders',
    u2: (e) => e.topic === null || (e.topic === 'orders' && e.users === undefined)
  }
  for (const kind of Object.keys(kinds)) {
    const expected = entries.filter(matches[kind]).map((e) => ({ id: `${epoch}-${e.seq}`, data: e.data }))
    assert.ok(expected.length >= K / 2, `${kind}: a fair share of the events`)
    await waitFor(() => streams.every((s) => messages(s[kind]).length >= expected.length), 10000, `every ${kind} client to get ${expected.length} events`)
    for (let k = 0; k < instances.length; k++) {
      const got = messages(streams[k][kind]).map((e) => ({ id: e.id, data: e.data }))
      assert.deepEqual(got, expected, `${kind} on ${names[k]}: exactly the matching events, once, in the stream's order`)
      assert.equal(streams[k][kind].events.length, expected.length, `${kind} on ${names[k]}: no reset`)
    }
  }
  const stats = await Promise.all(instances.map((i) => i.stats()))
  for (const s of stats) {
    assert.equal(s.bus.state, 'up')
    assert.equal(s.bus.epoch, epoch)
    assert.equal(s.bus.read, N)
    assert.equal(s.bus.published, K)
    assert.equal(s.bus.rejected, 0)
    assert.deepEqual(s.bus.outbox, { events: 0, bytes: 0, dropped: 0 })
  }
  for (const s of streams) for (const stream of Object.values(s)) stream.close()
})

test('a client moving from A to C with Last-Event-ID gets exactly the events it missed, then live ones', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const prefix = 'bus:{t2}'
  const [a, b, c] = await Promise.all(['A', 'B', 'C'].map((instanceId) => startInstance(t, redis, { prefix, instanceId, bus: FAST })))
  await readyAll([a, b, c])
  const onA = await a.stream('/events?topics=orders')
  await b.post('/publish', Array.from({ length: 5 }, (_, i) => ({ topic: 'orders', data: `first ${i}` })))
  await waitFor(() => onA.events.length === 5, 10000, 'the client on A to get 5 events')
  onA.close()
  const lastId = onA.events[4].id
  const { epoch } = await readStream(t, redis, prefix)
  assert.deepEqual(onA.events.map((e) => e.id), [1, 2, 3, 4, 5].map((s) => `${epoch}-${s}`))
  // Missed while moving: 4 for the client (from A and B), 2 not for it.
  // Through bus.publish: each call answers once Redis gave the ids, so A's come before B's.
  const fromA = await a.post('/publish-async', [{ topic: 'orders', data: 'missed 0' }, { topic: 'other', data: 'x' }, { topic: 'orders', data: 'missed 1' }])
  const fromB = await b.post('/publish-async', [{ topic: 'orders', data: 'missed 2' }, { data: 'missed 3 (broadcast)' }, { topic: 'orders', data: 'y', users: ['u9'] }])
  assert.deepEqual([...fromA.ids, ...fromB.ids], [6, 7, 8, 9, 10, 11].map((s) => `${epoch}-${s}`))
  await waitFor(async () => (await c.stats()).bus.seq === 11, 10000, 'C to read 11 entries')
  const onC = await c.stream('/events?topics=orders', { 'last-event-id': lastId })
  await waitFor(() => onC.events.length >= 4, 10000, 'the client on C to get the missed events')
  assert.deepEqual(await b.post('/publish-async', [{ topic: 'orders', data: 'live' }]), { ids: [`${epoch}-12`] })
  await waitFor(() => onC.events.length >= 5, 10000, 'the live event')
  assert.deepEqual(onC.events.map((e) => [e.id, e.data]), [
    [`${epoch}-6`, 'missed 0'],
    [`${epoch}-8`, 'missed 1'],
    [`${epoch}-9`, 'missed 2'],
    [`${epoch}-10`, 'missed 3 (broadcast)'],
    [`${epoch}-12`, 'live']
  ])
  onC.close()
})

test('cross-language: the redis-cli block of docs/redis.md reaches the clients of every instance with one id', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const instances = await Promise.all(['A', 'B', 'C'].map((instanceId) => startInstance(t, redis, { instanceId, bus: FAST })))
  await readyAll(instances)
  const streams = await Promise.all(instances.map((i) => i.stream('/events?topics=orders/*&user=alice')))
  const others = await Promise.all(instances.map((i) => i.stream('/events?topics=orders/*&user=bob')))
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'redis.md'), 'utf8')
  const block = /<!-- example: cross-language publish[^>]*-->\n```sh\n([\s\S]*?)```/.exec(doc)
  assert.ok(block, 'docs/redis.md holds the cross-language example')
  const out = await within(new Promise((resolve, reject) => {
    execFile('/bin/sh', ['-c', block[1]], { env: redisEnv({ REDIS_URL: redis.url }), timeout: 10000 }, (err, stdout) => err ? reject(err) : resolve(stdout))
  }), 15000, 'the redis-cli block')
  const [epoch, seq] = out.trim().split('\n')
  assert.match(epoch, /^[A-Za-z0-9]{9}$/)
  assert.equal(seq, '1')
  await waitFor(() => streams.every((s) => s.events.length === 1), 10000, 'alice on every instance to get the event')
  for (const s of streams) {
    assert.deepEqual(s.events, [{ event: 'order-updated', data: '{"status":"shipped"}', id: `${epoch}-1` }])
  }
  await waitFor(async () => (await Promise.all(instances.map((i) => i.stats()))).every((s) => s.bus.seq === 1), 5000, 'every instance at seq 1')
  for (const s of others) assert.equal(s.events.length, 0, 'a private event: not for bob')
  for (const s of [...streams, ...others]) s.close()
})

test('options are validated; a bus needs history and a hub of its own', { timeout: 20000 }, async () => {
  const bad = [
    [{ url: 'http://x' }, /options\.url/],
    [{ url: 42 }, /options\.url/],
    [{ prefix: 'no-hash-tag' }, /hash tag/],
    [{ prefix: '' }, /prefix/],
    [{ instanceId: 'has space' }, /options\.instanceId/],
    [{ instanceId: '' }, /options\.instanceId/],
    [{ readCount: 0 }, /options\.readCount/],
    [{ readCount: 5000 }, /options\.readCount/],
    [{ blockMs: 1.5 }, /options\.blockMs/],
    [{ pingIntervalMs: 0 }, /options\.pingIntervalMs/],
    [{ timeoutMs: -1 }, /options\.timeoutMs/],
    [{ maxOutboxEvents: -1 }, /options\.maxOutboxEvents/],
    [{ maxOutboxBytes: 'many' }, /options\.maxOutboxBytes/],
    [{ minReconnectMs: 500, maxReconnectMs: 100 }, /minReconnectMs/],
    [{ maxData: 0 }, /options\.maxData/],
    [{ maxLen: 0 }, /options\.maxLen/],
    [{ nope: 1 }, /Unknown option options\.nope/]
  ]
  for (const [options, message] of bad) {
    assert.throws(() => new RedisBus(options), (err) => err.code === 'ERR_SSE_INVALID_ARGUMENT' && message.test(err.message), JSON.stringify(options))
  }
  assert.throws(() => new RedisBus(null), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  assert.throws(() => new Hub({ bus: {} }), /options\.bus/)
  const bus = new RedisBus({ url: 'redis://127.0.0.1:1', minReconnectMs: 1000, maxReconnectMs: 1000 })
  assert.equal(bus.state, 'connecting')
  assert.throws(() => new Hub({ bus }), (err) => err.code === 'ERR_SSE_INVALID_ARGUMENT' && /history/.test(err.message))
  await assert.rejects(bus.ready(), /not attached/)
  const hub = new Hub({ history: true, bus })
  assert.throws(() => new Hub({ history: true, bus }), /already attached/)
  // Nothing listens on port 1: the first attempt fails, ready() says why, the hub works locally.
  await assert.rejects(within(bus.ready(), 5000, 'ready() to reject'), /not reachable/)
  assert.equal(bus.state, 'down')
  const id = hub.publish('t', 'local')
  assert.match(id, /^[A-Za-z0-9]{8}-1$/)
  assert.equal(hub.stats().bus.outbox.events, 1)
  assert.throws(() => hub.publish('t', 'x'.repeat(bus.options.maxData + 1)), { code: 'ERR_SSE_DATA_TOO_LARGE' })
  assert.throws(() => hub.publish('t', 'x', { event: 'e'.repeat(1025) }), { code: 'ERR_SSE_INVALID_EVENT' })
  assert.equal(hub.stats().bus.outbox.events, 1, 'a refused event is not queued')
  await hub.close()
  assert.equal(bus.state, 'closed')
  await bus.close()
  await assert.rejects(bus.ready(), { code: 'ERR_SSE_CLOSED' })
  assert.throws(() => new Hub({ history: true, bus }), { code: 'ERR_SSE_CLOSED' })
})

test('close: hub.close() closes the bus; no Redis connection and no timer outlive it; bus.close() is idempotent', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const clients = async () => (await redis.cli('CLIENT', 'LIST')).split('\n').filter((l) => l.trim() !== '').length
  const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
  const baseClients = await clients() // redis-cli itself
  const baseTimers = timers()
  for (let round = 0; round < 2; round++) {
    const bus = new RedisBus({ url: redis.url, prefix: 'bus:{t6}', ...FAST })
    const states = []
    bus.on('state', (s) => states.push(`${s.previous}->${s.state}`))
    const hub = new Hub({ history: true, bus })
    await within(bus.ready(), 5000, 'bus.ready()')
    assert.equal(await clients(), baseClients + 2, 'two connections: commands and the reader')
    const id = await bus.publish('t', `round ${round}`)
    assert.equal(id, `${(await readStream(t, redis, 'bus:{t6}')).epoch}-${round + 1}`, 'bus.publish resolves with the Redis id')
    await waitFor(() => hub.stats().bus.read >= 1, 5000, 'the event read back')
    if (round === 0) {
      const m = metrics(hub, { registry: new Registry() })
      const text = await m.registry.metrics()
      const sample = (name) => Number(new RegExp(`^sse_fanout_${name} (\\S+)$`, 'm').exec(text)?.[1])
      assert.deepEqual(['bus_up', 'bus_published_total', 'bus_read_total', 'bus_outbox_events', 'bus_outbox_dropped_total',
        'bus_rejected_total', 'bus_reconnects_total', 'bus_resyncs_total'].map(sample), [1, 1, 1, 0, 0, 0, 0, 0])
      m.unregister()
    }
    if (round === 0) await hub.close()
    else await Promise.all([bus.close(), bus.close()])
    await bus.close()
    assert.equal(bus.state, 'closed')
    assert.deepEqual(states, ['connecting->up', 'up->closed'])
    await waitFor(async () => (await clients()) === baseClients, 5000, 'the bus\'s Redis connections to close')
    assert.equal(timers(), baseTimers, 'no timer left')
    if (round === 1) await hub.close()
  }
})

test('hubInternals(hub).rebase(epoch, seq, { reset: false }): no reset to connected streams, ids of the new epoch after', { timeout: 20000 }, async (t) => {
  const { hubInternals } = require('../../lib/hub')
  const { startHub } = require('../helpers/fixture')
  const { openStream } = require('../helpers/bus-instance')
  const { hub, port } = await startHub(t, {
    hub: { threads: 2, heartbeatMs: 0, history: { epoch: 'Old' } },
    handler: (hub) => (req, res) => hub.accept(req, res, { topics: ['q'] })
  })
  const internals = hubInternals(hub)
  const live = await openStream(port, '/events')
  t.after(() => live.close())
  await waitFor(() => hub.stats().connections === 1, 5000, 'one connection')
  assert.equal(hub.publish('q', 'l1'), 'Old-1')
  await waitFor(() => live.events.length === 1, 5000, 'l1')
  internals.rebase('Lc', 0, { reset: false })
  assert.deepEqual(internals.position(), { epoch: 'Lc', seq: 0 })
  assert.equal(hub.publish('q', 'l2'), 'Lc-1')
  await waitFor(() => live.events.length === 2, 5000, 'l2')
  // With the default (reset: true) the same stream gets one reset.
  internals.rebase('Nw', 7)
  assert.equal(hub.publish('q', 'l3'), 'Nw-8')
  await waitFor(() => live.events.length === 4, 5000, 'the reset and l3')
  assert.deepEqual(live.events.map((e) => [e.event, e.id, e.event === 'reset' ? JSON.parse(e.data).reason : e.data]), [
    ['message', 'Old-1', 'l1'],
    ['message', 'Lc-1', 'l2'],
    ['reset', 'Nw-7', 'epoch'],
    ['message', 'Nw-8', 'l3']
  ])
  assert.equal(hub.stats().history.rebases, 2)
  assert.throws(() => internals.rebase('Nw', 7, { reset: 'no' }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  // A resume with a cursor of the old epoch still gets its reset.
  const resumed = await openStream(port, '/events', { 'last-event-id': 'Lc-1' })
  t.after(() => resumed.close())
  await waitFor(() => resumed.events.length === 1, 5000, 'the resume reset')
  assert.equal(resumed.events[0].event, 'reset')
  assert.equal(JSON.parse(resumed.events[0].data).reason, 'epoch')
})
