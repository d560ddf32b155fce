'use strict'
// History and resume, case by case over real sockets: the in-band reset for
// every reason (and nothing a client sent echoed), where the cursor comes
// from, the publisher's own ids, private events, position frames and
// heartbeats, age, retry ranges, streams that opt out, options.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { Hub } = require('../..')
const { SseParser } = require('../helpers/sse-parser')
const { startHub } = require('../helpers/fixture')
const { waitFor, sleep } = require('../helpers/wait')

const EPOCH = 'Ep0ch'

// A hub with history behind node:http: GET /?topics=a,b&user=u (and any
// other query parameter, for the cursor).
async function historyHub (t, history = {}, hubOptions = {}) {
  return startHub(t, {
    hub: { threads: 2, heartbeatMs: 0, ...hubOptions, history: { epoch: EPOCH, ...history } },
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

/** Opens a stream; `events` fills as events arrive; close() ends it. */
function open (port, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const s = { res, events: [], raw: '', close: () => req.destroy() }
      s.parser = new SseParser((ev) => s.events.push(ev))
      res.setEncoding('utf8')
      res.on('data', (chunk) => { s.raw += chunk; s.parser.push(chunk) })
      res.on('error', () => {})
      resolve(s)
    })
    req.on('error', reject)
  })
}

async function firstEvents (port, path, headers, n) {
  const s = await open(port, path, headers)
  await waitFor(() => s.events.length >= n, 5000, `${n} events on ${path}`)
  return s
}

function publishMany (hub, topic, n, options) {
  const ids = []
  for (let i = 0; i < n; i++) ids.push(hub.publish(topic, `${topic}${i}`, options))
  return ids
}

test('a cursor that cannot be placed gets one reset event (reason, ids, nothing echoed), then live events', async (t) => {
  const { hub, port } = await historyHub(t, { maxEvents: 5 })
  publishMany(hub, 'a', 10) // seq 1..10; the history holds 6..10, then the 5 latest
  const cases = [
    ['zz<script>', 'unknown'], // malformed
    [`${EPOCH}-999999`, 'unknown'], // past the latest
    ['an-id-never-published', 'unknown'],
    [`${EPOCH}-01`, 'unknown'], // leading zero: not the grammar
    ['Other1-3', 'epoch'],
    [`${EPOCH}-2`, 'expired'],
    [`${EPOCH}-4`, 'expired'] // 5 and later are gone too (6 is the oldest)
  ]
  for (const [cursor, reason] of cases) {
    const { oldest, latest } = hub.stats().history // each case publishes one live event
    const s = await firstEvents(port, '/?topics=a', { 'last-event-id': cursor }, 1)
    const [reset] = s.events
    assert.equal(reset.event, 'reset', cursor)
    assert.equal(reset.lastEventId, latest, `${cursor}: the reset's id is the position`)
    assert.deepEqual(JSON.parse(reset.data), { reason, requested: reason === 'expired' ? cursor : null, oldest, latest }, cursor)
    if (reason !== 'expired') assert.ok(!s.raw.includes(cursor), `${cursor} is not echoed`)
    hub.publish('a', 'live')
    await waitFor(() => s.events.length === 2, 5000, 'the live event after the reset')
    assert.equal(s.events[1].data, 'live')
    s.close()
  }
  const { resets } = hub.stats().history
  assert.deepEqual(resets, { unknown: 4, epoch: 1, expired: 2, limit: 0 })
})

test('a replay past maxReplayEvents or maxQueueBytes is a reset with reason limit; within them it is exact', async (t) => {
  const { hub, port } = await historyHub(t, { maxReplayEvents: 3 }, { maxQueueBytes: 4096 })
  const ids = publishMany(hub, 'a', 4)
  publishMany(hub, 'b', 10) // not matched: not counted against the limit
  let s = await firstEvents(port, '/?topics=a', { 'last-event-id': ids[0] }, 3)
  await sleep(50)
  assert.deepEqual(s.events.map((e) => e.data), ['a1', 'a2', 'a3'], 'three to replay: within the limit')
  assert.equal(s.parser.sourceLastEventId, `${EPOCH}-14`, 'then the position frame')
  s.close()
  s = await firstEvents(port, '/?topics=a', { 'last-event-id': `${EPOCH}-0` }, 1)
  assert.equal(s.events[0].event, 'reset')
  assert.deepEqual(JSON.parse(s.events[0].data), { reason: 'limit', requested: `${EPOCH}-0`, oldest: `${EPOCH}-1`, latest: `${EPOCH}-14` })
  s.close()
  // Bytes: three events of 1500 bytes pass maxQueueBytes (4096) with their framing.
  const big = hub.publish('big', 'x'.repeat(1500))
  hub.publish('big', 'x'.repeat(1500))
  hub.publish('big', 'x'.repeat(1500))
  s = await firstEvents(port, '/?topics=big', { 'last-event-id': ids[0] }, 1)
  assert.equal(JSON.parse(s.events[0].data).reason, 'limit')
  s.close()
  s = await firstEvents(port, '/?topics=big', { 'last-event-id': big }, 2)
  assert.equal(s.events.length, 2, 'two of them fit')
  s.close()
})

