'use strict'
// Sequences from outside (docs/history.md, "Sequences from outside (the Redis
// bus)"): hubInternals(hub).publishBatch and .rebase over real sockets. A
// batch's events carry the caller's epoch and sequence as their ids, reach
// the streams they match in batch order, and are in the history for resumes
// and polls; an epoch change or a gap rebases first, with exactly one reset
// to every connected history stream; bad input is refused with a coded error
// and changes nothing; a batch is all or nothing at the pending bound.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { hubInternals } = require('../../lib/hub')
const { SseParser } = require('../helpers/sse-parser')
const { startHub } = require('../helpers/fixture')
const { throwsSse } = require('../helpers/sse-error')
const { waitFor, sleep } = require('../helpers/wait')

const EPOCH = 'Ep0ch'

async function historyHub (t, hubOptions = {}) {
  return startHub(t, {
    hub: { threads: 2, heartbeatMs: 0, history: { epoch: EPOCH }, ...hubOptions },
    handler: (hub) => (req, res) => {
      const url = new URL(req.url, 'http://x')
      try {
        hub.accept(req, res, {
          topics: (url.searchParams.get('topics') || '').split(',').filter(Boolean),
          user: url.searchParams.get('user') || undefined,
          history: url.searchParams.get('history') === 'off' ? false : undefined
        })
      } catch (err) {
        res.writeHead(err.statusCode || 400).end(err.code)
      }
    }
  })
}

/** Opens a stream: `events` fills as events arrive, `raw` with the bytes; close() ends it. */
function open (t, port, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const s = { res, events: [], raw: '', close: () => req.destroy() }
      s.parser = new SseParser((ev) => s.events.push(ev))
      res.setEncoding('utf8')
      res.on('data', (chunk) => { s.raw += chunk; s.parser.push(chunk) })
      res.on('error', () => {})
      t.after(() => req.destroy())
      resolve(s)
    })
    req.on('error', reject)
  })
}

/** Waits until the hub holds `n` connections (accept() has run for each). */
async function connected (hub, n) {
  await waitFor(() => hub.stats().connections === n, 5000, `${n} connections`)
}

const view = (ev) => ({ event: ev.event, id: ev.lastEventId, data: ev.data })

test('a batch publishes with the caller\'s epoch and sequences, in order, after one reset to streams that were connected', async (t) => {
  const { hub, port } = await historyHub(t)
  const bus = hubInternals(hub)
  hub.publish('a', 'local') // Ep0ch-1
  const before = await open(t, port, '/?topics=a,b/*&user=u1')
  const other = await open(t, port, '/?topics=zzz')
  const optedOut = await open(t, port, '/?topics=a&history=off')
  await connected(hub, 3)
  const entries = [
    'a', 'one', undefined, undefined, undefined, // Bus1-11
    null, Buffer.from('to everyone'), 'note', undefined, undefined, // Bus1-12 (a broadcast, named, bytes)
    'b/x', 'three', undefined, 'pub-id', undefined, // Bus1-13: the publisher's id on the wire
    'a', 'for u2 only', undefined, undefined, ['u2'], // Bus1-14: not for this stream
    'a', 'for u1', undefined, undefined, ['u1', 'u3'], // Bus1-15
    'a', null, undefined, undefined, undefined, // Bus1-16: skipped
    'c', 'not subscribed', undefined, undefined, undefined, // Bus1-17
    'a', 'last', undefined, undefined, undefined // Bus1-18
  ]
  assert.equal(bus.publishBatch('Bus1', 11, entries), 8)
  assert.deepEqual(bus.position(), { epoch: 'Bus1', seq: 18 })
  await waitFor(() => before.events.length >= 6, 5000, 'the batch on the stream')
  await sleep(50)
  const reset = before.events[0]
  assert.equal(reset.event, 'reset')
  assert.equal(reset.lastEventId, 'Bus1-10', 'the reset names the new position')
  assert.deepEqual(JSON.parse(reset.data), { reason: 'epoch', requested: null, oldest: null, latest: 'Bus1-10' })
  assert.deepEqual(before.events.slice(1).map(view), [
    { event: 'message', id: 'Bus1-11', data: 'one' },
    { event: 'note', id: 'Bus1-12', data: 'to everyone' },
    { event: 'message', id: 'pub-id', data: 'three' },
    { event: 'message', id: 'Bus1-15', data: 'for u1' },
    { event: 'message', id: 'Bus1-18', data: 'last' }
  ])
  assert.equal(before.events.filter((e) => e.event === 'reset').length, 1, 'exactly one reset')
  // A stream of other topics gets the reset and the broadcast; one that
  // takes no part in history gets no reset.
  await waitFor(() => other.events.length >= 2, 5000, 'the other stream')
  assert.deepEqual(other.events.map((e) => e.event), ['reset', 'note'])
  await waitFor(() => optedOut.events.length >= 3, 5000, 'the opted-out stream')
  assert.deepEqual(optedOut.events.map((e) => e.data), ['one', 'to everyone', 'last'], 'no reset for a stream with history: false')

  const h = hub.stats().history
  assert.equal(h.epoch, 'Bus1')
  assert.equal(h.latest, 'Bus1-18')
  assert.equal(h.oldest, 'Bus1-11')
  assert.equal(h.events, 8, 'the skipped sequence is held (as nobody\'s event): the history stays contiguous')
  assert.equal(h.rebases, 1)
  // A local publish continues the sequence, under the batch's epoch.
  assert.equal(hub.publish('a', 'after'), 'Bus1-19')
  assert.deepEqual(bus.position(), { epoch: 'Bus1', seq: 19 })
  await waitFor(() => before.events.some((e) => e.data === 'after'), 5000, 'the local publish')
  assert.equal(before.events.at(-1).lastEventId, 'Bus1-19')
})

