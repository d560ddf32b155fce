'use strict'
// sse-fanout/client (lib/client/index.mjs) in Node:
//   - backoff(): full jitter, bounded, deterministic with an injected random;
//   - the state machine over a scripted EventSource and fetch (no network):
//     connecting -> open -> reconnecting -> open, -> polling after maxRetries,
//     back to open when a probe opens, offline/online, close();
//   - end to end against a real Hub with history over node:http, with the
//     `eventsource` package as the EventSource: live events, a cut stream
//     (hub.kick) resumed without loss, streams answered 502 -> polling the
//     catch-up endpoint (hub.poll; interval and long-poll) -> open again with
//     no gap and no duplicate, named events both ways, `reset` for a cursor
//     the history cannot place (stream and poll);
//   - the logger's format and getSnapshot()/subscribe().

const { test, before } = require('node:test')
const assert = require('node:assert/strict')
const { EventSource } = require('eventsource')
const { startHub } = require('../helpers/fixture')
const { waitFor, sleep } = require('../helpers/wait')

let SseClient, backoff, consoleLogger
before(async () => {
  ({ SseClient, backoff, consoleLogger } = await import('../../lib/client/index.mjs'))
})

const EPOCH = 'ep1'

test('backoff(): full jitter under a cap that doubles from minRetryMs up to maxRetryMs', () => {
  const opts = (random) => ({ minRetryMs: 500, maxRetryMs: 30000, random })
  const caps = [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
  caps.forEach((cap, i) => {
    assert.equal(backoff(i + 1, opts(() => 0)), 0, `attempt ${i + 1}, random 0`)
    assert.equal(backoff(i + 1, opts(() => 0.5)), cap / 2, `attempt ${i + 1}, random 0.5`)
    assert.equal(backoff(i + 1, opts(() => 1 - 2 ** -40)), cap - 1, `attempt ${i + 1}, random ~1`)
  })
  assert.equal(backoff(1000, opts(() => 0.5)), 15000, 'a huge attempt stays capped')
  // With Math.random: spread over the whole range, never past the cap.
  const delays = Array.from({ length: 2000 }, () => backoff(4))
  assert.ok(delays.every((d) => Number.isInteger(d) && d >= 0 && d < 4000), 'within [0, 4000)')
  assert.ok(Math.min(...delays) < 400 && Math.max(...delays) > 3600, 'jittered across the range')
})

/** An EventSource the test drives: instances[i].open() / .error() / .emit(type, data, id). */
function scriptedEventSource () {
  const instances = []
  class FakeEventSource extends EventTarget {
    constructor (url) {
      super()
      this.url = url
      this.readyState = 0
      this.closed = false
      instances.push(this)
    }

    open () { this.readyState = 1; this.dispatchEvent(new Event('open')) }
    error () { this.readyState = 2; this.dispatchEvent(new Event('error')) } // refused: an answer that is not a stream
    netError () { this.readyState = 0; this.dispatchEvent(new Event('error')) } // a network error: EventSource would retry
    emit (type, data, id) { this.dispatchEvent(new MessageEvent(type, { data, lastEventId: id })) }
    close () { this.readyState = 2; this.closed = true }
  }
  return { FakeEventSource, instances }
}

/** A fetch answering each request with the next of answers ({ status, body }); records the URLs. */
function scriptedFetch (answers) {
  const urls = []
  const fetch = async (url) => {
    urls.push(url)
    const a = answers.length > 1 ? answers.shift() : answers[0]
    return { status: a.status, ok: a.status >= 200 && a.status < 300, json: async () => a.body }
  }
  return { fetch, urls }
}

function record (client, names = ['message']) {
  const got = { states: [], events: [], resets: [], errors: 0 }
  client.addEventListener('statechange', (e) => got.states.push(e.state))
  client.addEventListener('reset', (e) => got.resets.push({ data: e.data, lastEventId: e.lastEventId }))
  got.errorMessages = []
  client.addEventListener('error', (e) => { got.errors++; got.errorMessages.push(`${e.detail.source}: ${e.detail.message}`) })
  for (const name of names) client.addEventListener(name, (e) => got.events.push([e.type, e.data, e.lastEventId]))
  return got
}

test('state machine: open, reconnect from the cursor in the query, polling after maxRetries, back to open', async (t) => {
  const { FakeEventSource, instances } = scriptedEventSource()
  const { fetch, urls } = scriptedFetch([
    { status: 200, body: { events: [{ id: 'e-3', event: 'message', data: 'three', topic: 'a' }, { id: 'e-4', event: 'tick', data: '4', topic: 'a' }], cursor: 'e-4' } },
    { status: 204 }
  ])
  const client = new SseClient('http://example.test/events?topics=a', {
    EventSource: FakeEventSource, fetch, poll: 'http://example.test/poll?topics=a', logger: false, minRetryMs: 10, random: () => 0, pollIntervalMs: 150, streamRetryMs: 500
  })
  t.after(() => client.close())
  const got = record(client, ['message', 'tick'])
  assert.equal(client.state, 'connecting')
  assert.equal(instances.length, 1)
  assert.equal(instances[0].url, 'http://example.test/events?topics=a', 'no cursor yet: none sent')

  instances[0].open()
  instances[0].emit('message', 'one', 'e-1')
  instances[0].emit('message', 'two', 'e-2')
  assert.equal(client.lastEventId, 'e-2')
  instances[0].error()
  assert.equal(instances[0].closed, true, 'the failed EventSource is closed (no native reconnect)')
  assert.equal(client.state, 'reconnecting')
  await waitFor(() => instances.length === 2, 2000, 'the reconnect')
  assert.equal(new URL(instances[1].url).searchParams.get('lastEventId'), 'e-2')
  assert.equal(new URL(instances[1].url).searchParams.get('topics'), 'a', 'the app\'s query kept')

  // maxRetries (3) attempts in a row that never open: polling from the same cursor.
  instances[1].error()
  await waitFor(() => instances.length === 3, 2000, 'attempt 2')
  instances[2].error()
  await waitFor(() => instances.length === 4, 2000, 'attempt 3')
  assert.equal(client.state, 'reconnecting')
  instances[3].error()
  assert.equal(client.state, 'reconnecting', 'until the catch-up endpoint answers')
  await waitFor(() => client.state === 'polling', 2000, 'polling once the catch-up endpoint answers')
  await waitFor(() => urls.length >= 2, 2000, 'two polls')
  assert.equal(new URL(urls[0]).searchParams.get('since'), 'e-2')
  assert.equal(new URL(urls[0]).searchParams.get('wait'), null, 'interval polling: no wait')
  assert.equal(new URL(urls[1]).searchParams.get('since'), 'e-4', 'the cursor moved with the poll')

  // The probe after streamRetryMs: polling pauses; its open makes the state open.
  await waitFor(() => instances.length === 5, 2000, 'the stream probe')
  assert.equal(client.state, 'polling', 'a probe does not flap the state')
  assert.equal(new URL(instances[4].url).searchParams.get('lastEventId'), 'e-4')
  const pollsAtProbe = urls.length
  await sleep(40)
  assert.equal(urls.length, pollsAtProbe, 'no poll while the probe is pending (it times out after pollIntervalMs)')
  instances[4].open()
  instances[4].emit('message', 'five', 'e-5')
  assert.equal(client.state, 'open')
  assert.deepEqual(got.states, ['open', 'reconnecting', 'polling', 'open'])
  assert.deepEqual(got.events, [
    ['message', 'one', 'e-1'], ['message', 'two', 'e-2'], ['message', 'three', 'e-3'], ['tick', '4', 'e-4'], ['message', 'five', 'e-5']
  ])
  assert.equal(got.errors, 4)
  instances[4].error()
  assert.equal(client.state, 'reconnecting', 'a stream opened by a probe is an ordinary stream once open')
  await waitFor(() => instances.length === 6, 2000, 'the reconnect')
  assert.equal(new URL(instances[5].url).searchParams.get('lastEventId'), 'e-5')
  client.close()
  assert.equal(client.state, 'closed')
  assert.equal(instances[5].closed, true)
})

test('state machine: no poll URL -> no fallback; a probe that fails keeps polling; offline/online', async (t) => {
  const { FakeEventSource, instances } = scriptedEventSource()
  const net = new EventTarget()
  const client = new SseClient('http://example.test/events', {
    EventSource: FakeEventSource, logger: false, minRetryMs: 5, maxRetries: 2, random: () => 0.5, window: net
  })
  t.after(() => client.close())
  for (let i = 0; i < 5; i++) {
    await waitFor(() => instances.length === i + 1, 2000, `attempt ${i + 1}`)
    instances[i].error()
    assert.equal(instances[i].closed, true)
    assert.equal(client.state, 'reconnecting', 'without poll it never polls')
  }
  net.dispatchEvent(new Event('offline'))
  const count = instances.length
  await sleep(100)
  assert.equal(instances.length, count, 'offline: no attempt')
  assert.ok(instances.every((es) => es.closed))
  net.dispatchEvent(new Event('online'))
  assert.equal(instances.length, count + 1, 'online: an attempt at once')
  instances.at(-1).open()
  assert.equal(client.state, 'open')
  net.dispatchEvent(new Event('online'))
  assert.equal(instances.length, count + 1, 'online while open: the stream is kept')
  client.close()
  net.dispatchEvent(new Event('offline'))
  net.dispatchEvent(new Event('online'))
  assert.equal(instances.length, count + 1, 'closed: offline/online do nothing')
  assert.equal(client.state, 'closed')

  // A failed probe: polling goes on; poll: false disables the fallback.
  const b = scriptedEventSource()
  const { fetch, urls } = scriptedFetch([{ status: 204 }])
  const polling = new SseClient('http://example.test/events', {
    EventSource: b.FakeEventSource, fetch, poll: 'http://example.test/poll', logger: false, maxRetries: 1, pollIntervalMs: 10, streamRetryMs: 60
  })
  t.after(() => polling.close())
  b.instances[0].error()
  await waitFor(() => polling.state === 'polling', 2000, 'polling')
  await waitFor(() => b.instances.length === 2, 2000, 'the probe')
  b.instances[1].error()
  assert.equal(polling.state, 'polling')
  const before = urls.length
  await waitFor(() => urls.length > before, 2000, 'polling resumed after the failed probe')
  polling.close()
  const off = scriptedEventSource()
  const noPoll = new SseClient('http://example.test/events', { EventSource: off.FakeEventSource, poll: false, logger: false, maxRetries: 1 })
  off.instances[0].error()
  assert.equal(noPoll.state, 'reconnecting')
  noPoll.close()
})

test('a long polling session leaves no listener behind (no MaxListenersExceededWarning)', async (t) => {
  const warnings = []
  const onWarning = (w) => warnings.push(w)
  process.on('warning', onWarning)
  t.after(() => process.off('warning', onWarning))
  const { FakeEventSource, instances } = scriptedEventSource()
  const { fetch, urls } = scriptedFetch([{ status: 204 }])
  const client = new SseClient('http://example.test/events', {
    EventSource: FakeEventSource, fetch, poll: 'http://example.test/poll', logger: false, maxRetries: 1, pollIntervalMs: 1
  })
  t.after(() => client.close())
  instances[0].error()
  await waitFor(() => urls.length >= 200, 5000, '200 polls')
  assert.equal(client.state, 'polling')
  assert.deepEqual(warnings.map(String), [])
})

test('a failing poll: streams again (reconnecting); streams and polls both failing: reconnecting, never polling', async (t) => {
  const { FakeEventSource, instances } = scriptedEventSource()
  // The check after maxRetries (204), one poll (204), a 500, then the check after the next failed stream (204).
  const { fetch, urls } = scriptedFetch([{ status: 204 }, { status: 204 }, { status: 500, body: {} }, { status: 204 }])
  const client = new SseClient('http://example.test/events', {
    EventSource: FakeEventSource, fetch, poll: 'http://example.test/poll', logger: false, maxRetries: 1, minRetryMs: 1, pollIntervalMs: 20, streamRetryMs: 60000
  })
  t.after(() => client.close())
  const got = record(client)
  instances[0].error()
  await waitFor(() => instances.length === 2, 2000, 'a stream attempt after the failed poll')
  assert.equal(urls.length, 3)
  assert.equal(client.state, 'reconnecting')
  instances[1].error()
  await waitFor(() => client.state === 'polling', 2000, 'polling again: the catch-up endpoint answers')
  assert.deepEqual(got.states, ['reconnecting', 'polling', 'reconnecting', 'polling'])
  assert.ok(got.errorMessages.includes('poll: poll failed: catch-up answered 500'), got.errorMessages.join('; '))
  client.close()

  // The server is out of reach: every stream and every poll fails.
  const down = scriptedEventSource()
  const failing = scriptedFetch([{ status: 502, body: {} }])
  const lost = new SseClient('http://example.test/events', {
    EventSource: down.FakeEventSource, fetch: failing.fetch, poll: 'http://example.test/poll', logger: false, maxRetries: 2, minRetryMs: 1, maxRetryMs: 4
  })
  t.after(() => lost.close())
  const gotLost = record(lost)
  for (let i = 0; i < 6; i++) {
    await waitFor(() => down.instances.length === i + 1, 2000, `attempt ${i + 1}`)
    down.instances[i].error()
  }
  await waitFor(() => failing.urls.length === 5, 2000, 'a catch-up check after each failure past maxRetries')
  assert.deepEqual([...new Set(gotLost.states)], ['reconnecting'], 'never polling while polls fail too')
  await waitFor(() => down.instances.length === 7, 2000, 'still trying streams')
  down.instances[6].open()
  assert.equal(lost.state, 'open')
})

test('network errors (server down or restarting) back off but never lead to polling; refused attempts do', async (t) => {
  const { FakeEventSource, instances } = scriptedEventSource()
  const { fetch, urls } = scriptedFetch([{ status: 204 }])
  const lines = []
  const logger = { info: (m) => lines.push(m), warn: (m) => lines.push(m), error: (m) => lines.push(m) }
  const client = new SseClient('http://example.test/events', {
    EventSource: FakeEventSource, fetch, poll: 'http://example.test/poll', logger, maxRetries: 2, minRetryMs: 2, maxRetryMs: 64, random: () => 0.99
  })
  t.after(() => client.close())
  const got = record(client)
  for (let i = 0; i < 6; i++) {
    await waitFor(() => instances.length === i + 1, 2000, `attempt ${i + 1}`)
    instances[i].netError()
  }
  assert.equal(urls.length, 0, 'no catch-up check: polling would not reach a server that is down')
  assert.deepEqual([...new Set(got.states)], ['reconnecting'])
  assert.deepEqual(lines.filter((l) => l.startsWith('reconnecting in')).map((l) => /attempt (\d+)/.exec(l)[1]), ['2', '3', '4', '5', '6', '7'], 'the backoff grows')
  // Two refused attempts (a 502) in a row after them: polling.
  await waitFor(() => instances.length === 7, 2000, 'attempt 7')
  instances[6].error()
  await waitFor(() => instances.length === 8, 2000, 'attempt 8')
  assert.equal(urls.length, 0)
  instances[7].error()
  await waitFor(() => client.state === 'polling', 2000, 'polling after two refused attempts')
  assert.ok(lines.includes('2 stream attempts refused or held: polling http://example.test/poll'), lines.join('\n'))
})

test('a catch-up read that never answers fails after its wait plus stallTimeoutMs (a proxy that holds polls)', async (t) => {
  const { FakeEventSource, instances } = scriptedEventSource()
  const urls = []
  // Answers only by failing when aborted, as fetch does.
  const fetch = (url, { signal }) => new Promise((resolve, reject) => {
    urls.push(url)
    signal.addEventListener('abort', () => reject(new Error('aborted')))
  })
  const client = new SseClient('http://example.test/events', {
    EventSource: FakeEventSource, fetch, poll: 'http://example.test/poll', logger: false, maxRetries: 1, minRetryMs: 1, stallTimeoutMs: 80
  })
  t.after(() => client.close())
  const got = record(client)
  instances[0].error()
  await waitFor(() => instances.length === 2, 2000, 'a stream attempt after the held catch-up read')
  assert.equal(urls.length, 1)
  assert.equal(client.state, 'reconnecting')
  assert.ok(got.errorMessages.includes('poll: poll failed: catch-up did not answer within 80 ms'), got.errorMessages.join('; '))
  client.close()
  const before = urls.length
  await sleep(120)
  assert.equal(urls.length, before, 'closed: no read after')
})

test('stall: a silent open stream with events waiting in the catch-up -> polling; a quiet one stays; one never open fails', async (t) => {
  const { FakeEventSource, instances } = scriptedEventSource()
  const waiting = { status: 200, body: { events: [{ id: 'e-2', event: 'message', data: 'two', topic: 'a' }], cursor: 'e-2' } }
  const { fetch, urls } = scriptedFetch([{ status: 204 }, waiting, { status: 204 }])
  const client = new SseClient('http://example.test/events', {
    EventSource: FakeEventSource, fetch, poll: 'http://example.test/poll', logger: false, stallTimeoutMs: 60, pollIntervalMs: 1000, streamRetryMs: 5000
  })
  t.after(() => client.close())
  const got = record(client)
  instances[0].open()
  instances[0].emit('message', 'one', 'e-1')
  await waitFor(() => urls.length === 1, 2000, 'the first stall check')
  assert.equal(new URL(urls[0]).searchParams.get('since'), 'e-1')
  await sleep(20)
  assert.equal(client.state, 'open', 'nothing waiting (204): a quiet stream, not a stalled one')
  await waitFor(() => client.state === 'polling', 2000, 'the second check finds an event the stream did not deliver')
  assert.equal(instances[0].closed, true)
  assert.deepEqual(got.events, [['message', 'one', 'e-1'], ['message', 'two', 'e-2']])
  assert.deepEqual(got.states, ['open', 'polling'])
  client.close()

  // An attempt that never opens within stallTimeoutMs counts as failed.
  const b = scriptedEventSource()
  const held = new SseClient('http://example.test/events', { EventSource: b.FakeEventSource, logger: false, stallTimeoutMs: 30, minRetryMs: 1 })
  t.after(() => held.close())
  await waitFor(() => b.instances.length === 2, 2000, 'a new attempt after the held one')
  assert.equal(b.instances[0].closed, true)
})

test('position events move the cursor without reaching listeners; with them, silence is a stall', async (t) => {
  const { FakeEventSource, instances } = scriptedEventSource()
  const { fetch, urls } = scriptedFetch([{ status: 204 }])
  const client = new SseClient('http://example.test/events', {
    EventSource: FakeEventSource, fetch, poll: 'http://example.test/poll', logger: false, stallTimeoutMs: 80, minRetryMs: 1, pollIntervalMs: 1000, streamRetryMs: 5000
  })
  t.after(() => client.close())
  const got = record(client, ['message', 'sse-other'])
  instances[0].open()
  instances[0].emit('sse-position', '', 'e-7')
  assert.equal(client.lastEventId, 'e-7', 'the position is the cursor')
  assert.deepEqual(got.events, [], 'not dispatched')
  // Positions keep re-arming the timer: no stall while they come.
  for (let i = 8; i < 12; i++) {
    await sleep(30)
    instances[0].emit('sse-position', '', `e-${i}`)
  }
  assert.equal(client.state, 'open')
  assert.equal(urls.length, 0, 'no catch-up check needed')
  // Then silence: polling at once, from the position.
  await waitFor(() => client.state === 'polling', 2000, 'polling after silence')
  assert.equal(instances[0].closed, true)
  await waitFor(() => urls.length === 1, 2000, 'the first poll')
  assert.equal(new URL(urls[0]).searchParams.get('since'), 'e-11')
  client.close()

  // Without a poll URL, a stalled stream is reconnected from the position.
  const b = scriptedEventSource()
  const solo = new SseClient('http://example.test/events', { EventSource: b.FakeEventSource, logger: false, stallTimeoutMs: 50, minRetryMs: 1 })
  t.after(() => solo.close())
  b.instances[0].open()
  b.instances[0].emit('sse-position', '', 'e-3')
  await waitFor(() => b.instances.length === 2, 2000, 'a reconnect after the stall')
  assert.equal(new URL(b.instances[1].url).searchParams.get('lastEventId'), 'e-3')
  // positionEvent: false: the name is an ordinary event.
  const c = scriptedEventSource()
  const plain = new SseClient('http://example.test/events', { EventSource: c.FakeEventSource, logger: false, positionEvent: false })
  t.after(() => plain.close())
  const gotPlain = record(plain, ['sse-position'])
  c.instances[0].open()
  c.instances[0].emit('sse-position', '', 'e-1')
  assert.deepEqual(gotPlain.events, [['sse-position', '', 'e-1']])
})

/**
 * A Hub with history (epoch EPOCH) on node:http: /events?topics=a accepts a
 * stream (or answers app.streamStatus when set), /poll?topics=a is hub.poll().
 * app.streams lists each stream request's query cursor.
 */
async function startApp (t, history = {}) {
  const app = { streamStatus: 0, streams: [], polls: 0 }
  const fx = await startHub(t, {
    hub: { threads: 1, history: { epoch: EPOCH, ...history } },
    handler: (hub) => (req, res) => {
      const url = new URL(req.url, 'http://127.0.0.1')
      const topics = url.searchParams.get('topics').split(',')
      if (url.pathname === '/poll') {
        app.polls++
        hub.poll(req, res, { topics })
        return
      }
      app.streams.push(url.searchParams.get('lastEventId'))
      if (app.streamStatus) {
        res.statusCode = app.streamStatus
        res.end('bad gateway')
        return
      }
      app.conn = hub.accept(req, res, { topics })
    }
  })
  Object.assign(app, fx)
  app.client = (options = {}) => {
    const client = new SseClient(`${fx.url}/events?topics=a`, {
      EventSource, poll: `${fx.url}/poll?topics=a`, logger: process.env.CLIENT_LOG ? undefined : false, minRetryMs: 20, maxRetryMs: 200, ...options
    })
    t.after(() => client.close())
    return client
  }
  return app
}

test('end to end: live events, then a cut stream (hub.kick) resumes from the cursor without loss', async (t) => {
  const app = await startApp(t)
  const { hub } = app
  const client = app.client()
  const got = record(client)
  await waitFor(() => client.state === 'open' && hub.stats().connections === 1, 5000, 'open')
  const ids = [hub.publish('a', 'one'), hub.publish('a', 'two'), hub.publish('b', 'other topic')]
  await waitFor(() => got.events.length === 2, 5000, 'two events')
  hub.kick(app.conn.id)
  await waitFor(() => got.states.includes('reconnecting'), 5000, 'the cut seen')
  ids.push(hub.publish('a', 'while away'))
  await waitFor(() => client.state === 'open' && hub.stats().connections === 1, 5000, 'back')
  ids.push(hub.publish('a', 'after'))
  await waitFor(() => got.events.length === 4, 5000, 'four events')
  await sleep(50)
  assert.deepEqual(got.events, [
    ['message', 'one', ids[0]], ['message', 'two', ids[1]], ['message', 'while away', ids[3]], ['message', 'after', ids[4]]
  ])
  assert.deepEqual(app.streams, [null, ids[1]], 'the reconnect sent the cursor in the query')
  assert.deepEqual(got.states, ['open', 'reconnecting', 'open'])
  assert.equal(app.polls, 0)
})

test('end to end, positionEvent on: a stream cut before its first event resumes from its position, nothing lost', async (t) => {
  const app = await startApp(t, { positionEvent: true })
  const { hub } = app
  const before = hub.publish('a', 'before the client')
  const client = app.client()
  const got = record(client)
  await waitFor(() => client.lastEventId === before, 5000, 'the position at connect')
  assert.equal(client.state, 'open')
  hub.kick(app.conn.id)
  await waitFor(() => got.states.includes('reconnecting'), 5000, 'the cut seen')
  const away = hub.publish('a', 'while away')
  await waitFor(() => got.events.length === 1, 5000, 'the missed event')
  const after = hub.publish('a', 'after')
  await waitFor(() => got.events.length === 2, 5000, 'the live event')
  await sleep(50)
  assert.deepEqual(got.events, [['message', 'while away', away], ['message', 'after', after]])
  assert.deepEqual(app.streams, [null, before], 'the reconnect resumed from the position, not from the latest')
})

for (const longPoll of [false, true]) {
  test(`end to end: streams answered 502 -> ${longPoll ? 'long-polling' : 'polling'} -> open again, no gap or duplicate across both switches`, async (t) => {
    const app = await startApp(t)
    const { hub } = app
    const client = app.client({ pollIntervalMs: 100, streamRetryMs: 400, longPoll, pollWaitSeconds: 1 })
    const got = record(client, ['message', 'tick'])
    await waitFor(() => client.state === 'open', 5000, 'open')

    // Publishing every 5 ms throughout, a named event every fifth.
    const published = []
    const publishing = { on: true }
    const publisher = (async () => {
      for (let n = 0; publishing.on; n++) {
        const event = n % 5 === 0 ? 'tick' : undefined
        published.push([event || 'message', `n${n}`, hub.publish('a', `n${n}`, event ? { event } : {})])
        await sleep(5)
      }
    })()
    await sleep(100)
    app.streamStatus = 502
    hub.kick(app.conn.id)
    await waitFor(() => client.state === 'polling', 5000, 'polling')
    // The cut stream's end, then maxRetries (3) refused attempts (502), and
    // maybe a network error or two (undici's pooled socket found closed,
    // which never reaches the server): those do not count toward polling.
    const failures = got.errorMessages.slice()
    assert.equal(failures[0], 'stream: stream ended')
    assert.ok(failures.every((m) => m.startsWith('stream: ')), failures.join('; '))
    const refused = failures.filter((m) => /502/.test(m))
    assert.equal(refused.length, 3, `polling right after the third refused attempt: ${failures.join('; ')}`)
    assert.equal(refused.length, app.streams.length - 1, 'every attempt that reached the server got 502')
    await waitFor(() => app.polls >= 3, 5000, 'three polls')
    app.streamStatus = 0
    await waitFor(() => client.state === 'open', 5000, 'open again')
    await sleep(150)
    publishing.on = false
    await publisher
    await waitFor(() => got.events.length >= published.length, 5000, `all ${published.length} events`)
    await sleep(50)
    assert.deepEqual(got.events, published, 'every event once, in order')
    assert.deepEqual(got.states, ['open', 'reconnecting', 'polling', 'open'])
    assert.equal(got.resets.length, 0)
    assert.equal(client.lastEventId, published.at(-1)[2])
  })
}

test('end to end: a cursor the history cannot place gives `reset` (stream: epoch; poll: expired), then live events', async (t) => {
  const app = await startApp(t, { maxEvents: 5 })
  const { hub } = app
  const stream = app.client({ lastEventId: 'other-7' })
  const s = record(stream)
  await waitFor(() => s.resets.length === 1, 5000, 'the stream reset')
  assert.equal(s.resets[0].data.reason, 'epoch')
  assert.equal(s.resets[0].lastEventId, stream.lastEventId)
  const live = hub.publish('a', 'live')
  await waitFor(() => s.events.length === 1, 5000, 'a live event after the reset')
  assert.deepEqual(s.events, [['message', 'live', live]])

  for (let i = 0; i < 10; i++) hub.publish('a', `old ${i}`)
  app.streamStatus = 502
  const polled = app.client({ lastEventId: `${EPOCH}-1`, maxRetries: 1, pollIntervalMs: 50 })
  const p = record(polled)
  await waitFor(() => p.resets.length === 1, 5000, 'the poll reset')
  assert.equal(polled.state, 'polling')
  assert.equal(p.resets[0].data.reason, 'expired')
  assert.equal(p.resets[0].data.requested, `${EPOCH}-1`)
  assert.equal(p.resets[0].lastEventId, p.resets[0].data.latest)
  const next = hub.publish('a', 'next')
  await waitFor(() => p.events.length === 1, 5000, 'a polled event after the reset')
  assert.deepEqual(p.events, [['message', 'next', next]])
})

test('logger: [SSE] and an ISO timestamp by default; false is silent; an object replaces it', async (t) => {
  const lines = []
  const out = { info: (...a) => lines.push(['info', ...a]), warn: (...a) => lines.push(['warn', ...a]), error: (...a) => lines.push(['error', ...a]) }
  const log = consoleLogger(out)
  log.info('state connecting -> open')
  log.warn('x', 42)
  assert.match(lines[0][1], /^\[SSE\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z state connecting -> open$/)
  assert.deepEqual([lines[1][0], lines[1][2]], ['warn', 42])

  // The default goes to console.
  const { FakeEventSource, instances } = scriptedEventSource()
  const saved = { info: console.info, warn: console.warn }
  const seen = []
  console.info = (line) => seen.push(line)
  console.warn = (line) => seen.push(line)
  try {
    const loud = new SseClient('http://example.test/events', { EventSource: FakeEventSource, minRetryMs: 1 })
    instances[0].open()
    instances[0].error()
    loud.close()
    const quiet = new SseClient('http://example.test/events', { EventSource: FakeEventSource, logger: false })
    instances.at(-1).open()
    quiet.close()
  } finally {
    Object.assign(console, saved)
  }
  const iso = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z'
  assert.match(seen[0], new RegExp(`^\\[SSE\\] ${iso} state connecting -> open$`))
  assert.ok(seen.some((l) => new RegExp(`^\\[SSE\\] ${iso} reconnecting in \\d+ ms \\(attempt 1\\)`).test(l)), seen.join('\n'))
  assert.match(seen.at(-1), / state reconnecting -> closed$/, 'nothing from the silent client')

  const mine = []
  const custom = new SseClient('http://example.test/events', {
    EventSource: FakeEventSource, logger: { info: (m) => mine.push(m), warn: (m) => mine.push(m), error: (m) => mine.push(m) }
  })
  instances.at(-1).open()
  custom.close()
  assert.deepEqual(mine, ['state connecting -> open', 'state open -> closed'])
})

test('getSnapshot()/subscribe(): the state, a call per change, unsubscribe stops them', () => {
  const { FakeEventSource, instances } = scriptedEventSource()
  const client = new SseClient('http://example.test/events', { EventSource: FakeEventSource, logger: false })
  let calls = 0
  const snapshots = []
  const unsubscribe = client.subscribe(() => { calls++; snapshots.push(client.getSnapshot()) })
  assert.equal(client.getSnapshot(), 'connecting')
  instances[0].open()
  instances[0].emit('message', 'x', 'e-1')
  assert.equal(calls, 1, 'an event is not a state change')
  instances[0].error()
  assert.deepEqual(snapshots, ['open', 'reconnecting'])
  unsubscribe()
  client.close()
  assert.equal(calls, 2)
  assert.equal(client.getSnapshot(), 'closed')
})
