'use strict'
// A real EventSource in Chromium behind a TCP proxy the test controls: the
// proxy cuts its connection mid-stream and refuses new ones for a while; the
// browser reconnects by itself, sending Last-Event-ID. With history on the
// page ends up with every event published for it exactly once, in order
// (exact topics, a prefix/* pattern, private events only for their user); a
// cursor older than the history, or from a hub that restarted, gets the
// in-band `reset` event and then live events. With history off the browser
// still reconnects and goes live, and the gap is lost.
// Skipped (with the reason) only where chromium or playwright-core is missing.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { Hub } = require('../..')
const { startProxy } = require('../helpers/proxy')
const { BLANK_PAGE, browserMissing, launchChromium, closeBrowser, openPage, openEventSource } = require('../helpers/browser')
const { listenLoopback } = require('../helpers/listen')
const { cleanup, waitFor, sleep } = require('../helpers/wait')

const missing = browserMissing()
const RETRY_MS = 100
// Every wait below is bounded; the timeout also ends a test whose browser
// stopped answering (after() still closes it, bounded).
const OPTIONS = { skip: missing || false, timeout: 60000 }

let browser = null
if (!missing) {
  before(async () => { browser = await launchChromium() })
  after(() => closeBrowser(browser))
}

/**
 * A hub behind a node:http server (port 0) behind the proxy. The server
 * answers / with a blank page and /events?topics=a,b&user=u with
 * hub.accept(); it records each /events request's Last-Event-ID header.
 * replaceHub() stands for a restart: the server goes on with a new Hub.
 */
async function startApp (t, hubOptions) {
  const defer = cleanup(t)
  const hubs = []
  const app = { hub: null, streams: [], errors: [] } // streams: { path, lastEventId }
  app.replaceHub = (options = hubOptions) => {
    app.hub = new Hub({ threads: 1, ...options })
    hubs.push(app.hub)
    return app.hub
  }
  app.replaceHub()
  defer(() => Promise.all(hubs.map((hub) => hub.close())), 'hub.close()')
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost')
    if (url.pathname !== '/events') {
      res.setHeader('content-type', 'text/html; charset=utf-8')
      res.end(url.pathname === '/' ? BLANK_PAGE : '')
      return
    }
    const topics = url.searchParams.get('topics').split(',')
    const user = url.searchParams.get('user') || undefined
    app.streams.push({ path: req.url, lastEventId: req.headers['last-event-id'] })
    try {
      app.hub.accept(req, res, { topics, user, retry: RETRY_MS })
    } catch (err) {
      app.errors.push(err)
      res.statusCode = 500
      res.end(String(err.code))
    }
  })
  await listenLoopback(defer, server)
  app.proxy = await startProxy(server.address().port)
  defer(() => app.proxy.close(), 'proxy.close()')
  /** Opens an EventSource through the proxy; closed after the test. */
  app.open = async (path, options) => {
    const es = await openEventSource(browser, app.proxy.url, path, options)
    defer(() => es.close(), `close page ${path}`)
    return es
  }
  /** Opens a page through the proxy (for several EventSources); closed after the test. */
  app.openPage = async () => {
    const page = await openPage(browser, app.proxy.url)
    defer(() => page.close(), 'close page')
    return page
  }
  /** The Last-Event-ID header of every request for path, in order. */
  app.cursorsSent = (path) => app.streams.filter((s) => s.path === path).map((s) => s.lastEventId)
  return app
}

