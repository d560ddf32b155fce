'use strict'
// The catch-up endpoint of the history (lib/history/catch-up.js) over real
// HTTP on 127.0.0.1: hub.poll() on node:http, reply.ssePoll() on Fastify,
// poll() of sse-fanout/express, and hub.catchUp() itself.
//   - since and wait: the events after the cursor that the topics and user
//     may see, in order, decoded as an EventSource would; 204 when nothing
//     is new; paging at maxPollEvents; resets (unknown, epoch, expired) that
//     never echo an invalid cursor; the query's 400s.
//   - long-polls: woken by a matching publish (not by another topic or
//     another user's private event), capped at maxPollWaitMs, ended when the
//     client goes away or the signal aborts, at most maxPollWaiters (503),
//     all answered by hub.close(); a quiet topic's wait is not turned into
//     `expired` by other topics rolling the history.
//   - authorization: topics and user come from the app; a private event only
//     for its user, a topic not granted never.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const http2 = require('node:http2')
const { setImmediate: nextTurn } = require('node:timers/promises')
const Fastify = require('fastify')
const express = require('express')
const { Hub, SseError } = require('sse-fanout')
const sseFanout = require('sse-fanout/fastify')
const { poll: expressPoll } = require('sse-fanout/express')
const { startHub } = require('../helpers/fixture')
const { waitFor, within, sleep, cleanup } = require('../helpers/wait')

const EPOCH = 'ep1'
const at = (seq) => `${EPOCH}-${seq}`

/**
 * GET url with its own connection; `response` resolves with { status,
 * headers, body (parsed when JSON), text, ms }, `request` is the
 * http.ClientRequest (to cut it). Fails after timeoutMs.
 */
function start (url, { headers = {}, timeoutMs = 10000 } = {}) {
  const started = Date.now()
  let request
  const response = new Promise((resolve, reject) => {
    request = http.get(url, { agent: false, headers }, (res) => {
      const chunks = []
      res.on('data', (chunk) => chunks.push(chunk))
      res.on('error', reject)
      res.on('end', () => {
        clearTimeout(timer)
        const text = Buffer.concat(chunks).toString()
        const json = /^application\/json/.test(res.headers['content-type'] || '')
        resolve({ status: res.statusCode, headers: res.headers, body: json ? JSON.parse(text) : text, text, ms: Date.now() - started })
      })
    })
    const timer = setTimeout(() => request.destroy(new Error(`GET ${url}: no answer within ${timeoutMs} ms`)), timeoutMs)
    request.on('error', (err) => { clearTimeout(timer); reject(err) })
  })
  return { response, request }
}

const get = (url, options) => start(url, options).response

/**
 * A hub with history (epoch EPOCH) and a node:http server whose /poll is
 * hub.poll(): topics from the query (comma-separated; `route` may decide
 * instead), user from x-user. `state.entered` counts requests whose
 * hub.poll() has run its synchronous part (a long-poll is waiting then),
 * `state.pending` those not answered yet.
 */
async function startPoll (t, history = {}, route) {
  const state = { entered: 0, pending: 0 }
  const fx = await startHub(t, {
    hub: { threads: 1, history: { epoch: EPOCH, ...history } },
    handler: (hub) => (req, res) => {
      const url = new URL(req.url, 'http://127.0.0.1')
      if (url.pathname !== '/poll') {
        res.statusCode = 404
        res.end()
        return
      }
      let options
      if (route !== undefined) {
        options = route(req, res, url)
        if (options === null) return // answered by the route
      } else {
        const topics = url.searchParams.get('topics')
        options = { topics: topics ? topics.split(',') : [], user: req.headers['x-user'] }
      }
      state.pending++
      hub.poll(req, res, options).finally(() => state.pending--)
      state.entered++
    }
  })
  const poll = (query, options) => get(`${fx.url}/poll?${query}`, options)
  const startPollRequest = (query, options) => start(`${fx.url}/poll?${query}`, options)
  return { ...fx, state, poll, startPoll: startPollRequest }
}

function assertJson (r, status) {
  assert.equal(r.status, status, `status of ${r.text}`)
  assert.equal(r.headers['content-type'], 'application/json')
  assert.equal(r.headers['cache-control'], 'no-store')
}

function assertNoContent (r) {
  assert.equal(r.status, 204, `status of ${r.text}`)
  assert.equal(r.text, '')
  assert.equal(r.headers['cache-control'], 'no-store')
}

function assertError (r, status, code, message) {
  assertJson(r, status)
  assert.deepEqual(Object.keys(r.body).sort(), ['error', 'message'])
  assert.equal(r.body.error, code)
  if (message) assert.match(r.body.message, message)
}