test('the cursor comes from the Last-Event-ID header, else lastEventId, last_event_id or lastEventID in the query', async (t) => {
  const { hub, port } = await historyHub(t)
  const ids = publishMany(hub, 'a', 3)
  for (const name of ['lastEventId', 'last_event_id', 'lastEventID']) {
    const s = await firstEvents(port, `/?topics=a&${name}=${ids[1]}`, {}, 1)
    await sleep(30)
    assert.deepEqual(s.events.map((e) => e.data), ['a2'], name)
    s.close()
  }
  const s = await firstEvents(port, `/?topics=a&lastEventId=${ids[0]}`, { 'last-event-id': ids[1] }, 1)
  await sleep(30)
  assert.deepEqual(s.events.map((e) => e.data), ['a2'], 'the header first')
  s.close()
  const empty = await open(port, '/?topics=a', { 'last-event-id': '' })
  await waitFor(() => empty.parser.sourceLastEventId !== '', 5000, 'the position frame')
  assert.equal(empty.raw, `id: ${EPOCH}-3\n\n`, 'an empty Last-Event-ID is no cursor: the position frame only')
  empty.close()
})

test('an explicit lastEventId option wins over the request, and a stream with history: false takes no part', async (t) => {
  const { hub, port } = await startHub(t, {
    hub: { heartbeatMs: 0, history: { epoch: EPOCH } },
    handler: (hub) => (req, res) => {
      const off = req.url.includes('off')
      hub.accept(req, res, { topics: ['a'], lastEventId: off ? undefined : `${EPOCH}-2`, history: off ? false : undefined })
    }
  })
  publishMany(hub, 'a', 3)
  const s = await firstEvents(port, '/', { 'last-event-id': `${EPOCH}-0` }, 1)
  await sleep(30)
  assert.deepEqual(s.events.map((e) => e.data), ['a2'])
  s.close()
  const off = await open(port, '/off', { 'last-event-id': `${EPOCH}-0` })
  hub.publish('a', 'live')
  await waitFor(() => off.events.length === 1, 5000, 'the live event')
  assert.equal(off.raw, `id: ${EPOCH}-4\ndata: live\n\n`, 'no replay, no position frame: live events only')
  off.close()
})

test("the publisher's own id stays on the wire and is a cursor; a repeated id names its latest event; send() is not in the history", async (t) => {
  const { hub, port } = await historyHub(t, { maxEvents: 4 })
  const conns = []
  hub.on('connect', (c) => conns.push(c))
  assert.equal(hub.publish('a', 'one', { id: 'order:7' }), 'order:7')
  hub.publish('a', 'two')
  assert.equal(hub.publish('a', 'three', { id: 'order:7' }), 'order:7')
  hub.publish('a', 'four')
  let s = await firstEvents(port, '/?topics=a', { 'last-event-id': 'order:7' }, 1)
  hub.send(conns.at(-1).id, 'direct')
  await waitFor(() => s.events.length === 2, 5000, 'the sent event')
  assert.deepEqual(s.events.map((e) => [e.data, e.lastEventId]), [['four', `${EPOCH}-4`], ['direct', `${EPOCH}-4`]],
    'the replay after the latest order:7; a sent event carries no id')
  assert.ok(s.raw.includes('id: order:7') === false, 'order:7 itself is not replayed')
  s.close()
  s = await firstEvents(port, '/?topics=a', { 'last-event-id': `${EPOCH}-0` }, 4)
  assert.deepEqual(s.events.map((e) => e.lastEventId), ['order:7', `${EPOCH}-2`, 'order:7', `${EPOCH}-4`], 'ids on the wire as published')
  assert.ok(!s.events.some((e) => e.data === 'direct'), 'send() events are never replayed')
  s.close()
  publishMany(hub, 'b', 4) // the order:7 events leave the history
  s = await firstEvents(port, '/?topics=a', { 'last-event-id': 'order:7' }, 1)
  assert.equal(JSON.parse(s.events[0].data).reason, 'unknown', 'an id no longer held')
  s.close()
})

