'use strict'
// The PocketBase realtime honours the hub's bound on commands waiting for the
// I/O threads (maxPendingCommands, maxPendingBytes; see hub-queue-full.test.js
// for the Hub's own methods): a loop of broadcastRecord() faster than the fan-out ends
// in ERR_SSE_QUEUE_FULL instead of growing memory, a record event reaches
// every thread and every subscription or none (nothing of a refused one is
// queued), publish() and sendToClient() are bounded alike, stats().queueFull
// counts each refusal, and everything works again once the threads caught up.
// Commands wait in the hub's per-thread batch until the end of the JS job, so
// a synchronous loop fills the queue deterministically.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { SseError } = require('../..')
const { startApp } = require('../helpers/pb-app')
const { post } = require('../helpers/pb-http')
const { untilFull, drained } = require('../helpers/queue')
const { waitFor } = require('../helpers/wait')

const POSTS = { name: 'posts', id: 'pbc_posts', listRule: '', viewRule: '' }
const FILTERED = `posts/*?options=${encodeURIComponent(JSON.stringify({ query: { filter: "id != ''" } }))}`

/** A Realtime on a node:http app and two guests, one subscribed to posts/*, one to a filtered posts/*. */
async function setup (t, hubOptions) {
  const { realtime, port, connect } = await startApp(t, 'http', { hubOptions: { heartbeatMs: 0, ...hubOptions } })
  const streams = []
  for (const subscription of ['posts/*', FILTERED]) {
    const s = await connect()
    const res = await post(port, { clientId: s.cid, subscriptions: [subscription] })
    assert.equal(res.status, 204, res.body)
    streams.push(s)
  }
  await drained(realtime.hub)
  return { realtime, hub: realtime.hub, streams }
}

/** The ids of the records a stream received, in order. */
const recordIds = (s) => s.events.filter((e) => e.event === 'posts/*' || e.event === FILTERED).map((e) => JSON.parse(e.data).record.id)

test('maxPendingCommands: broadcastRecord throws ERR_SSE_QUEUE_FULL with nothing of it queued, works again once drained', async (t) => {
  // Each record event is one command per thread and per subscription: two
  // here, so the 51st does not fit in 101 (one command is left free).
  const { realtime, hub, streams } = await setup(t, { threads: 2, maxPendingCommands: 101 })
  const { accepted, err } = untilFull((i) => realtime.broadcastRecord(POSTS, 'create', { id: `p${i}` }), 1000)
  assert.ok(err instanceof SseError, `expected an SseError, got ${err && err.stack}`)
  assert.equal(err.code, 'ERR_SSE_QUEUE_FULL')
  assert.match(err.message, /maxPendingCommands/)
  assert.equal(accepted, 50)
  let s = hub.stats()
  assert.equal(s.queueFull, 1)
  assert.deepEqual(s.threads.map((x) => x.pendingCommands), [100, 100], 'the refused record event reached no thread and no subscription')

  // One command fits on each thread: a custom message to one subscription
  // goes, then the threads are full for the next.
  realtime.publish('posts/*', { m: 1 }, { event: 'custom' })
  assert.throws(() => realtime.publish(FILTERED, { m: 2 }, { event: 'custom' }), { code: 'ERR_SSE_QUEUE_FULL' })
  const clientId = streams[0].cid
  assert.throws(() => realtime.sendToClient(clientId, { m: 3 }, { event: 'note' }), { code: 'ERR_SSE_QUEUE_FULL' })
  assert.throws(() => realtime.broadcastRecord(POSTS, 'create', { id: 'refused' }), { code: 'ERR_SSE_QUEUE_FULL' })
  s = hub.stats()
  assert.equal(s.queueFull, 4)
  assert.deepEqual(s.threads.map((x) => x.pendingCommands), [101, 101])

  await drained(hub)
  realtime.broadcastRecord(POSTS, 'create', { id: 'after' })
  assert.equal(realtime.sendToClient(clientId, { m: 4 }, { event: 'note' }), true)
  const want = [...Array.from({ length: 50 }, (_, i) => `p${i}`), 'after']
  for (const stream of streams) {
    await waitFor(() => recordIds(stream).length >= want.length, 10000, 'every record event')
    assert.deepEqual(recordIds(stream), want, 'the first 50 and the one after, nothing refused, in order')
  }
  await streams[0].wait(1 + 51 + 2)
  assert.deepEqual(streams[0].names().filter((n) => n !== 'posts/*'), ['PB_CONNECT', 'custom', 'note'])
  assert.deepEqual(streams[1].names().filter((n) => n !== FILTERED), ['PB_CONNECT'])
})

test('maxPendingBytes: a loop of large records is stopped at the bound and resumes once drained', async (t) => {
  const KiB = 1024
  const { realtime, hub, streams } = await setup(t, { threads: 1, maxPendingBytes: 1024 * KiB, maxQueueBytes: 4096 * KiB })
  const body = 'x'.repeat(200 * KiB)
  for (let round = 0; round < 3; round++) {
    // Two frames of ~200 KiB per record event: two events fit in 1 MiB.
    const { accepted, err } = untilFull((i) => realtime.broadcastRecord(POSTS, 'create', { id: `r${round}-${i}`, body }), 50)
    assert.ok(err, `round ${round}: the bound was reached`)
    assert.equal(err.code, 'ERR_SSE_QUEUE_FULL')
    assert.equal(accepted, 2)
    const s = hub.stats()
    assert.equal(s.threads[0].pendingCommands, 4, 'nothing of the refused event was queued')
    assert.ok(s.pendingBytes <= 1024 * KiB, `pendingBytes ${s.pendingBytes}`)
    assert.equal(s.queueFull, round + 1)
    await drained(hub)
    await waitFor(() => streams.every((x) => recordIds(x).length === 2 * (round + 1)), 10000, 'both streams read the round')
  }
  for (const stream of streams) assert.deepEqual(recordIds(stream), ['r0-0', 'r0-1', 'r1-0', 'r1-1', 'r2-0', 'r2-1'])
})