/** Resolves when promise settles, or records that it has not within ms. */
async function settledWithin (promise, ms) {
  let settled = false
  promise.then(() => { settled = true }, () => { settled = true })
  await sleep(ms)
  return settled
}

test('catchUp(): options checked with the library wording; history off; a closed hub', async (t) => {
  const defer = cleanup(t)
  const hub = new Hub({ threads: 1, history: { epoch: EPOCH } })
  defer(() => hub.close(), 'hub.close()')
  const rejects = (options, code, message) => assert.rejects(hub.catchUp(options), (err) => {
    assert.ok(err instanceof SseError, `${err} is an SseError`)
    assert.equal(err.code, code)
    assert.match(err.message, message)
    return true
  })
  await rejects(null, 'ERR_SSE_INVALID_ARGUMENT', /^Expected an options object for options but received null$/)
  await rejects({ wait: 5 }, 'ERR_SSE_INVALID_ARGUMENT', /^Expected one of topics, user, since, waitMs, signal in options but received "wait"$/)
  await rejects({ topics: 5 }, 'ERR_SSE_INVALID_ARGUMENT', /for options\.topics but received 5 of type number/)
  await rejects({ topics: ['a', ''] }, 'ERR_SSE_INVALID_TOPIC', /for options\.topics\[1\]/)
  await rejects({ topics: 'a\nb' }, 'ERR_SSE_INVALID_TOPIC', /options\.topics/)
  await rejects({ user: 42 }, 'ERR_SSE_INVALID_ARGUMENT', /for options\.user but received 42 of type number/)
  await rejects({ since: 7 }, 'ERR_SSE_INVALID_ARGUMENT', /^Expected a cursor \(an event id string\) for options\.since but received 7 of type number$/)
  await rejects({ waitMs: -1 }, 'ERR_SSE_INVALID_ARGUMENT', /for options\.waitMs but received -1 of type number/)
  await rejects({ waitMs: 1.5 }, 'ERR_SSE_INVALID_ARGUMENT', /options\.waitMs/)
  await rejects({ waitMs: '10' }, 'ERR_SSE_INVALID_ARGUMENT', /options\.waitMs/)
  await rejects({ signal: {} }, 'ERR_SSE_INVALID_ARGUMENT', /^Expected an AbortSignal for options\.signal/)

  // Valid: no options at all, and an aborted signal answers without waiting.
  assert.deepEqual(await hub.catchUp(), { events: [], cursor: at(0) })
  const started = Date.now()
  assert.equal(await hub.catchUp({ since: at(0), waitMs: 20000, signal: AbortSignal.abort() }), null)
  assert.ok(Date.now() - started < 2000)

  const plain = new Hub({ threads: 1 })
  defer(() => plain.close(), 'plain.close()')
  await assert.rejects(plain.catchUp({ topics: 'a' }), { code: 'ERR_SSE_INVALID_ARGUMENT', message: /history on/ })

  await hub.close()
  await assert.rejects(hub.catchUp({ topics: 'a' }), { code: 'ERR_SSE_CLOSED' })
})