test('after a batch: resumes replay from the history, old-epoch cursors get an epoch reset, polls read it', async (t) => {
  const { hub, port } = await historyHub(t)
  const bus = hubInternals(hub)
  hub.publish('a', 'old') // Ep0ch-1
  const entries = []
  for (let i = 1; i <= 5; i++) entries.push(i % 2 ? 'a' : 'b', `e${i}`, undefined, undefined, undefined)
  assert.equal(bus.publishBatch('Bus2', 1, entries), 5)
  // Resume after Bus2-2: the events of "a" after it, then the position frame.
  const resumed = await open(t, port, '/?topics=a', { 'last-event-id': 'Bus2-2' })
  await waitFor(() => resumed.events.length >= 2 && resumed.raw.includes('id: Bus2-5\n\n'), 5000, 'the replay')
  assert.deepEqual(resumed.events.map(view), [
    { event: 'message', id: 'Bus2-3', data: 'e3' },
    { event: 'message', id: 'Bus2-5', data: 'e5' }
  ])
  assert.match(resumed.raw, /data: e5\n\nid: Bus2-5\n\n$/, 'the position frame ends the replay')
  // A cursor of the hub's first epoch is another epoch's now.
  const stale = await open(t, port, '/?topics=a', { 'last-event-id': 'Ep0ch-1' })
  await waitFor(() => stale.events.length >= 1, 5000, 'the reset')
  assert.equal(stale.events[0].event, 'reset')
  assert.deepEqual(JSON.parse(stale.events[0].data), { reason: 'epoch', requested: null, oldest: 'Bus2-1', latest: 'Bus2-5' })
  // The catch-up endpoint reads the same history.
  const polled = await hub.catchUp({ topics: ['b'], since: 'Bus2-0' })
  assert.deepEqual(polled.events.map((e) => [e.id, e.data]), [['Bus2-2', 'e2'], ['Bus2-4', 'e4']])
  assert.equal(polled.cursor, 'Bus2-5')
})