test('history off: the browser reconnects through the proxy and goes live; the gap is lost', OPTIONS, async (t) => {
  const { hub, proxy, errors, open, cursorsSent } = await startApp(t, {})
  const es = await open('/events?topics=a')
  await waitFor(() => hub.stats().connections === 1, 5000, 'the stream accepted')
  await es.waitUntil((s) => s.opens === 1, 5000, 'the first open')

  hub.publish('a', 'one', { id: 'app-1' })
  hub.publish('a', 'two', { id: 'app-2' })
  await es.waitForCount(2, 5000)

  assert.equal(proxy.cut({ refuseMs: 300 }) >= 1, true, 'the proxy cut the stream')
  await waitFor(() => hub.stats().connections === 0, 5000, 'the hub saw the cut')
  hub.publish('a', 'missed', { id: 'app-3' })
  await es.waitUntil((s) => s.opens === 2, 5000, 'the automatic reconnect')
  await waitFor(() => hub.stats().connections === 1, 5000, 'the second stream accepted')
  hub.publish('a', 'after', { id: 'app-4' })

  const state = await es.waitForCount(3, 5000)
  assert.deepEqual(state.events.map((e) => [e.data, e.lastEventId, e.conn]),
    [['one', 'app-1', 1], ['two', 'app-2', 1], ['after', 'app-4', 2]])
  assert.equal(proxy.refused >= 1, true, `the proxy refused an attempt (refused ${proxy.refused})`)
  assert.deepEqual(cursorsSent('/events?topics=a'), [undefined, 'app-2'], 'the browser sent its Last-Event-ID itself')
  assert.deepEqual(errors, [])
})

/** Whether a stream subscribed to topics (exact names and `prefix/*`) gets topic (null: a broadcast). */
function subscribed (topics, topic) {
  return topic === null || topics.some((s) => s === topic || (s.endsWith('/*') && topic.startsWith(s.slice(0, -1))))
}

/**
 * One round of publishes, every kind a page may or may not get: exact topics,
 * topics under a pattern and beside it, a named event, JSON and multi-line
 * data, private events for alice, for bob and for nobody here, and every
 * tenth round a broadcast. Appends { id, topic, users, type, data } to log
 * (data as EventSource delivers it).
 */
function publishRound (hub, n, log, gap) {
  const pub = (topic, data, options = {}) => {
    const id = hub.publish(topic, data, options)
    const text = typeof data === 'string' ? data : JSON.stringify(data)
    log.push({ id, topic, users: options.users, type: options.event || 'message', data: text, gap })
  }
  pub('a', `a ${n}`)
  pub('b', { n }, { event: 'tick' })
  pub('c', `c ${n}`)
  pub('room/1', `room/1 ${n}\nsecond line`)
  pub('room/a/b', `room/a/b ${n}`)
  pub('room', `room ${n}`)
  pub('a', `private alice ${n}`, { users: ['alice'] })
  pub('room/2', `private bob ${n}`, { users: ['carol', 'bob'] })
  pub('a', `private carol ${n}`, { users: ['carol'] })
  if (n % 10 === 0) {
    const id = hub.broadcast(`broadcast ${n}`)
    log.push({ id, topic: null, users: undefined, type: 'message', data: `broadcast ${n}`, gap })
  }
}