test('since and wait: the events after the cursor for the topics, in order, as an EventSource delivers them; 204 when nothing is new', async (t) => {
  const { hub, poll } = await startPoll(t)

  // No since: the latest position (0 on an empty history), no events.
  let r = await poll('topics=a')
  assertJson(r, 200)
  assert.deepEqual(r.body, { events: [], cursor: at(0) })
  assertNoContent(await poll(`topics=a&since=${at(0)}`))

  const ids = [
    hub.publish('a', 'line 1\r\nline 2\rline 3\n', { event: 'update' }),
    hub.publish('b', 'not for a'),
    hub.broadcast({ k: 1 }),
    hub.publish('a/x', 'under a/'),
    hub.publish('a', '', { id: 'custom-5' }),
    hub.publish('a', Buffer.from('bytes'), { event: 'bin' })
  ]
  assert.deepEqual(ids, [at(1), at(2), at(3), at(4), 'custom-5', at(6)])

  r = await poll(`topics=a&since=${at(0)}`)
  assertJson(r, 200)
  assert.deepEqual(r.body, {
    events: [
      { id: at(1), event: 'update', data: 'line 1\nline 2\nline 3\n', topic: 'a' },
      { id: at(3), event: 'message', data: '{"k":1}', topic: null },
      { id: 'custom-5', event: 'message', data: '', topic: 'a' },
      { id: at(6), event: 'bin', data: 'bytes', topic: 'a' }
    ],
    cursor: at(6)
  })
  // A cursor in the middle; an explicit id is a cursor too.
  r = await poll(`topics=a&since=${at(3)}`)
  assert.deepEqual(r.body.events.map((e) => e.id), ['custom-5', at(6)])
  r = await poll('topics=a&since=custom-5')
  assert.deepEqual(r.body.events.map((e) => e.id), [at(6)])
  // Patterns, several topics, no topics (broadcasts only).
  r = await poll(`topics=a/*&since=${at(0)}`)
  assert.deepEqual(r.body.events.map((e) => [e.id, e.topic]), [[at(3), null], [at(4), 'a/x']])
  r = await poll(`topics=b,a/*&since=${at(1)}`)
  assert.deepEqual(r.body.events.map((e) => e.id), [at(2), at(3), at(4)])
  r = await poll(`since=${at(0)}`)
  assert.deepEqual(r.body.events.map((e) => e.id), [at(3)])

  // Nothing new: 204 at the latest position, also with ?wait=0 and an empty since's latest.
  assertNoContent(await poll(`topics=a&since=${at(6)}`))
  assertNoContent(await poll(`topics=a&since=${at(6)}&wait=0`))
  // Events that do not concern the topics move the cursor on: 200, no events.
  hub.publish('b', 'other')
  r = await poll(`topics=a&since=${at(6)}`)
  assertJson(r, 200)
  assert.deepEqual(r.body, { events: [], cursor: at(7) })
  r = await poll('topics=a&since=')
  assert.deepEqual(r.body, { events: [], cursor: at(7) })

  // hub.catchUp gives the same objects.
  assert.deepEqual(await hub.catchUp({ topics: ['a'], since: at(3) }), {
    events: [{ id: 'custom-5', event: 'message', data: '', topic: 'a' }, { id: at(6), event: 'bin', data: 'bytes', topic: 'a' }],
    cursor: at(7)
  })
  assert.equal(await hub.catchUp({ topics: 'a', since: at(7) }), null)
})

test('paging: at most maxPollEvents per answer, the cursor pages on to the end', async (t) => {
  const { hub, poll } = await startPoll(t, { maxPollEvents: 5 })
  const expected = []
  for (let i = 0; i < 12; i++) {
    expected.push(hub.publish('a', `a${i}`))
    hub.publish('b', `b${i}`)
  }
  const pages = []
  let cursor = at(0)
  for (let n = 0; n < 10; n++) {
    const r = await poll(`topics=a&since=${cursor}`)
    if (r.status === 204) break
    assertJson(r, 200)
    pages.push(r.body.events.map((e) => e.id))
    assert.ok(r.body.events.length <= 5)
    cursor = r.body.cursor
  }
  assert.deepEqual(pages.map((p) => p.length), [5, 5, 2])
  assert.deepEqual(pages.flat(), expected)
  assert.equal(cursor, at(24))
})

test('resets: unknown, foreign epoch and expired cursors; an invalid cursor is never echoed; a reset does not wait', async (t) => {
  const { hub, poll } = await startPoll(t, { maxEvents: 5 })
  for (let i = 1; i <= 10; i++) hub.publish('a', `e${i}`)
  const reset = (reason, requested) => ({ events: [], cursor: at(10), reset: { reason, requested, oldest: at(6), latest: at(10) } })

  let r = await poll(`topics=a&since=${at(1)}`)
  assertJson(r, 200)
  assert.deepEqual(r.body, reset('expired', at(1)))
  r = await poll('topics=a&since=other9-8')
  assert.deepEqual(r.body, reset('epoch', null))
  for (const bad of ['garbage<script>', `${at(99)}`, 'custom-never-published', `${EPOCH}-x1`, `${EPOCH}-1${'0'.repeat(2000)}`]) {
    r = await poll(`topics=a&since=${encodeURIComponent(bad)}`)
    assertJson(r, 200)
    assert.deepEqual(r.body, reset('unknown', null), bad)
    assert.ok(!r.text.includes(bad), `${bad} is not echoed`)
  }
  // The oldest event held is a valid cursor; the one before it too.
  r = await poll(`topics=a&since=${at(5)}`)
  assert.deepEqual(r.body.events.map((e) => e.data), ['e6', 'e7', 'e8', 'e9', 'e10'])
  // A reset answers at once, whatever wait says.
  r = await poll(`topics=a&since=${at(2)}&wait=20`)
  assert.equal(r.body.reset.reason, 'expired')
  assert.ok(r.ms < 3000, `answered in ${r.ms} ms`)
})

test('wait is capped at maxPollWaitMs; with no since, a long-poll ends at the latest position', async (t) => {
  const { poll } = await startPoll(t, { maxPollWaitMs: 400 })
  let r = await poll(`topics=a&since=${at(0)}&wait=30`)
  assertNoContent(r)
  assert.ok(r.ms >= 350 && r.ms < 5000, `answered after ${r.ms} ms`)
  r = await poll('topics=a&wait=30')
  assertJson(r, 200)
  assert.deepEqual(r.body, { events: [], cursor: at(0) })
  assert.ok(r.ms >= 350 && r.ms < 5000, `answered after ${r.ms} ms`)
})

