'use strict'
// sse-fanout/client in Chromium: pages import the module from the server
// (`/sse-fanout-client.js`) and run an SseClient on /events, with /poll as
// the catch-up; the server (test/helpers/client-server.js, a child process:
// a Hub with history and visible position events) sits behind a TCP proxy
// the test controls. Each test compares what a page received with the ids
// /publish returned: every event once, in publish order, no gap; a `reset`
// where the cursor cannot be placed, then every event after it.
//   - the server killed (SIGKILL) and restarted on its port: open ->
//     reconnecting -> open in two tabs, `reset` (a new epoch), no loss
//     before the kill or after the restart; cut connections with the
//     history there: no reset, no loss, no duplicate;
//   - streams answered 502, or held and never answered: `polling` after the
//     attempts (or the stall time), each event within a poll interval, back
//     to `open` when streams pass; an open stream that goes silent: polling;
//   - a proxy that answers 502 to (or holds) the catch-up too, a server out
//     of reach: `reconnecting`, never `polling`, and open again after it;
//   - `reset` for a cursor older than the history (offline too long, or an
//     old lastEventId given);
//   - offline/online (browserContext.setOffline);
//   - the console logger's `[SSE] <ISO time>` lines; logger: false is silent.
// Skipped (with the reason) only where chromium or playwright-core is missing.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startClientServer } = require('../helpers/client-server')
const { startProxy } = require('../helpers/proxy')
const { browserMissing, launchChromium, closeBrowser, openPage } = require('../helpers/browser')
const { cleanup, waitFor, sleep } = require('../helpers/wait')