test('a private event is kept for a user with no connection, replayed to that user only', async (t) => {
  const { hub, port } = await historyHub(t)
  const start = hub.publish('a', 'public')
  hub.publish('a', 'for u1', { users: ['u1'] })
  hub.broadcast('for u2', { users: ['u2'] })
  const u1 = await firstEvents(port, '/?topics=a&user=u1', { 'last-event-id': start }, 1)
  const u2 = await firstEvents(port, '/?topics=b&user=u2', { 'last-event-id': start }, 1)
  const anon = await open(port, '/?topics=a', { 'last-event-id': start })
  await sleep(50)
  assert.deepEqual(u1.events.map((e) => e.data), ['for u1'])
  assert.deepEqual(u2.events.map((e) => e.data), ['for u2'], 'a private broadcast, whatever the topics')
  assert.deepEqual(anon.events, [])
  assert.equal(anon.parser.sourceLastEventId, `${EPOCH}-3`, 'the position moves past what it may not see')
  for (const s of [u1, u2, anon]) s.close()
})

test('heartbeats carry the position: a client on a quiet topic keeps a fresh cursor', async (t) => {
  const { hub, port } = await historyHub(t, { maxEvents: 3 }, { heartbeatMs: 100 })
  const quiet = await open(port, '/?topics=quiet')
  await waitFor(() => quiet.parser.sourceLastEventId === `${EPOCH}-0`, 5000, 'the position frame')
  publishMany(hub, 'busy', 10)
  await waitFor(() => quiet.parser.sourceLastEventId === `${EPOCH}-10`, 5000, 'a heartbeat with the new position')
  assert.ok(quiet.raw.includes(`: \nid: ${EPOCH}-10\n\n`), JSON.stringify(quiet.raw))
  assert.deepEqual(quiet.events, [])
  quiet.close()
  // Far more than the history holds went by, but none of it was for this client: it resumes, no reset.
  const again = await open(port, '/?topics=quiet', { 'last-event-id': quiet.parser.sourceLastEventId })
  hub.publish('quiet', 'news')
  await waitFor(() => again.events.length === 1, 5000, 'the live event')
  assert.equal(again.events[0].data, 'news')
  again.close()
})

test('positionEvent: the position frame and the heartbeats are events EventSource dispatches', async (t) => {
  const { hub, port } = await historyHub(t, { positionEvent: true }, { heartbeatMs: 100 })
  publishMany(hub, 'busy', 2)
  const quiet = await open(port, '/?topics=quiet')
  await waitFor(() => quiet.events.length >= 1, 5000, 'the position event')
  assert.ok(quiet.raw.startsWith(`event: sse-position\nid: ${EPOCH}-2\ndata: \n\n`), JSON.stringify(quiet.raw))
  assert.deepEqual(quiet.events[0], { event: 'sse-position', data: '', lastEventId: `${EPOCH}-2` })
  publishMany(hub, 'busy', 3)
  await waitFor(() => quiet.events.some((e) => e.lastEventId === `${EPOCH}-5`), 5000, 'a heartbeat with the new position')
  assert.ok(quiet.events.every((e) => e.event === 'sse-position' && e.data === ''), 'only position events on a quiet topic')
  assert.equal(hub.stats().delivered, 0, 'position events are not counted as deliveries')
  quiet.close()
  // A resume replays, then the position event (no id-only frame).
  const again = await open(port, '/?topics=busy', { 'last-event-id': `${EPOCH}-3` })
  await waitFor(() => again.events.length >= 3, 5000, 'the replay and the position')
  assert.deepEqual(again.events.slice(0, 3).map((e) => [e.event, e.lastEventId]),
    [['message', `${EPOCH}-4`], ['message', `${EPOCH}-5`], ['sse-position', `${EPOCH}-5`]])
  again.close()
  const named = new Hub({ threads: 1, history: { positionEvent: 'where' } })
  assert.equal(named.options.history.positionEvent, 'where')
  await named.close()
})