test('a long-poll wakes on a matching publish, and not on another topic or another user\'s private event', async (t) => {
  const { hub, state, startPoll: begin } = await startPoll(t)
  hub.publish('a', 'before')
  const waiting = begin(`topics=a,room/*&since=${at(1)}&wait=20`, { headers: { 'x-user': 'u1' } })
  await waitFor(() => state.entered === 1, 5000, 'the long-poll to wait')
  hub.publish('b', 'other topic')
  hub.publish('room', 'not under room/')
  hub.publish('roomx/1', 'not under room/ either')
  hub.publish('a', 'for u2 only', { users: ['u2'] })
  hub.broadcast('for u3 only', { users: ['u3'] })
  assert.equal(await settledWithin(waiting.response, 400), false, 'still waiting')

  const published = Date.now()
  // Several in one turn: one wake-up, every one of them in the answer.
  const hits = [hub.publish('room/7', 'hit 1'), hub.publish('a', 'hit 2', { users: ['u1'] }), hub.publish('room/7/x', 'hit 3')]
  const r = await waiting.response
  assertJson(r, 200)
  assert.ok(Date.now() - published < 2000, `woken ${Date.now() - published} ms after the publish`)
  assert.deepEqual(r.body.events.map((e) => [e.id, e.data]), [[hits[0], 'hit 1'], [hits[1], 'hit 2'], [hits[2], 'hit 3']])
  assert.equal(r.body.cursor, hits[2])

  // A broadcast wakes a long-poll of any topics; hub.catchUp waits the same way.
  const pending = hub.catchUp({ topics: ['zzz'], since: hits[2], waitMs: 20000 })
  const other = begin(`topics=yyy&since=${hits[2]}&wait=20`)
  await waitFor(() => state.entered === 2, 5000, 'the second long-poll to wait')
  const id = hub.broadcast('to all')
  const [a, b] = await within(Promise.all([pending, other.response]), 5000, 'the broadcast wake-up')
  assert.deepEqual(a, { events: [{ id, event: 'message', data: 'to all', topic: null }], cursor: id })
  assert.deepEqual(b.body, a)
})

test('a long-poll ends when its client goes away or its signal aborts', async (t) => {
  const { hub, state, startPoll: begin, poll } = await startPoll(t, { maxPollWaiters: 1 })
  const gone = begin(`topics=a&since=${at(0)}&wait=20`)
  gone.response.catch(() => {}) // cut below
  await waitFor(() => state.entered === 1, 5000, 'the long-poll to wait')
  // The only waiter's place is taken: another long-poll is refused.
  assertError(await poll(`topics=a&since=${at(0)}&wait=20`), 503, 'ERR_SSE_TOO_MANY_CONNECTIONS', /maxPollWaiters/)
  gone.request.destroy()
  await waitFor(() => state.pending === 0, 3000, 'the cut long-poll to end')

  // Its place is free again.
  const next = begin(`topics=a&since=${at(0)}&wait=20`)
  await waitFor(() => state.entered === 3, 5000, 'the next long-poll to wait')
  assert.equal(await settledWithin(next.response, 100), false)
  const id = hub.publish('a', 'x')
  assert.deepEqual((await next.response).body.events.map((e) => e.id), [id])

  // An AbortSignal ends hub.catchUp's wait with what there is.
  const controller = new AbortController()
  const started = Date.now()
  const waiting = hub.catchUp({ topics: 'a', since: id, waitMs: 20000, signal: controller.signal })
  await sleep(50)
  controller.abort()
  assert.equal(await within(waiting, 3000, 'the aborted wait'), null)
  assert.ok(Date.now() - started < 3000)
  // ... and frees its place.
  const again = hub.catchUp({ topics: 'a', since: id, waitMs: 20000 })
  const id2 = hub.publish('a', 'y')
  assert.deepEqual((await within(again, 3000, 'the wake-up')).events.map((e) => e.id), [id2])
})