test('a gap or an explicit rebase: one reset (expired or epoch) to every history stream, history emptied, then live events', async (t) => {
  const { hub, port } = await historyHub(t)
  const bus = hubInternals(hub)
  const one = (topic, data) => [topic, data, undefined, undefined, undefined]
  bus.publishBatch('Bus3', 1, [...one('a', 'e1'), ...one('a', 'e2')])
  const s = await open(t, port, '/?topics=a')
  await connected(hub, 1)
  await waitFor(() => s.raw.includes('id: Bus3-2\n\n'), 5000, 'the position frame')
  // Sequence 3..9 trimmed from the stream before this instance read them: a gap.
  assert.equal(bus.publishBatch('Bus3', 10, one('a', 'e10')), 1)
  await waitFor(() => s.events.length >= 2, 5000, 'reset and e10')
  assert.deepEqual(JSON.parse(s.events[0].data), { reason: 'expired', requested: null, oldest: null, latest: 'Bus3-9' })
  assert.equal(s.events[0].lastEventId, 'Bus3-9')
  assert.deepEqual(view(s.events[1]), { event: 'message', id: 'Bus3-10', data: 'e10' })
  assert.equal(hub.stats().history.oldest, 'Bus3-10', 'the events before the gap were dropped')
  // An explicit rebase to another epoch: the history is empty, the position its seq.
  bus.rebase('Bus4', 100)
  assert.deepEqual(bus.position(), { epoch: 'Bus4', seq: 100 })
  let h = hub.stats().history
  // Three rebases: to Bus3 (the first batch), the gap, Bus4.
  assert.deepEqual([h.epoch, h.events, h.bytes, h.oldest, h.latest, h.rebases], ['Bus4', 0, 0, null, 'Bus4-100', 3])
  await waitFor(() => s.events.length >= 3, 5000, 'the second reset')
  assert.deepEqual(JSON.parse(s.events[2].data), { reason: 'epoch', requested: null, oldest: null, latest: 'Bus4-100' })
  assert.equal(hub.publish('a', 'next'), 'Bus4-101')
  // The batch that follows the rebase sends no further reset.
  assert.equal(bus.publishBatch('Bus4', 102, one('a', 'e102')), 1)
  await waitFor(() => s.events.length >= 5, 5000, 'the live events')
  await sleep(50)
  assert.deepEqual(s.events.slice(3).map(view), [
    { event: 'message', id: 'Bus4-101', data: 'next' },
    { event: 'message', id: 'Bus4-102', data: 'e102' }
  ])
  h = hub.stats().history
  assert.equal(h.rebases, 3)
  assert.equal(h.resets.epoch + h.resets.expired, 0, 'rebase resets are counted as rebases, not as resume resets')
})

test('a long-poll waiting across a rebase is answered with a reset, not with the new epoch\'s events', async (t) => {
  const { hub } = await historyHub(t)
  const bus = hubInternals(hub)
  for (let i = 0; i < 5; i++) hub.publish('other', `x${i}`) // Ep0ch-1..5
  const waiting = hub.catchUp({ topics: ['a'], since: `${EPOCH}-5`, waitMs: 5000 })
  await sleep(20)
  bus.publishBatch('Bus5', 200, ['a', 'new', undefined, undefined, undefined])
  const r = await waiting
  assert.equal(r.reset?.reason, 'epoch')
  assert.deepEqual(r.events, [])
  assert.equal(r.cursor, 'Bus5-200')
})