test('EventSource resumes across two cuts: every event once, in order (exact topics, prefix/*, private)', OPTIONS, async (t) => {
  const app = await startApp(t, { history: true })
  const { hub, proxy } = app
  const pages = [
    { name: 'alice', topics: ['a', 'b'], user: 'alice' },
    { name: 'bob', topics: ['room/*'], user: 'bob' },
    { name: 'anonymous', topics: ['a', 'room/1'] }
  ]
  // One page (one renderer process) holds the three EventSources.
  const browserPage = await app.openPage()
  for (const page of pages) {
    const q = new URLSearchParams({ topics: page.topics.join(',') })
    if (page.user) q.set('user', page.user)
    page.path = `/events?${q}`
    page.es = await browserPage.eventSource(page.path, { events: ['tick', 'reset'] })
  }
  await waitFor(() => hub.stats().connections === pages.length, 5000, 'every stream accepted')

  // 2 s of publishing every 5 ms; the proxy cuts every connection at 0.6 s
  // and 1.3 s and refuses new ones for 300 ms. A cut waits until every page
  // has been back for 200 ms, and publishing goes on 500 ms past the last
  // cut: a loaded machine stretches the loop (to 6 s at most).
  const log = []
  const cuts = [600, 1300]
  const startedAt = Date.now()
  let lastCutAt = 0
  let backSince = startedAt // every page connected (server side) since
  const busy = () => {
    const elapsed = Date.now() - startedAt
    return elapsed < 6000 && (elapsed < 2000 || cuts.length > 0 || Date.now() - lastCutAt < 500)
  }
  for (let n = 0; busy(); n++) {
    const back = app.streams.length === pages.length * (3 - cuts.length)
    if (!back) backSince = null
    else if (backSince === null) backSince = Date.now()
    if (cuts.length > 0 && Date.now() - startedAt >= cuts[0] && backSince !== null && Date.now() - backSince >= 200) {
      cuts.shift()
      lastCutAt = Date.now()
      backSince = null
      assert.equal(proxy.cut({ refuseMs: 300 }) >= pages.length, true, 'every stream cut')
    }
    publishRound(hub, n, log, proxy.refusing)
    await sleep(5)
  }
  assert.deepEqual(cuts, [], 'both cuts done (every page had reconnected in time)')
  const epoch = hub.options.history.epoch
  const seqOf = (id) => Number(id.slice(epoch.length + 1))
  assert.equal(typeof log[0].id, 'string', 'publish() returns the wire id')
  assert.equal(log[0].id.startsWith(`${epoch}-`), true, log[0].id)

  for (const page of pages) {
    const expected = log.filter((ev) => subscribed(page.topics, ev.topic) && (!ev.users || ev.users.includes(page.user)))
    // On a timeout, compare what arrived: the diff says what is missing.
    const state = await page.es.waitForCount(expected.length, 10000).catch(() => page.es.read())
    assert.deepEqual(state.events.map((e) => [e.type, e.data, e.lastEventId]),
      expected.map((ev) => [ev.type, ev.data, ev.id]), `${page.name}: every event once, in publish order`)
    assert.equal(expected.filter((ev) => ev.gap).length > 0, true, `${page.name}: events were published while it was cut off`)
    assert.equal(state.events.some((e) => e.data.includes('carol') || (e.data.startsWith('private') && !e.data.includes(page.user))), false,
      `${page.name}: no one else's private event`)

    // Two automatic reconnects, each resuming from the last id the page saw:
    // its last event on the connection before, or a later position (the
    // id-only frame after a replay, a heartbeat) that passed only events not
    // meant for this page.
    assert.equal(state.opens, 3, `${page.name}: opens`)
    const sent = app.cursorsSent(page.path)
    assert.equal(sent.length, 3, `${page.name}: three requests`)
    assert.equal(sent[0], undefined, `${page.name}: no cursor on the first request`)
    for (const conn of [1, 2]) {
      const last = seqOf(state.events.filter((e) => e.conn === conn).at(-1).lastEventId)
      const cursor = sent[conn]
      assert.match(cursor, new RegExp(`^${epoch}-[0-9]+$`), `${page.name}: Last-Event-ID sent by the browser`)
      const passed = expected.filter((ev) => seqOf(ev.id) > last && seqOf(ev.id) <= seqOf(cursor))
      assert.equal(seqOf(cursor) >= last && passed.length === 0, true,
        `${page.name}: reconnect ${conn} sent ${cursor} after its last event ${epoch}-${last}`)
    }
    assert.equal(state.events.filter((e) => e.conn === 3).length > 0, true, `${page.name}: events after the second reconnect`)
  }
  assert.equal(proxy.refused >= 1, true, `the proxy refused attempts (refused ${proxy.refused})`)
  const history = hub.stats().history
  assert.deepEqual(history.resets, { unknown: 0, epoch: 0, expired: 0, limit: 0 })
  assert.equal(history.replays >= 2 * pages.length, true, `replays ${history.replays}`)
  assert.deepEqual(app.errors, [])
})