test('maxPollWaiters: past it a long-poll gets 503; an answer that needs no wait is given', async (t) => {
  const { hub, state, startPoll: begin, poll } = await startPoll(t, { maxPollWaiters: 2 })
  const first = begin(`topics=a&since=${at(0)}&wait=20`)
  const second = begin(`topics=b&since=${at(0)}&wait=20`)
  await waitFor(() => state.entered === 2, 5000, 'two long-polls to wait')
  assertError(await poll(`topics=c&since=${at(0)}&wait=20`), 503, 'ERR_SSE_TOO_MANY_CONNECTIONS',
    /maxPollWaiters \(2\)/)
  await assert.rejects(hub.catchUp({ topics: 'c', waitMs: 1000 }), { code: 'ERR_SSE_TOO_MANY_CONNECTIONS', statusCode: 503 })
  assertNoContent(await poll(`topics=c&since=${at(0)}`))
  assertNoContent(await poll(`topics=c&since=${at(0)}&wait=0`))
  const c = hub.publish('c', 'ready')
  let r = await poll(`topics=c&since=${at(0)}&wait=20`)
  assert.deepEqual(r.body.events.map((e) => e.id), [c])

  const ids = [hub.publish('a', 'x'), hub.publish('b', 'y')]
  assert.deepEqual((await first.response).body.events.map((e) => e.id), [ids[0]])
  assert.deepEqual((await second.response).body.events.map((e) => e.id), [ids[1]])
  // Both places are free again.
  const third = begin(`topics=a&since=${ids[1]}&wait=20`)
  const fourth = begin(`topics=a&since=${ids[1]}&wait=20`)
  await waitFor(() => state.pending === 2, 5000, 'two long-polls to wait')
  const last = hub.publish('a', 'z')
  for (const w of [third, fourth]) {
    r = await w.response
    assert.deepEqual(r.body.events.map((e) => e.id), [last])
  }
})

test('authorization: topics and user from the app; a private event only for its user, a topic not granted never', async (t) => {
  const grants = { u1: ['a', 'room/*'], u2: ['a'] }
  const { hub, poll, state, startPoll: begin } = await startPoll(t, {}, (req, res, url) => {
    const user = req.headers['x-user']
    if (grants[user] === undefined) {
      res.writeHead(401, { 'content-type': 'text/plain' })
      res.end('who are you?')
      return null
    }
    const asked = (url.searchParams.get('topics') || '').split(',')
    return { topics: asked.filter((topic) => grants[user].includes(topic)), user }
  })
  const as = (user) => ({ headers: { 'x-user': user } })
  const ids = {
    public: hub.publish('a', 'public'),
    u1: hub.publish('a', 'for u1', { users: ['u1'] }),
    u2: hub.publish('a', 'for u2', { users: ['u2'] }),
    secret: hub.publish('secret', 'secret'),
    room: hub.publish('room/1', 'room'),
    both: hub.publish('a', 'for both', { users: ['u2', 'u1'] }),
    all: hub.broadcast('all'),
    u1all: hub.broadcast('u1 everywhere', { users: ['u1'] })
  }
  assert.equal((await poll(`topics=a&since=${at(0)}`)).status, 401)

  let r = await poll(`topics=a,secret,room/*&since=${at(0)}`, as('u1'))
  assert.deepEqual(r.body.events.map((e) => e.id), [ids.public, ids.u1, ids.room, ids.both, ids.all, ids.u1all])
  r = await poll(`topics=a,secret,room/*&since=${at(0)}`, as('u2'))
  assert.deepEqual(r.body.events.map((e) => e.id), [ids.public, ids.u2, ids.both, ids.all])
  assert.ok(!r.text.includes('secret') && !r.text.includes('room') && !r.text.includes('u1'), r.text)

  // Long-polls: u2 is not woken by a private event of u1's, nor by a topic it was not granted.
  const waiting = begin(`topics=a,room/*&since=${ids.u1all}&wait=20`, as('u2'))
  await waitFor(() => state.entered === 3, 5000, 'the long-poll to wait')
  hub.publish('a', 'u1 again', { users: ['u1'] })
  hub.publish('room/2', 'room again')
  hub.publish('secret', 'secret again')
  assert.equal(await settledWithin(waiting.response, 400), false, 'still waiting')
  const mine = hub.publish('a', 'u2 now', { users: ['u2'] })
  r = await waiting.response
  assert.deepEqual(r.body.events.map((e) => [e.id, e.data]), [[mine, 'u2 now']])
})

