'use strict'
// A real EventSource in Debian's Chromium (playwright-core) on a compressed
// stream (issue 16), gzip and deflate: Chromium asks for gzip, deflate, br,
// zstd; the server answers gzip, or deflate when the page asks for it with
// ?coding=deflate (the request's Accept-Encoding is rewritten before
// hub.accept, so the hub negotiates deflate). The page gets every event live,
// one by one (each dispatched before the next is published), then through a
// cut by a TCP proxy: the browser reconnects with Last-Event-ID and the
// history replays what it missed, compressed, then live events again.
// Skipped (with the reason) only where chromium or playwright-core is missing.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { Hub } = require('../..')
const { startProxy } = require('../helpers/proxy')
const { BLANK_PAGE, browserMissing, launchChromium, closeBrowser, openPage } = require('../helpers/browser')
const { listenLoopback } = require('../helpers/listen')
const { cleanup, waitFor } = require('../helpers/wait')

const missing = browserMissing()
const RETRY_MS = 100
const OPTIONS = { skip: missing || false, timeout: 60000 }

let browser = null
if (!missing) {
  before(async () => { browser = await launchChromium() })
  after(() => closeBrowser(browser))
}

/**
 * A hub with compression and history behind a node:http server behind the
 * proxy: / is a blank page, /events?topics=a,b[&coding=deflate] a stream.
 * Each /events request is recorded: { acceptEncoding (as the browser sent
 * it), lastEventId }.
 */
async function startApp (t) {
  const defer = cleanup(t)
  const hub = new Hub({ threads: 1, history: true, compression: true, heartbeatMs: 0 })
  defer(() => hub.close(), 'hub.close()')
  const app = { hub, requests: [], errors: [] }
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost')
    if (url.pathname !== '/events') {
      res.setHeader('content-type', 'text/html; charset=utf-8')
      res.end(url.pathname === '/' ? BLANK_PAGE : '')
      return
    }
    app.requests.push({ acceptEncoding: req.headers['accept-encoding'], lastEventId: req.headers['last-event-id'] })
    if (url.searchParams.has('coding')) req.headers['accept-encoding'] = url.searchParams.get('coding')
    try {
      hub.accept(req, res, { topics: url.searchParams.get('topics').split(','), retry: RETRY_MS })
    } catch (err) {
      app.errors.push(err)
      res.statusCode = 500
      res.end(String(err.code))
    }
  })
  await listenLoopback(defer, server)
  app.proxy = await startProxy(server.address().port)
  defer(() => app.proxy.close(), 'proxy.close()')
  app.open = async (path) => {
    const page = await openPage(browser, app.proxy.url)
    defer(() => page.close(), `close page ${path}`)
    // The stream's response headers, as the browser got them.
    const responses = []
    page.page.on('response', (r) => { if (r.url().includes('/events')) responses.push(r.headers()) })
    const es = await page.eventSource(path, { events: ['update'] })
    return { ...es, responses }
  }
  return app
}

/** JSON of about `size` bytes. */
function jsonOf (size, k) {
  const items = []
  for (let i = 0; JSON.stringify(items).length < size - 60; i++) items.push({ sku: `SKU-${k}-${i}`, qty: i % 5, price: 9.99 + i })
  return JSON.stringify({ seq: k, items })
}

for (const coding of ['gzip', 'deflate']) {
  test(`[${coding}] EventSource gets every event of a ${coding} stream live, one by one, and again after a reconnect`, OPTIONS, async (t) => {
    const app = await startApp(t)
    const { hub, proxy } = app
    const path = coding === 'gzip' ? '/events?topics=a,b' : '/events?topics=a,b&coding=deflate'
    const es = await app.open(path)
    await waitFor(() => hub.stats().connections === 1, 5000, 'the stream accepted')
    await es.waitUntil((s) => s.opens === 1, 5000, 'the first open')
    assert.equal(hub.stats().compression.connections, 1, 'a compressed stream')
    assert.match(app.requests[0].acceptEncoding, /\bgzip\b/, 'Chromium offers gzip')

    const log = [] // [type, data, id]
    let n = 0
    const publish = (topic, data, options = {}) => {
      const id = hub.publish(topic, data, options)
      log.push([options.event || 'message', data, id])
      return id
    }
    // One by one: each is dispatched by the page before the next publish.
    const live = async (count) => {
      for (let k = 0; k < count; k++, n++) {
        const kind = n % 4
        if (kind === 0) publish('a', jsonOf(1024, n))
        else if (kind === 1) publish('b', jsonOf(256, n), { event: 'update' })
        else if (kind === 2) publish('a', `tiny ${n}`)
        else publish('b', `{"secret":"${n}-${'z'.repeat(300)}"}`, { compress: false })
        await es.waitForCount(log.length, 5000, `event ${log.length} dispatched before the next publish`)
      }
    }
    await live(8)
    publish('a', jsonOf(150 * 1024, 'big'))
    await es.waitForCount(log.length, 5000)

    // Cut: events published meanwhile come back from the history on reconnect.
    assert.equal(proxy.cut({ refuseMs: 300 }) >= 1, true, 'the proxy cut the stream')
    await waitFor(() => hub.stats().connections === 0, 5000, 'the hub saw the cut')
    const lastSeen = log.at(-1)[2]
    for (let k = 0; k < 3; k++) publish('a', jsonOf(512, `missed ${k}`))
    await es.waitUntil((s) => s.opens === 2, 10000, 'the automatic reconnect')
    await waitFor(() => hub.stats().connections === 1, 5000, 'the second stream accepted')
    assert.equal(hub.stats().compression.connections, 1, 'compressed again')
    await es.waitForCount(log.length, 5000, 'the missed events, replayed')
    await live(6)

    const state = await es.read()
    assert.deepEqual(state.events.map((e) => [e.type, e.data, e.lastEventId]), log, 'every event once, in order, intact')
    assert.equal(state.events.filter((e) => e.conn === 2).length, 9)
    assert.deepEqual(app.requests.map((r) => r.lastEventId), [undefined, lastSeen], 'the browser resumed from its last event')
    assert.deepEqual(es.responses.map((h) => [h['content-encoding'], h.vary?.toLowerCase()]), [[coding, 'accept-encoding'], [coding, 'accept-encoding']],
      'both responses were compressed')
    // The errors are the cut's and the refused attempts', each followed by a
    // reconnect (a body that fails to decode would be one more).
    assert.equal(state.errors, 1 + proxy.refused, `errors: the cut and ${proxy.refused} refused attempts`)
    assert.deepEqual(state.errorStates, state.errorStates.map(() => 0), 'every error left the EventSource reconnecting')
    assert.deepEqual(app.errors, [])
  })
}