test('bad input is refused with a coded error naming the slot, and changes nothing', async (t) => {
  const { hub, port } = await historyHub(t)
  const bus = hubInternals(hub)
  const s = await open(t, port, '/?topics=a')
  await connected(hub, 1)
  const ok = ['a', 'x', undefined, undefined, undefined]
  const cases = [
    [() => bus.publishBatch('', 1, ok), 'ERR_SSE_INVALID_ARGUMENT', /epoch/],
    [() => bus.publishBatch('a-b', 1, ok), 'ERR_SSE_INVALID_ARGUMENT', /epoch/],
    [() => bus.publishBatch('e'.repeat(33), 1, ok), 'ERR_SSE_INVALID_ARGUMENT', /epoch/],
    [() => bus.publishBatch(7, 1, ok), 'ERR_SSE_INVALID_ARGUMENT', /epoch/],
    [() => bus.publishBatch('Bus', 0, ok), 'ERR_SSE_INVALID_ARGUMENT', /firstSeq/],
    [() => bus.publishBatch('Bus', 1.5, ok), 'ERR_SSE_INVALID_ARGUMENT', /firstSeq/],
    [() => bus.publishBatch('Bus', '1', ok), 'ERR_SSE_INVALID_ARGUMENT', /firstSeq/],
    [() => bus.publishBatch('Bus', 2 ** 53, ok), 'ERR_SSE_INVALID_ARGUMENT', /firstSeq/],
    [() => bus.publishBatch('Bus', 2 ** 53 - 1, [...ok, ...ok]), 'ERR_SSE_INVALID_ARGUMENT', /ends past/],
    [() => bus.publishBatch('Bus', 1, ok.slice(1)), 'ERR_SSE_INVALID_ARGUMENT', /5 slots per event/],
    [() => bus.publishBatch('Bus', 1, 'a'), 'ERR_SSE_INVALID_ARGUMENT', /entries/],
    [() => bus.publishBatch('Bus', 1, new Array(5 * 4097).fill(undefined)), 'ERR_SSE_INVALID_ARGUMENT', /at most 4096 events/],
    [() => bus.publishBatch('Bus', 1, [...ok, 'a\nb', 'x', undefined, undefined, undefined]), 'ERR_SSE_INVALID_TOPIC', /entries\[5\] \(the topic of event 1\)/],
    [() => bus.publishBatch('Bus', 1, [...ok, '', 'x', undefined, undefined, undefined]), 'ERR_SSE_INVALID_TOPIC', /entries\[5\]/],
    [() => bus.publishBatch('Bus', 1, ['a', 5, undefined, undefined, undefined]), 'ERR_SSE_INVALID_DATA', /entries\[1\]/],
    [() => bus.publishBatch('Bus', 1, ['a', { x: 1 }, undefined, undefined, undefined]), 'ERR_SSE_INVALID_DATA', /entries\[1\]/],
    [() => bus.publishBatch('Bus', 1, ['a', 'x', 'ev\nid: forged', undefined, undefined]), 'ERR_SSE_INVALID_EVENT', /entries\[2\]/],
    [() => bus.publishBatch('Bus', 1, ['a', 'x', undefined, 'id\r', undefined]), 'ERR_SSE_INVALID_ID', /entries\[3\]/],
    [() => bus.publishBatch('Bus', 1, ['a', 'x', undefined, 7, undefined]), 'ERR_SSE_INVALID_ID', /entries\[3\]/],
    [() => bus.publishBatch('Bus', 1, ['a', 'x', undefined, undefined, 'u1']), 'ERR_SSE_INVALID_ARGUMENT', /entries\[4\]/],
    [() => bus.publishBatch('Bus', 1, ['a', 'x', undefined, undefined, ['u1', 2]]), 'ERR_SSE_INVALID_ARGUMENT', /entries\[4\] \(the users of event 0\)\[1\]/],
    [() => bus.publishBatch('Bus', 1, ['a', 'x'.repeat(2 * 1024 * 1024), undefined, undefined, undefined]), 'ERR_SSE_DATA_TOO_LARGE', /maxQueueBytes/],
    [() => bus.rebase('Bus', -1), 'ERR_SSE_INVALID_ARGUMENT', /seq/],
    [() => bus.rebase('Bus', 2 ** 53), 'ERR_SSE_INVALID_ARGUMENT', /seq/],
    [() => bus.rebase('B_s', 1), 'ERR_SSE_INVALID_ARGUMENT', /epoch/]
  ]
  for (const [call, code, message] of cases) throwsSse(call, code, message, String(call))
  assert.deepEqual(bus.position(), { epoch: EPOCH, seq: 0 })
  const h = hub.stats().history
  assert.deepEqual([h.epoch, h.latest, h.events, h.rebases], [EPOCH, `${EPOCH}-0`, 0, 0])
  // An empty batch is no batch: nothing changes, not even the epoch.
  assert.equal(bus.publishBatch('Other', 77, []), 0)
  assert.deepEqual(bus.position(), { epoch: EPOCH, seq: 0 })
  // The stream got nothing from any of it: the next event is the first after the position frame.
  hub.publish('a', 'sentinel')
  await waitFor(() => s.events.length >= 1, 5000, 'the sentinel')
  await sleep(50)
  assert.deepEqual(s.events.map(view), [{ event: 'message', id: `${EPOCH}-1`, data: 'sentinel' }])
})