test('10,000 waiting long-polls: a publish wakes only its own topic\'s, a broadcast answers all of them in one pass', async (t) => {
  const defer = cleanup(t)
  const hub = new Hub({ threads: 1, history: { epoch: EPOCH } })
  defer(() => hub.close(), 'hub.close()')
  const n = hub.options.history.maxPollWaiters
  assert.equal(n, 10000)
  const settled = new Array(n).fill(false)
  const waits = []
  for (let i = 0; i < n; i++) {
    const p = hub.catchUp({ topics: [`t/${i}`, 'shared/*'], since: at(0), waitMs: 20000 })
    p.then(() => { settled[i] = true }, () => { settled[i] = true })
    waits.push(p)
  }
  await assert.rejects(hub.catchUp({ topics: 't/x', waitMs: 1000 }), { code: 'ERR_SSE_TOO_MANY_CONNECTIONS' })

  const one = hub.publish('t/4242', 'only 4242')
  assert.deepEqual(await within(waits[4242], 3000, 'the wake-up of t/4242'), {
    events: [{ id: one, event: 'message', data: 'only 4242', topic: 't/4242' }], cursor: one
  })
  await nextTurn()
  assert.equal(settled.filter(Boolean).length, 1)

  const started = Date.now()
  const all = hub.publish('shared/x', 'for everyone')
  const answers = await within(Promise.all(waits), 5000, 'the wake-up of 10,000 long-polls')
  const ms = Date.now() - started
  for (let i = 0; i < n; i++) {
    if (i === 4242) continue
    assert.deepEqual(answers[i].events.map((e) => e.id), [all], `waiter ${i}`)
  }
  t.diagnostic(`10,000 long-polls answered ${ms} ms after one publish`)
})

test('hub.close() answers every waiting long-poll, with what was published up to then; later polls get 503', async (t) => {
  const { hub, state, startPoll: begin, poll } = await startPoll(t)
  const quiet = begin(`topics=q&since=${at(0)}&wait=20`)
  const noSince = begin('topics=q&wait=20')
  const lucky = begin(`topics=a&since=${at(0)}&wait=20`)
  const direct = hub.catchUp({ topics: 'q', since: at(0), waitMs: 20000 })
  await waitFor(() => state.entered === 3, 5000, 'three long-polls to wait')
  // Published in the same turn as close(): the waiter still gets it.
  const id = hub.publish('a', 'last one')
  const closing = hub.close()
  const [q, n, l, d] = await within(Promise.all([quiet.response, noSince.response, lucky.response, direct]), 3000,
    'the answers to the waiting long-polls')
  // Nothing for q: the latest position (the publish above moved it).
  for (const r of [q, n]) {
    assertJson(r, 200)
    assert.deepEqual(r.body, { events: [], cursor: id })
  }
  assert.deepEqual(d, { events: [], cursor: id })
  assert.deepEqual(l.body, { events: [{ id, event: 'message', data: 'last one', topic: 'a' }], cursor: id })
  await closing
  assertError(await poll(`topics=a&since=${at(0)}`), 503, 'ERR_SSE_CLOSED')
  await assert.rejects(hub.catchUp({ topics: 'a' }), { code: 'ERR_SSE_CLOSED', statusCode: 503 })
})

test('a long-poll on a quiet topic is not reset when other topics roll the history meanwhile', async (t) => {
  const { hub, state, startPoll: begin } = await startPoll(t, { maxEvents: 10 })
  const quiet = begin(`topics=quiet&since=${at(0)}&wait=20`)
  const busy = begin(`topics=busy/*&since=${at(0)}&wait=20`)
  await waitFor(() => state.entered === 2, 5000, 'two long-polls to wait')
  for (let i = 0; i < 50; i++) hub.publish('other', `o${i}`) // concerns nobody
  for (let i = 0; i < 5; i++) hub.publish('busy/1', `b${i}`) // wakes busy/* once, in this turn
  await nextTurn()
  for (let i = 0; i < 50; i++) hub.publish('other', `o${i}`)
  const id = hub.publish('quiet', 'at last')
  const r = await quiet.response
  assertJson(r, 200)
  assert.deepEqual(r.body, { events: [{ id, event: 'message', data: 'at last', topic: 'quiet' }], cursor: id })
  const b = await busy.response
  assert.deepEqual(b.body.events.map((e) => e.data), ['b0', 'b1', 'b2', 'b3', 'b4'])
})

test('the query: 400 for a wait that is not whole seconds and for a repeated parameter; an invalid topic from the app', async (t) => {
  const { poll } = await startPoll(t)
  for (const query of ['wait=-1', 'wait=1.5', 'wait=abc', 'wait=', 'wait=1e3', 'wait=%201', 'wait=1234567890']) {
    assertError(await poll(`topics=a&${query}`), 400, 'ERR_SSE_INVALID_ARGUMENT', /for the query parameter wait/)
  }
  assertError(await poll(`topics=a&since=${at(0)}&since=${at(0)}`), 400, 'ERR_SSE_INVALID_ARGUMENT',
    /^Expected at most one since parameter in the query but received 2$/)
  assertError(await poll('topics=a&wait=1&wait=2'), 400, 'ERR_SSE_INVALID_ARGUMENT', /one wait parameter/)
  assertError(await poll('topics=a%0Ab'), 400, 'ERR_SSE_INVALID_TOPIC', /options\.topics\[0\]/)
  assertError(await poll(`topics=${'x'.repeat(1100)}`), 400, 'ERR_SSE_INVALID_TOPIC')
  // Whole seconds are fine: wait=0 answers at once.
  assert.equal((await poll('topics=a&wait=0')).status, 200)
})