test('events older than maxAgeMs are gone: resuming before them is expired', async (t) => {
  const { hub, port } = await historyHub(t, { maxAgeMs: 200 })
  const first = hub.publish('a', 'old')
  await sleep(300)
  const s = await firstEvents(port, '/?topics=a', { 'last-event-id': `${EPOCH}-0` }, 1)
  assert.deepEqual(JSON.parse(s.events[0].data), { reason: 'expired', requested: `${EPOCH}-0`, oldest: null, latest: first })
  s.close()
  assert.equal(hub.stats().history.events, 0)
})

test('retry as a range: each stream draws its own retry within it', async (t) => {
  const { port } = await startHub(t, {
    hub: { heartbeatMs: 0, history: true },
    handler: (hub) => (req, res) => hub.accept(req, res, { topics: ['a'], retry: { min: 1000, max: 1099 } })
  })
  const seen = new Set()
  for (let i = 0; i < 20; i++) {
    const s = await open(port, '/')
    await waitFor(() => s.parser.retry !== null, 5000, 'the retry field')
    assert.ok(s.parser.retry >= 1000 && s.parser.retry <= 1099, String(s.parser.retry))
    assert.ok(s.raw.startsWith(`retry: ${s.parser.retry}\n\n`), 'the retry frame comes first')
    seen.add(s.parser.retry)
    s.close()
  }
  assert.ok(seen.size > 5, `20 streams drew ${seen.size} different values`)
})

test('stats count replays, replayed events, resets by reason; publish() returns the ids', async (t) => {
  const { hub, port } = await historyHub(t)
  const ids = publishMany(hub, 'a', 3)
  assert.deepEqual(ids, [`${EPOCH}-1`, `${EPOCH}-2`, `${EPOCH}-3`])
  assert.equal(hub.broadcast('b'), `${EPOCH}-4`)
  const s = await firstEvents(port, '/?topics=a', { 'last-event-id': ids[0] }, 3)
  const r = await firstEvents(port, '/?topics=a', { 'last-event-id': 'nope' }, 1)
  const h = hub.stats().history
  assert.deepEqual({ ...h, bytes: h.bytes > 0 }, {
    epoch: EPOCH,
    events: 4,
    bytes: true,
    oldest: `${EPOCH}-1`,
    latest: `${EPOCH}-4`,
    replays: 1,
    replayedEvents: 3,
    resets: { unknown: 1, epoch: 0, expired: 0, limit: 0 },
    polls: 0
  })
  s.close()
  r.close()
  assert.equal(new Hub({ threads: 1 }).stats().history, null, 'history is off by default')
})

test('history options are checked with clear errors', async () => {
  const bad = [
    [{ history: 'yes' }, /true, false or an options object/],
    [{ history: { maxEvents: -1 } }, /options.history.maxEvents/],
    [{ history: { epoch: 'has-dash' } }, /options.history.epoch/],
    [{ history: { resetEvent: 'a\nb' } }, /options.history.resetEvent/],
    [{ history: { maxEvent: 5 } }, /options.history key/],
    [{ history: { positionEvent: 'a\rb' } }, /options.history.positionEvent/],
    [{ history: { positionEvent: 'reset' } }, /options.history.positionEvent/],
    [{ history: { positionEvent: 'x'.repeat(257) } }, /options.history.positionEvent/],
    [{ history: { positionEvent: 1 } }, /options.history.positionEvent/]
  ]
  for (const [options, message] of bad) {
    assert.throws(() => new Hub({ threads: 1, ...options }), (err) => err.code === 'ERR_SSE_INVALID_ARGUMENT' && message.test(err.message), JSON.stringify(options))
  }
  const off = new Hub({ threads: 1, history: { maxEvents: 0 } })
  assert.equal(off.options.history, null, 'a zero limit turns history off')
  await off.close()
  const hub = new Hub({ threads: 1, history: true })
  const req = { headers: {}, method: 'GET', url: '/' }
  const res = { writeHead () {}, writableEnded: false }
  assert.throws(() => hub.accept(req, res, { lastEventId: 5 }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  assert.throws(() => hub.accept(req, res, { retry: { min: 5, max: 1 } }), { code: 'ERR_SSE_INVALID_RETRY' })
  assert.match(hub.options.history.epoch, /^[A-Za-z0-9]{8}$/)
  await hub.close()
})