test('history off, closed hub, and the pending bound: refused, all or nothing', async (t) => {
  const { hub: plain } = await startHub(t, { hub: { threads: 1 }, accept: {} })
  throwsSse(() => hubInternals(plain).publishBatch('Bus', 1, ['a', 'x', undefined, undefined, undefined]), 'ERR_SSE_INVALID_ARGUMENT', /history is off/)
  throwsSse(() => hubInternals(plain).rebase('Bus', 1), 'ERR_SSE_INVALID_ARGUMENT', /history is off/)
  assert.equal(hubInternals(plain).position(), null)

  const { hub } = await historyHub(t, { threads: 1, maxPendingCommands: 8 })
  const bus = hubInternals(hub)
  const batch = []
  for (let i = 0; i < 10; i++) batch.push('a', `e${i}`, undefined, undefined, undefined)
  // Three commands wait in this job's batch: 3 + 10 do not fit 8.
  hub.publish('a', '1')
  hub.publish('a', '2')
  hub.publish('a', '3')
  const full = hub.stats().queueFull
  throwsSse(() => bus.publishBatch('Bus', 4, batch), 'ERR_SSE_QUEUE_FULL', /nothing was published/)
  assert.equal(hub.stats().queueFull, full + 1)
  assert.deepEqual(bus.position(), { epoch: EPOCH, seq: 3 }, 'nothing of the batch was taken')
  assert.equal(hub.stats().history.events, 3)
  // Once the I/O thread caught up, the same batch fits (an empty queue takes it whole).
  await waitFor(() => hub.stats().pendingCommands === 0, 5000, 'the queue to drain')
  assert.equal(bus.publishBatch('Bus', 4, batch), 10)
  assert.deepEqual(bus.position(), { epoch: 'Bus', seq: 13 })

  await hub.close()
  throwsSse(() => bus.publishBatch('Bus', 14, batch), 'ERR_SSE_CLOSED', /closed/)
  throwsSse(() => bus.rebase('Bus', 1), 'ERR_SSE_CLOSED', /closed/)
})

test('the native calls guard memory: wrong types are a status, never a crash, and change nothing', async (t) => {
  const { hub } = await historyHub(t)
  const { native } = hubInternals(hub)
  const names = require('../../lib/native').statusNames
  const status = (s) => names[s]
  const ok = ['a', 'x', undefined, undefined, undefined]
  const cases = [
    [[5, 1, ok], 'INVALID_ID'],
    [['Bus', '1', ok], 'INVALID_ID'],
    [['Bus', 0, ok], 'INVALID_ID'],
    [['Bus', 1.5, ok], 'INVALID_ID'],
    [['Bus', 2 ** 53, ok], 'INVALID_ID'],
    [['a-b', 1, ok], 'INVALID_ID'],
    [['Bus', 1, { length: 5 }], 'INVALID_DATA'],
    [['Bus', 1, ok.slice(1)], 'INVALID_DATA'],
    [['Bus', 1, new Array(5 * 4097)], 'DATA_TOO_LARGE'],
    [['Bus', 1, [42, 'x', undefined, undefined, undefined]], 'INVALID_TOPIC'],
    [['Bus', 1, ['', 'x', undefined, undefined, undefined]], 'INVALID_TOPIC'],
    [['Bus', 1, ['a', 42, undefined, undefined, undefined]], 'INVALID_DATA'],
    [['Bus', 1, ['a', new Uint16Array(2), undefined, undefined, undefined]], 'INVALID_DATA'],
    [['Bus', 1, ['a', 'x', 42, undefined, undefined]], 'INVALID_EVENT'],
    [['Bus', 1, ['a', 'x', undefined, {}, undefined]], 'INVALID_ID'],
    [['Bus', 1, ['a', 'x', undefined, undefined, [1]]], 'INVALID_DATA'],
    [['Bus', 1, ['a', 'x', undefined, undefined, 'u']], 'INVALID_DATA'],
    [['Bus', 1, [...ok, 'a\nb', 'x', undefined, undefined, undefined]], 'INVALID_TOPIC']
  ]
  for (const [args, want] of cases) assert.equal(status(native.publishBatch(...args)), want, JSON.stringify(args).slice(0, 80))
  assert.equal(status(native.historyRebase('Bus', -1)), 'INVALID_ID')
  assert.equal(status(native.historyRebase(undefined, 1)), 'INVALID_ID')
  assert.deepEqual(hubInternals(hub).position(), { epoch: EPOCH, seq: 0 })
  assert.equal(hub.stats().history.latest, `${EPOCH}-0`)
  assert.equal(hub.stats().history.rebases, 0)
})