test('HTTP/2 (compatibility API): hub.poll() answers, long-polls wake, a cancelled stream ends its wait', async (t) => {
  let pending = 0
  const { hub, port, defer } = await startHub(t, {
    hub: { threads: 1, history: { epoch: EPOCH, maxPollWaiters: 1 } },
    createServer: (listener) => http2.createServer(listener),
    handler: (hub) => (req, res) => {
      pending++
      hub.poll(req, res, { topics: ['a'] }).finally(() => pending--)
    }
  })
  const session = http2.connect(`http://127.0.0.1:${port}`)
  session.on('error', () => {})
  defer(() => session.destroy(), 'session.destroy()')
  const request = (query) => {
    const stream = session.request({ ':path': `/poll?${query}` })
    const response = new Promise((resolve, reject) => {
      let headers
      const chunks = []
      stream.on('response', (h) => { headers = h })
      stream.on('data', (chunk) => chunks.push(chunk))
      stream.on('end', () => {
        if (headers === undefined) return reject(new Error('the stream ended without a response'))
        const text = Buffer.concat(chunks).toString()
        resolve({ status: headers[':status'], headers, text, body: text === '' ? '' : JSON.parse(text) })
      })
      stream.on('error', reject)
    })
    return { stream, response }
  }
  const id = hub.publish('a', 'one')
  let r = await request(`since=${at(0)}`).response
  assert.equal(r.status, 200)
  assert.equal(r.headers['content-type'], 'application/json')
  assert.deepEqual(r.body, { events: [{ id, event: 'message', data: 'one', topic: 'a' }], cursor: id })
  r = await request(`since=${id}`).response
  assert.equal(r.status, 204)

  const cancelled = request(`since=${id}&wait=20`)
  cancelled.response.catch(() => {})
  await waitFor(() => pending === 1, 5000, 'the long-poll to wait')
  cancelled.stream.close(http2.constants.NGHTTP2_CANCEL)
  await waitFor(() => pending === 0, 3000, 'the cancelled long-poll to end')
  const waiting = request(`since=${id}&wait=20`) // the only waiter's place is free again
  await waitFor(() => pending === 1, 5000, 'the long-poll to wait')
  const id2 = hub.publish('a', 'two')
  r = await within(waiting.response, 5000, 'the wake-up')
  assert.deepEqual(r.body.events.map((e) => e.id), [id2])
})

test('Fastify: reply.ssePoll() answers through the reply (200 JSON, 204, errors by statusCode), under the decorator name', async (t) => {
  const defer = cleanup(t)
  const lines = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line) => lines.push(JSON.parse(line)) } } })
  defer(() => app.close(), 'app.close()')
  await app.register(sseFanout, { threads: 1, decorator: 'events', history: { epoch: EPOCH } })
  let entered = 0
  let ended = 0
  app.get('/poll', (request, reply) => {
    const topics = request.query.topics ? String(request.query.topics).split(',') : []
    const answered = reply.eventsPoll({ topics, user: request.headers['x-user'] })
    entered++ // a long-poll is waiting now
    return answered.finally(() => ended++)
  })
  const url = await app.listen({ host: '127.0.0.1', port: 0 })
  assert.equal(app.hasReplyDecorator('ssePoll'), false)

  // The poll decorator's name is checked with the stream's, before a hub exists.
  const other = Fastify()
  defer(() => other.close(), 'other.close()')
  other.decorateReply('feedPoll', null)
  await assert.rejects(other.register(sseFanout, { threads: 1, decorator: 'feed' }).ready(),
    { code: 'ERR_SSE_INVALID_ARGUMENT', message: /"feedPoll" is already taken/ })

  let r = await get(`${url}/poll?topics=a`)
  assert.equal(r.status, 200)
  assert.match(r.headers['content-type'], /^application\/json/)
  assert.equal(r.headers['cache-control'], 'no-store')
  assert.deepEqual(r.body, { events: [], cursor: at(0) })
  const id = app.events.publish('a', { n: 1 }, { event: 'e' })
  r = await get(`${url}/poll?topics=a&since=${at(0)}`)
  assert.deepEqual(r.body, { events: [{ id, event: 'e', data: '{"n":1}', topic: 'a' }], cursor: id })
  r = await get(`${url}/poll?topics=a&since=${id}`)
  assert.equal(r.status, 204)
  assert.equal(r.headers['cache-control'], 'no-store')
  assert.equal(r.text, '')

  // Errors: Fastify's error handler, with the SseError's statusCode and code.
  r = await get(`${url}/poll?topics=a&wait=soon`)
  assert.equal(r.status, 400)
  assert.equal(r.body.code, 'ERR_SSE_INVALID_ARGUMENT')
  assert.match(r.body.message, /for the query parameter wait/)

  // A long-poll woken by a publish; one whose client goes away ends quietly.
  const waiting = start(`${url}/poll?topics=a&since=${id}&wait=20`)
  const gone = start(`${url}/poll?topics=b&since=${id}&wait=20`)
  gone.response.catch(() => {})
  await waitFor(() => entered === 6, 5000, 'two long-polls to wait')
  assert.equal(ended, 4)
  gone.request.destroy()
  await waitFor(() => ended === 5, 3000, 'the cut long-poll to end')
  const id2 = app.events.publish('a', 'woken')
  r = await waiting.response
  assert.deepEqual(r.body.events.map((e) => e.id), [id2])

  await app.events.close()
  r = await get(`${url}/poll?topics=a`)
  assert.equal(r.status, 503)
  assert.equal(r.body.code, 'ERR_SSE_CLOSED')
  // Logged at warn or above: only the 503 (Fastify logs 5xx answers as errors).
  assert.deepEqual(lines.filter((l) => l.level >= 40).map((l) => l.err?.code ?? l.msg), ['ERR_SSE_CLOSED'])
})

