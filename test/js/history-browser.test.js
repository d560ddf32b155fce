'use strict'
// A real EventSource in Chromium behind a TCP proxy the test controls: the
// proxy cuts its connection mid-stream and refuses new ones for a while; the
// browser reconnects by itself, sending Last-Event-ID, and the page must end
// up with every event published for it exactly once, in order.
// Skipped (with the reason) only where chromium or playwright-core is missing.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { Hub } = require('../..')
const { startProxy } = require('../helpers/proxy')
const { BLANK_PAGE, browserMissing, launchChromium, closeBrowser, openEventSource } = require('../helpers/browser')
const { cleanup, within, waitFor } = require('../helpers/wait')

const missing = browserMissing()
const RETRY_MS = 100

let browser = null
if (!missing) {
  before(async () => { browser = await launchChromium() })
  after(() => closeBrowser(browser))
}

/**
 * A hub behind a node:http server (port 0) behind the proxy. The server
 * answers / with a blank page and /events?topics=a,b&user=u with
 * hub.accept(); it records each /events request's Last-Event-ID header.
 */
async function startApp (t, hubOptions) {
  const defer = cleanup(t)
  const hub = new Hub({ threads: 1, ...hubOptions })
  defer(() => hub.close(), 'hub.close()')
  const streams = [] // { topics, user, lastEventId }
  const errors = []
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost')
    if (url.pathname !== '/events') {
      res.setHeader('content-type', 'text/html; charset=utf-8')
      res.end(url.pathname === '/' ? BLANK_PAGE : '')
      return
    }
    const topics = url.searchParams.get('topics').split(',')
    const user = url.searchParams.get('user') || undefined
    streams.push({ topics: topics.join(','), user, lastEventId: req.headers['last-event-id'] })
    try {
      hub.accept(req, res, { topics, user, retry: RETRY_MS })
    } catch (err) {
      errors.push(err)
      res.statusCode = 500
      res.end(String(err.code))
    }
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, resolve)
  })
  defer(() => within(new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }), 5000, 'server.close()'), 'server.close()')
  const proxy = await startProxy(server.address().port)
  defer(() => proxy.close(), 'proxy.close()')
  /** Opens an EventSource through the proxy; closed after the test. */
  const open = async (path, options) => {
    const es = await openEventSource(browser, proxy.url, path, options)
    defer(() => es.close(), `close page ${path}`)
    return es
  }
  return { hub, proxy, streams, errors, open, defer }
}

test('history off: the browser reconnects through the proxy and goes live; the gap is lost', { skip: missing || false }, async (t) => {
  const { hub, proxy, streams, errors, open } = await startApp(t, {})
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
  assert.deepEqual(streams.map((s) => s.lastEventId), [undefined, 'app-2'], 'the browser sent its Last-Event-ID itself')
  assert.deepEqual(errors, [])
})