test('EventSource with a cursor older than the history gets `reset`, then live events', OPTIONS, async (t) => {
  const app = await startApp(t, { history: { maxEvents: 20 } })
  const { hub, proxy } = app
  const path = '/events?topics=a'
  const es = await app.open(path, { events: ['reset'] })
  await waitFor(() => hub.stats().connections === 1, 5000, 'the stream accepted')
  const seen = []
  for (let n = 0; n < 5; n++) seen.push(hub.publish('a', `seen ${n}`))
  await es.waitForCount(5, 5000)

  // Cut off while 50 events pass: the page's cursor falls out of the 20 held.
  proxy.cut()
  proxy.refuse()
  await waitFor(() => hub.stats().connections === 0, 5000, 'the hub saw the cut')
  const missed = []
  for (let n = 0; n < 50; n++) missed.push(hub.publish('a', `missed ${n}`))
  await waitFor(() => proxy.refused >= 1, 5000, 'a reconnect attempt refused')
  proxy.admit()
  await waitFor(() => hub.stats().connections === 1, 5000, 'the automatic reconnect')
  const live = []
  for (let n = 0; n < 3; n++) live.push(hub.publish('a', `after ${n}`))

  const state = await es.waitForCount(5 + 1 + 3, 5000).catch(() => es.read())
  const epoch = hub.options.history.epoch
  const seqOf = (id) => Number(id.slice(epoch.length + 1))
  assert.deepEqual(state.events.map((e) => [e.type, e.type === 'reset' ? JSON.parse(e.data) : e.data, e.lastEventId, e.conn]), [
    ...seen.map((id, n) => ['message', `seen ${n}`, id, 1]),
    ['reset', { reason: 'expired', requested: seen[4], oldest: `${epoch}-${seqOf(missed[49]) - 19}`, latest: missed[49] }, missed[49], 2],
    ...live.map((id, n) => ['message', `after ${n}`, id, 2])
  ])
  assert.deepEqual(app.cursorsSent(path), [undefined, seen[4]], 'the browser resumed from its last event')
  assert.equal(hub.stats().history.resets.expired, 1)
  assert.deepEqual(app.errors, [])
})

test('EventSource resuming on a restarted hub (another epoch) gets `reset`, then live events', OPTIONS, async (t) => {
  const app = await startApp(t, { history: true })
  const { proxy } = app
  const path = '/events?topics=a'
  const es = await app.open(path, { events: ['reset'] })
  const old = app.hub
  await waitFor(() => old.stats().connections === 1, 5000, 'the stream accepted')
  const first = old.publish('a', 'first')
  await es.waitForCount(1, 5000)

  // A deploy: the connection drops, the server comes back with a new hub.
  proxy.refuse()
  proxy.cut()
  await old.close()
  const hub = app.replaceHub()
  assert.notEqual(hub.options.history.epoch, old.options.history.epoch)
  hub.publish('a', 'before the reconnect')
  await waitFor(() => proxy.refused >= 1, 5000, 'a reconnect attempt refused')
  proxy.admit()
  await waitFor(() => hub.stats().connections === 1, 5000, 'the automatic reconnect')
  const live = hub.publish('a', 'live')

  const state = await es.waitForCount(3, 5000).catch(() => es.read())
  const epoch = hub.options.history.epoch
  assert.deepEqual(state.events.map((e) => [e.type, e.type === 'reset' ? JSON.parse(e.data) : e.data, e.lastEventId]), [
    ['message', 'first', first],
    ['reset', { reason: 'epoch', requested: null, oldest: `${epoch}-1`, latest: `${epoch}-1` }, `${epoch}-1`],
    ['message', 'live', live]
  ])
  assert.deepEqual(app.cursorsSent(path), [undefined, first])
  assert.equal(hub.stats().history.resets.epoch, 1)
  assert.deepEqual(app.errors, [])
})