const missing = browserMissing()
const OPTIONS = { skip: missing || false, timeout: 30000 }
const STREAM = '/events?topics=a'
const POLL = '/poll?topics=a'
const LOG_LINE = /^\[SSE\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z /
// How late past a poll interval an event may arrive while polling (a busy
// 2-core machine: the page's timers, the poll's round trip, the test's reads).
const POLL_SLACK_MS = 700

let browser = null
if (!missing) {
  before(async () => { browser = await launchChromium() })
  after(() => closeBrowser(browser))
}

/* global window, console */
// In the page: console.* recorded (then passed on), the module imported from
// the server, one SseClient whose events, states and errors are recorded.
async function pageStart ({ url, options }) {
  window.__console = []
  for (const level of ['log', 'info', 'warn', 'error', 'debug']) {
    const original = console[level].bind(console)
    console[level] = (...args) => {
      window.__console.push({ level, text: args.map(String).join(' ') })
      original(...args)
    }
  }
  const { SseClient } = await import('/sse-fanout-client.js')
  const rec = { events: [], states: [], errors: [] }
  const client = new SseClient(url, options)
  const record = (e) => rec.events.push({ type: e.type, data: e.data, id: e.lastEventId, state: client.state, at: Date.now() })
  client.addEventListener('message', record)
  client.addEventListener('reset', record)
  client.addEventListener('statechange', (e) => rec.states.push(e.state))
  client.addEventListener('error', (e) => rec.errors.push(e.detail.message))
  window.__client = client
  window.__rec = rec
}

function pageRead () {
  const rec = window.__rec
  return { ...rec, events: rec.events.slice(), states: rec.states.slice(), console: window.__console.slice(), state: window.__client.state, cursor: window.__client.lastEventId }
}

/**
 * Opens a tab (a browser context of its own) on origin/page.html running an
 * SseClient on STREAM with options.
 */
async function openTab (origin, options) {
  const tab = await openPage(browser, origin, { pagePath: '/page.html' })
  try {
    await tab.page.evaluate(pageStart, { url: STREAM, options })
  } catch (err) {
    await tab.close()
    throw err
  }
  const read = () => tab.page.evaluate(pageRead)
  const summary = (r) => r && JSON.stringify({ state: r.state, states: r.states, cursor: r.cursor, events: r.events.map((e) => e.type === 'reset' ? `reset:${e.data.reason}` : e.data), errors: r.errors })
  return {
    page: tab.page,
    close: tab.close,
    read,
    /** Resolves with the record once predicate(record) holds. */
    async until (predicate, timeoutMs, what) {
      let last = null
      return waitFor(async () => {
        last = await read()
        return predicate(last) && last
      }, timeoutMs, () => `${what} (${summary(last)})`)
    },
    /** Resolves once the event with id arrived; with it. */
    async arrived (id, timeoutMs) {
      const r = await this.until((r) => r.events.some((e) => e.id === id), timeoutMs, `event ${id}`)
      return r.events.find((e) => e.id === id)
    },
    setOffline: (offline) => tab.page.context().setOffline(offline)
  }
}

/** The server (a child process) behind a proxy; tabs on the proxy. Everything ends after the test. */
async function startApp (t, serverOptions = {}) {
  const defer = cleanup(t)
  const app = {}
  app.server = await startClientServer(serverOptions)
  defer(() => app.server.stop(), 'client-server stop')
  app.proxy = await startProxy(app.server.port)
  defer(() => app.proxy.close(), 'proxy.close()')
  /** Publishes data on topic a; resolves with { id, data, at }. */
  app.publish = async (data) => {
    const at = Date.now()
    return { id: await app.server.publish('a', data), data, at }
  }
  app.open = async (options) => {
    const tab = await openTab(app.proxy.url, options)
    defer(() => tab.close(), 'tab close')
    return tab
  }
  return app
}

/** [epoch, seq] of an id `<epoch>-<seq>`. */
function parseId (id) {
  const m = /^([A-Za-z0-9]+)-(\d+)$/.exec(id)
  assert.ok(m, `an id <epoch>-<seq>: ${id}`)
  return [m[1], Number(m[2])]
}

/**
 * A tab's events are exactly expected ([{ id, data }] as published, or
 * { reset: reason(s), latest? }): same order, nothing else; within an epoch
 * the ids strictly increase.
 */
function assertSequence (events, expected, what) {
  const got = events.map((e) => e.type === 'reset' ? ['reset', e.data.reason, e.id] : [e.type, e.data, e.id])
  const want = expected.map((x) => x.reset ? ['reset', got.find((g) => g[0] === 'reset')?.[1], x.latest] : ['message', x.data, x.id])
  assert.deepEqual(got, want, `${what}: the exact sequence`)
  for (const x of expected) {
    if (x.reset) {
      const reset = events.find((e) => e.type === 'reset')
      assert.ok([].concat(x.reset).includes(reset.data.reason), `${what}: reset reason ${reset.data.reason}`)
    }
  }
  for (let i = 1; i < events.length; i++) {
    const [e0, s0] = parseId(events[i - 1].id)
    const [e1, s1] = parseId(events[i].id)
    if (e0 === e1) assert.ok(s1 > s0, `${what}: ${events[i].id} after ${events[i - 1].id}`)
  }
}

/** Publishes n events named prefix 0..n-1, one after the other. */
async function publishMany (app, prefix, n) {
  const out = []
  for (let i = 0; i < n; i++) out.push(await app.publish(`${prefix} ${i}`))
  return out
}

test('server killed and restarted on its port: two tabs open -> reconnecting -> open, `reset` (new epoch), nothing lost', OPTIONS, async (t) => {
  const app = await startApp(t)
  // The default maxRetries (3): a server down and restarting gives network
  // errors, which never lead to polling however many there are.
  const options = { poll: POLL, minRetryMs: 100, maxRetryMs: 300 }
  const tabs = [await app.open(options), await app.open(options)]
  for (const tab of tabs) await tab.until((r) => r.state === 'open', 5000, 'open')
  const before = await publishMany(app, 'before', 5)
  for (const tab of tabs) await tab.arrived(before.at(-1).id, 5000)

  const old = app.server
  await old.kill()
  for (const tab of tabs) await tab.until((r) => r.state === 'reconnecting', 5000, 'reconnecting after the kill')
  app.server = await startClientServer({ port: old.port })
  // Published before the tabs are back: behind the reset, or after it.
  const early = await publishMany(app, 'early', 2)
  for (const tab of tabs) await tab.until((r) => r.state === 'open', 10000, 'open on the restarted server')
  const afterRestart = await publishMany(app, 'after', 5)
  const [oldEpoch] = parseId(before[0].id)
  const [newEpoch] = parseId(afterRestart[0].id)
  assert.notEqual(newEpoch, oldEpoch, 'the restarted server has a new epoch')

  for (const [n, tab] of tabs.entries()) {
    const r = await tab.until((r) => r.events.some((e) => e.id === afterRestart.at(-1).id), 5000, `tab ${n}: the last event`)
    const reset = r.events.find((e) => e.type === 'reset')
    assert.ok(reset, `tab ${n}: a reset`)
    assert.equal(reset.data.requested, null, `tab ${n}: requested`)
    assert.equal(reset.data.latest, reset.id, `tab ${n}: the reset's id is the latest position`)
    const [resetEpoch, resetSeq] = parseId(reset.id)
    assert.equal(resetEpoch, newEpoch, `tab ${n}: the reset is the new server's`)
    const published = [...early, ...afterRestart]
    assertSequence(r.events, [
      ...before,
      { reset: ['epoch', 'unknown'], latest: reset.id },
      ...published.filter((p) => parseId(p.id)[1] > resetSeq)
    ], `tab ${n}`)
    assert.ok(resetSeq < parseId(afterRestart[0].id)[1], `tab ${n}: back before the events after it were published`)
    assert.deepEqual(r.states, ['open', 'reconnecting', 'open'], `tab ${n}: states`)
  }
})

test('connections cut while publishing (history kept): every event once, in order, no reset', OPTIONS, async (t) => {
  const app = await startApp(t)
  const options = { poll: POLL, minRetryMs: 50, maxRetryMs: 200 }
  const tabs = [await app.open(options), await app.open(options)]
  for (const tab of tabs) await tab.until((r) => r.state === 'open', 5000, 'open')

  // Publishing every ~10 ms for 1.8 s (6 s at most on a loaded machine); a
  // cut at 300 ms and one more once both tabs are open again, 600 ms later
  // at least; publishing goes on 500 ms past the last cut.
  const published = []
  const cutAt = []
  const startedAt = Date.now()
  const allOpen = async () => (await Promise.all(tabs.map((tab) => tab.read()))).every((r) => r.state === 'open')
  for (let n = 0; Date.now() - startedAt < 6000; n++) {
    const now = Date.now()
    if (cutAt.length === 2 && now - startedAt >= 1800 && now - cutAt[1] >= 500) break
    if (cutAt.length < 2 && now - (cutAt.at(-1) || startedAt) >= (cutAt.length === 0 ? 300 : 600) && await allOpen()) {
      assert.ok(app.proxy.cut({ refuseMs: 200 }) >= 2, 'both streams cut')
      cutAt.push(Date.now())
    }
    const cutOff = app.proxy.refusing
    published.push({ ...await app.publish(`e ${n}`), cutOff })
    await sleep(10)
  }
  assert.equal(cutAt.length, 2, 'both cuts done (the tabs were back in time)')
  assert.ok(published.filter((p) => p.cutOff).length >= 2, 'events were published while the tabs were cut off')
  for (const [n, tab] of tabs.entries()) {
    const r = await tab.until((r) => r.events.some((e) => e.id === published.at(-1).id), 5000, `tab ${n}: the last event`)
    assertSequence(r.events, published, `tab ${n}`)
    assert.deepEqual(r.states, ['open', 'reconnecting', 'open', 'reconnecting', 'open'], `tab ${n}: states`)
  }
  assert.ok(app.proxy.refused >= 1, `reconnects were refused meanwhile (${app.proxy.refused})`)
})

/**
 * Publishes n events while the tab polls, one every gapMs; each must arrive
 * by a poll within pollIntervalMs (+ slack).
 */
async function publishWhilePolling (app, tab, n, pollIntervalMs, gapMs = 250) {
  const out = []
  for (let i = 0; i < n; i++) {
    const p = await app.publish(`polled ${i}`)
    const e = await tab.arrived(p.id, pollIntervalMs + 3000)
    assert.equal(e.state, 'polling', `${p.id} came by a poll`)
    assert.ok(e.at - p.at <= pollIntervalMs + POLL_SLACK_MS, `${p.id} arrived ${e.at - p.at} ms after its publish (poll interval ${pollIntervalMs} ms)`)
    out.push(p)
    await sleep(gapMs)
  }
  return out
}

test('proxy answers 502 to streams: polling after maxRetries, every event within a poll interval, open again when streams pass', OPTIONS, async (t) => {
  const app = await startApp(t)
  const pollIntervalMs = 500
  const streamRetryMs = 1500
  const tab = await app.open({ poll: POLL, maxRetries: 3, minRetryMs: 100, maxRetryMs: 200, pollIntervalMs, streamRetryMs })
  await tab.until((r) => r.state === 'open', 5000, 'open')
  const first = await publishMany(app, 'streamed', 3)
  await tab.arrived(first.at(-1).id, 5000)

  app.proxy.setMode('502', { path: '/events' }) // polls pass
  app.proxy.cut()
  await tab.until((r) => r.state === 'polling', 5000, 'polling after 3 failed attempts')
  assert.equal(app.proxy.answered502, 3, 'polling after the third 502')
  const polled = await publishWhilePolling(app, tab, 4, pollIntervalMs)
  assert.ok(app.proxy.answered502 > 3, `the stream was tried again while polling (502s: ${app.proxy.answered502})`)

  app.proxy.setMode('pass')
  await tab.until((r) => r.state === 'open', streamRetryMs + 3000, 'open again once streams pass')
  const last = await publishMany(app, 'streamed again', 3)
  const r = await tab.until((r) => r.events.some((e) => e.id === last.at(-1).id), 5000, 'the last event')
  assertSequence(r.events, [...first, ...polled, ...last], 'tab')
  assert.ok(r.events.filter((e) => last.some((p) => p.id === e.id)).every((e) => e.state === 'open'), 'the last events came by the stream')
  assert.deepEqual(r.states, ['open', 'reconnecting', 'polling', 'open'])
})

test('proxy holds streams (never a byte): polling after the stall time, every event within a poll interval, open again when released', OPTIONS, async (t) => {
  // Positions (heartbeats) well within the stall time: an open stream is never taken for a stalled one.
  const app = await startApp(t, { heartbeatMs: 300 })
  const pollIntervalMs = 500
  const streamRetryMs = 1500
  const stallTimeoutMs = 1000
  const tab = await app.open({ poll: POLL, maxRetries: 3, minRetryMs: 100, maxRetryMs: 200, stallTimeoutMs, pollIntervalMs, streamRetryMs })
  await tab.until((r) => r.state === 'open', 5000, 'open')
  const first = await publishMany(app, 'streamed', 2)
  await tab.arrived(first.at(-1).id, 5000)

  app.proxy.setMode('hold', { path: '/events' })
  app.proxy.cut()
  const cutAt = Date.now()
  await tab.until((r) => r.state === 'polling', 3 * stallTimeoutMs + 3000, 'polling after 3 held attempts')
  const heldFor = Date.now() - cutAt
  assert.equal(app.proxy.held, 3, 'polling after the third held attempt')
  assert.ok(heldFor >= 3 * stallTimeoutMs, `each held attempt waited stallTimeoutMs (${heldFor} ms for 3)`)
  const polled = await publishWhilePolling(app, tab, 4, pollIntervalMs)
  assert.ok(app.proxy.held > 3, `the stream was tried again while polling (held: ${app.proxy.held})`)

  app.proxy.setMode('pass')
  await tab.until((r) => r.state === 'open', streamRetryMs + 3000, 'open again once released')
  const last = await publishMany(app, 'streamed again', 2)
  const r = await tab.until((r) => r.events.some((e) => e.id === last.at(-1).id), 5000, 'the last event')
  assertSequence(r.events, [...first, ...polled, ...last], 'tab')
  assert.deepEqual(r.states, ['open', 'reconnecting', 'polling', 'open'])
})

test('proxy answers 502 to every request, polls too (the server out of reach): reconnecting, never polling; open again, nothing lost', OPTIONS, async (t) => {
  const app = await startApp(t)
  const tab = await app.open({ poll: POLL, maxRetries: 3, minRetryMs: 100, maxRetryMs: 200, pollIntervalMs: 500, streamRetryMs: 1500 })
  await tab.until((r) => r.state === 'open', 5000, 'open')
  const first = await publishMany(app, 'streamed', 2)
  await tab.arrived(first.at(-1).id, 5000)

  app.proxy.setMode('502')
  app.proxy.cut()
  // 3 streams, then the catch-up, answered 502: streams again, and so on.
  await waitFor(() => app.proxy.answered502 >= 9, 10000, () => `502s (${app.proxy.answered502})`)
  const missed = await publishMany(app, 'missed', 3)
  let r = await tab.read()
  assert.deepEqual(r.states, ['open', 'reconnecting'], 'reconnecting, never polling')
  assert.ok(r.errors.some((m) => m.includes('502')), `a failed poll reported: ${JSON.stringify(r.errors)}`)

  // Back: a stream attempt opens, or (when the catch-up is what is tried
  // first) polling until the next probe opens one.
  app.proxy.setMode('pass')
  await tab.until((r) => r.state === 'open', 1500 + 3000, 'open once the proxy passes')
  const last = await publishMany(app, 'streamed again', 2)
  r = await tab.until((r) => r.events.some((e) => e.id === last.at(-1).id), 5000, 'the last event')
  assertSequence(r.events, [...first, ...missed, ...last], 'tab')
  assert.ok(['open,reconnecting,open', 'open,reconnecting,polling,open'].includes(r.states.join()), `states ${r.states}`)
})

test('proxy holds every request, polls too: the client keeps trying and is open again once the proxy passes, nothing lost', OPTIONS, async (t) => {
  const app = await startApp(t, { heartbeatMs: 300 })
  const stallTimeoutMs = 1000
  const tab = await app.open({ poll: POLL, maxRetries: 3, minRetryMs: 100, maxRetryMs: 200, stallTimeoutMs, pollIntervalMs: 500, streamRetryMs: 1500 })
  await tab.until((r) => r.state === 'open', 5000, 'open')
  const first = await publishMany(app, 'streamed', 2)
  await tab.arrived(first.at(-1).id, 5000)

  app.proxy.setMode('hold')
  app.proxy.cut()
  // 3 streams, then the catch-up, held.
  await waitFor(() => app.proxy.held >= 4, 3 * stallTimeoutMs + 3000, () => `held (${app.proxy.held})`)
  const missed = await publishMany(app, 'missed', 3)
  assert.deepEqual((await tab.read()).states, ['open', 'reconnecting'], 'reconnecting, never polling')

  app.proxy.setMode('pass')
  // A held catch-up read is given up after some time (the stall time, say), then streams are tried again.
  await tab.until((r) => r.state === 'open', 2 * stallTimeoutMs + 1500 + 3000, 'open once the proxy passes')
  const last = await publishMany(app, 'streamed again', 2)
  const r = await tab.until((r) => r.events.some((e) => e.id === last.at(-1).id), 5000, 'the last event')
  assertSequence(r.events, [...first, ...missed, ...last], 'tab')
  assert.ok(['open,reconnecting,open', 'open,reconnecting,polling,open'].includes(r.states.join()), `states ${r.states}`)
})

test('an open stream that goes silent (position heartbeats stop): polling, no loss; a quiet stream with heartbeats stays open', OPTIONS, async (t) => {
  const heartbeatMs = 500
  const app = await startApp(t, { heartbeatMs })
  const pollIntervalMs = 500
  const stallTimeoutMs = 1500
  const tab = await app.open({ poll: POLL, maxRetries: 3, minRetryMs: 100, maxRetryMs: 200, stallTimeoutMs, pollIntervalMs, streamRetryMs: 1500 })
  await tab.until((r) => r.state === 'open', 5000, 'open')
  const first = await publishMany(app, 'streamed', 2)
  await tab.arrived(first.at(-1).id, 5000)
  // Quiet but alive: heartbeats every 500 ms, nothing published, for longer than the stall time.
  await sleep(stallTimeoutMs + 700)
  assert.deepEqual((await tab.read()).states, ['open'], 'a quiet stream with heartbeats is no stall')

  assert.equal(app.proxy.silence({ path: '/events' }), 1, 'the stream silenced')
  const silencedAt = Date.now()
  const during = await publishMany(app, 'while silent', 2)
  await tab.until((r) => r.state === 'polling', stallTimeoutMs + 3000, 'polling after the stall')
  // The last position came at most a heartbeat before the silence.
  assert.ok(Date.now() - silencedAt >= stallTimeoutMs - heartbeatMs, `not before the stall time (${Date.now() - silencedAt} ms)`)
  for (const p of during) {
    const e = await tab.arrived(p.id, stallTimeoutMs + pollIntervalMs + 3000)
    assert.ok(e.at - silencedAt <= stallTimeoutMs + pollIntervalMs + POLL_SLACK_MS, `${p.id} arrived ${e.at - silencedAt} ms after the silence`)
  }
  const polled = await publishWhilePolling(app, tab, 2, pollIntervalMs)
  // The next probe is a new connection: the proxy passes it.
  await tab.until((r) => r.state === 'open', 1500 + 3000, 'open again on a new stream')
  const last = await publishMany(app, 'streamed again', 2)
  const r = await tab.until((r) => r.events.some((e) => e.id === last.at(-1).id), 5000, 'the last event')
  assertSequence(r.events, [...first, ...during, ...polled, ...last], 'tab')
  assert.deepEqual(r.states, ['open', 'polling', 'open'])
})

test('`reset` for a cursor older than the history (offline too long; an old lastEventId), then the newer events', OPTIONS, async (t) => {
  const maxEvents = 10
  const app = await startApp(t, { maxEvents })
  const options = { poll: POLL, minRetryMs: 100, maxRetryMs: 200 }
  const tab = await app.open(options)
  await tab.until((r) => r.state === 'open', 5000, 'open')
  const seen = await publishMany(app, 'seen', 3)
  await tab.arrived(seen.at(-1).id, 5000)

  await tab.setOffline(true)
  await tab.until((r) => r.state === 'reconnecting', 5000, 'reconnecting when offline')
  const missed = await publishMany(app, 'missed', 2 * maxEvents)
  // A second tab starting from the first event's id: long out of the history.
  const old = await app.open({ ...options, lastEventId: seen[0].id })
  await tab.setOffline(false)
  for (const t of [tab, old]) await t.until((r) => r.state === 'open', 5000, 'open')
  const live = await publishMany(app, 'live', 3)

  const oldest = missed[missed.length - maxEvents].id
  const latest = missed.at(-1).id
  for (const [name, t, requested, before] of [['offline tab', tab, seen.at(-1).id, seen], ['old cursor tab', old, seen[0].id, []]]) {
    const r = await t.until((r) => r.events.some((e) => e.id === live.at(-1).id), 5000, `${name}: the last event`)
    assertSequence(r.events, [...before, { reset: 'expired', latest }, ...live], name)
    const reset = r.events.find((e) => e.type === 'reset')
    assert.deepEqual(reset.data, { reason: 'expired', requested, oldest, latest }, `${name}: the reset's data`)
    assert.equal(r.cursor, live.at(-1).id, `${name}: the cursor`)
    assert.deepEqual(r.states, t === tab ? ['open', 'reconnecting', 'open'] : ['open'], `${name}: states`)
  }
})

test('offline/online: reconnecting while offline (logged), the missed events once online, none twice', OPTIONS, async (t) => {
  const app = await startApp(t)
  const tab = await app.open({ poll: POLL, minRetryMs: 100, maxRetryMs: 200 })
  await tab.until((r) => r.state === 'open', 5000, 'open')
  const first = await publishMany(app, 'online', 3)
  await tab.arrived(first.at(-1).id, 5000)

  await tab.setOffline(true)
  let r = await tab.until((r) => r.state === 'reconnecting', 5000, 'reconnecting when offline')
  assert.ok(r.console.some((l) => l.level === 'warn' && LOG_LINE.test(l.text) && l.text.includes('offline')), 'the offline line logged')
  const missed = await publishMany(app, 'missed', 4)
  await sleep(500)
  r = await tab.read()
  assert.equal(r.state, 'reconnecting', 'still reconnecting while offline')
  assert.equal(r.events.length, first.length, 'nothing while offline')

  await tab.setOffline(false)
  await tab.until((r) => r.state === 'open', 5000, 'open once online')
  const last = await publishMany(app, 'back', 2)
  r = await tab.until((r) => r.events.some((e) => e.id === last.at(-1).id), 5000, 'the last event')
  assertSequence(r.events, [...first, ...missed, ...last], 'tab')
  assert.deepEqual(r.states, ['open', 'reconnecting', 'open'])
})

test('logger: `[SSE] <ISO time>` console lines for state changes and reconnects; logger: false prints nothing', OPTIONS, async (t) => {
  const app = await startApp(t)
  const startedAt = Date.now()
  const options = { minRetryMs: 100, maxRetryMs: 200 }
  const logging = await app.open(options)
  const silent = await app.open({ ...options, logger: false })
  for (const tab of [logging, silent]) await tab.until((r) => r.state === 'open', 5000, 'open')
  assert.equal(app.proxy.cut({ refuseMs: 300 }), 2, 'both streams cut')
  for (const tab of [logging, silent]) {
    await tab.until((r) => r.states.join() === 'open,reconnecting,open', 5000, 'open -> reconnecting -> open')
  }
  const endedAt = Date.now()

  const lines = (await logging.read()).console
  for (const line of lines) {
    assert.match(line.text, LOG_LINE, `a logger line: ${line.text}`)
    const at = Date.parse(line.text.slice(6, 30))
    assert.ok(at >= startedAt - 1000 && at <= endedAt + 1000, `its time is now: ${line.text}`)
  }
  const texts = lines.map((l) => `${l.level} ${l.text.slice(31)}`)
  for (const wanted of [/^info state connecting -> open$/, /^info state open -> reconnecting$/, /^info reconnecting in \d+ ms \(attempt 1\)/, /^info state reconnecting -> open$/]) {
    assert.ok(texts.some((x) => wanted.test(x)), `a line ${wanted} in ${JSON.stringify(texts)}`)
  }
  assert.deepEqual((await silent.read()).console, [], 'logger: false logs nothing')
})