test('Express: poll(hub, { topics, user }) with functions of req; failures go to next(err) with a statusCode', async (t) => {
  const errors = []
  const { hub, url } = await startHub(t, {
    hub: { threads: 1, history: { epoch: EPOCH } },
    handler: (hub) => {
      const app = express()
      app.get('/poll', expressPoll(hub, {
        topics: (req) => {
          if (req.query.topics === 'throw') throw new Error('topics failed')
          return String(req.query.topics || '').split(',').filter(Boolean)
        },
        user: async (req) => req.get('x-user')
      }))
      app.get('/static', expressPoll(hub, { topics: ['a'], user: 'u1' }))
      app.use((err, req, res, next) => {
        errors.push(err)
        res.status(err.statusCode || 500).type('text/plain').send(String(err.code || err.message))
      })
      return app
    }
  })
  assert.throws(() => expressPoll({}), { code: 'ERR_SSE_INVALID_ARGUMENT', message: /Expected a Hub for hub/ })
  assert.throws(() => expressPoll(hub, { retry: 1000 }), { code: 'ERR_SSE_INVALID_ARGUMENT', message: /^Expected one of topics, user in options but received "retry"$/ })
  assert.throws(() => expressPoll(hub, { topics: 5 }), { code: 'ERR_SSE_INVALID_ARGUMENT', message: /options\.topics/ })
  assert.equal(expressPoll(hub).name, 'ssePoll')

  const ids = [hub.publish('a', 'public'), hub.publish('a', 'mine', { users: ['u1'] }), hub.publish('b', 'b')]
  let r = await get(`${url}/poll?topics=a&since=${at(0)}`, { headers: { 'x-user': 'u1' } })
  assert.equal(r.status, 200)
  assert.equal(r.headers['content-type'], 'application/json')
  assert.deepEqual(r.body.events.map((e) => e.id), [ids[0], ids[1]])
  r = await get(`${url}/poll?topics=a&since=${at(0)}`, { headers: { 'x-user': 'u2' } })
  assert.deepEqual(r.body.events.map((e) => e.id), [ids[0]])
  r = await get(`${url}/static?since=${at(0)}`)
  assert.deepEqual(r.body.events.map((e) => e.id), [ids[0], ids[1]])
  r = await get(`${url}/static?since=${ids[2]}`)
  assert.equal(r.status, 204)

  r = await get(`${url}/poll?topics=a&wait=x`)
  assert.equal(r.status, 400)
  assert.equal(r.text, 'ERR_SSE_INVALID_ARGUMENT')
  r = await get(`${url}/poll?topics=throw`)
  assert.equal(r.status, 500)
  assert.equal(r.text, 'topics failed')
  assert.deepEqual(errors.map((e) => e.statusCode), [400, undefined])

  const waiting = start(`${url}/poll?topics=b&since=${ids[2]}&wait=20`)
  assert.equal(await settledWithin(waiting.response, 300), false)
  const id = hub.publish('b', 'woken')
  r = await waiting.response
  assert.deepEqual(r.body.events.map((e) => e.id), [id])

  await hub.close()
  r = await get(`${url}/poll?topics=a`)
  assert.equal(r.status, 503)
  assert.equal(r.text, 'ERR_SSE_CLOSED')
})
