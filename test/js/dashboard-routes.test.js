'use strict'
// The demo's dashboard routes, over real HTTP, with examples/demo-server.js
// in a child process (PORT=0, no PUBLISH_TOKEN), no browser: `/` is the page with a strict CSP
// and no inline script, the dashboard's own files are served with their
// types, anything else is 404, and `/dashboard/stats` is an SSE stream of
// `stats` samples of the main hub (the fields of the contract, a new stream
// first gets the recent ones, publishes and disconnects by reason move).

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const path = require('node:path')
const { startExample } = require('../helpers/pb-example')
const { SseParser } = require('../helpers/sse-parser')
const { waitFor, within } = require('../helpers/wait')

const DASHBOARD = path.join(__dirname, '..', '..', 'examples', 'dashboard')
const OPTIONS = { timeout: 30000 }

// One demo for the file; startExample() registers its kill with after().
const stops = []
let demo = null
before(async () => {
  demo = await startExample({ after: (fn) => stops.push(fn) }, 'examples/demo-server.js', { PUBLISH_TOKEN: '' })
})
after(() => Promise.all(stops.map((stop) => stop())))

async function get (urlPath, options = {}) {
  const res = await fetch(demo.url + urlPath, { ...options, signal: AbortSignal.timeout(5000) })
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) }
}

/**
 * An SSE stream of the demo read with http.get (no pooling): events as an
 * EventSource would dispatch them; close() ends it.
 */
async function openStream (urlPath) {
  const stream = { events: [], res: null }
  const parser = new SseParser((ev) => stream.events.push(ev))
  const req = http.get(demo.url + urlPath, { agent: false })
  stream.res = await within(new Promise((resolve, reject) => {
    req.once('response', resolve)
    req.once('error', reject)
  }), 5000, `the answer to GET ${urlPath}`)
  stream.res.on('data', (chunk) => parser.push(chunk))
  stream.res.on('error', () => {})
  stream.close = () => req.destroy()
  /** The `stats` samples received, parsed. */
  stream.samples = () => stream.events.filter((ev) => ev.event === 'stats').map((ev) => JSON.parse(ev.data))
  return stream
}

/** Resolves with the first sample that arrives after now and satisfies predicate. */
async function nextSample (stats, predicate, what, timeoutMs = 8000) {
  const from = stats.samples().length
  return waitFor(() => stats.samples().slice(from).find(predicate), timeoutMs, what)
}

const SECURITY_HEADERS = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff'
}

function assertFileAnswer (res, file, type, what) {
  assert.equal(res.status, 200, what)
  assert.equal(res.headers.get('content-type'), type, what)
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) assert.equal(res.headers.get(name), value, `${what}: ${name}`)
  assert.ok(res.body.equals(fs.readFileSync(path.join(DASHBOARD, file))), `${what}: the bytes of examples/dashboard/${file}`)
}

test('GET / is the dashboard page: HTML, a strict CSP, no inline script, the contract ids', OPTIONS, async () => {
  const res = await get('/')
  assertFileAnswer(res, 'index.html', 'text/html; charset=utf-8', 'GET /')
  const csp = res.headers.get('content-security-policy')
  assert.ok(csp, 'a Content-Security-Policy header')
  const directives = new Map(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]))
  assert.deepEqual(directives.get('default-src'), ["'none'"], csp)
  assert.deepEqual(directives.get('script-src'), ["'self'"], csp)
  assert.deepEqual(directives.get('connect-src'), ["'self'"], csp)
  assert.equal(/unsafe-inline|unsafe-eval|\*/.test(csp), false, `nothing unsafe in ${csp}`)

  const html = res.body.toString()
  const scripts = [...html.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)]
  assert.equal(scripts.length, 1, 'one script')
  assert.match(scripts[0][1], /type="module"/)
  assert.match(scripts[0][1], /src="\/dashboard\/dashboard\.js"/)
  assert.equal(scripts[0][2].trim(), '', 'no inline script')
  assert.equal(/\son[a-z]+=/i.test(html), false, 'no inline event handler')
  assert.equal(/\sstyle=/i.test(html), false, 'no inline style (style-src self)')
  const ids = ['state', 'cursor', 'publish', 'publish-topic', 'publish-event', 'publish-data', 'publish-result', 'events', 'log',
    'now-connections', 'now-publishes', 'now-deliveries', 'now-queue', 'now-disconnects',
    'chart-connections', 'chart-publishes', 'chart-deliveries', 'chart-queue', 'chart-disconnects']
  for (const id of ids) assert.equal(html.split(`id="${id}"`).length, 2, `exactly one #${id}`)
  for (const id of ids.filter((id) => id.startsWith('chart-'))) assert.match(html, new RegExp(`<canvas id="${id}"`))
  assert.match(html, /<input id="publish-topic"[^>]* value="demo"/, '#publish-topic defaults to demo')
  assert.match(html, /<form id="publish"/)
  assert.match(html, /id="state"[^>]*aria-live="polite"/, '#state is a live region')
})

test('the dashboard\'s files: module and stylesheet with their types; HEAD; anything else 404', OPTIONS, async () => {
  const js = await get('/dashboard/dashboard.js')
  assertFileAnswer(js, 'dashboard.js', 'text/javascript; charset=utf-8', 'dashboard.js')
  assert.match(js.body.toString(), /^import \{ SseClient[^}]*\} from '\/sse-fanout-client\.js'$/m)
  assert.equal(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/.test(js.body.toString()), false, 'no HTML from strings')
  assertFileAnswer(await get('/dashboard/dashboard.css'), 'dashboard.css', 'text/css; charset=utf-8', 'dashboard.css')

  const head = await get('/', { method: 'HEAD' })
  assert.equal(head.status, 200)
  assert.equal(head.body.length, 0, 'HEAD has no body')
  assert.equal(head.headers.get('content-length'), String(fs.statSync(path.join(DASHBOARD, 'index.html')).size))

  const client = await get('/sse-fanout-client.js')
  assert.equal(client.status, 200, 'the module is still served')
  assert.match(client.body.toString(), /export class SseClient\b/)

  for (const p of ['/index.html', '/dashboard/', '/dashboard/index.html', '/dashboard/nope.js', '/dashboard.js', '/dashboard/%2e%2e/demo-server.js', '/favicon.ico']) {
    const res = await get(p)
    assert.equal(res.status, 404, `GET ${p}`)
    assert.equal(res.headers.get('content-type'), 'application/json', `GET ${p}`)
  }
  for (const p of ['/', '/dashboard/dashboard.js']) {
    assert.equal((await get(p, { method: 'POST', body: 'x' })).status, 404, `POST ${p}`)
  }
})

test('GET /dashboard/stats: a `stats` sample of the main hub every second, the fields of the contract', OPTIONS, async (t) => {
  const stats = await openStream('/dashboard/stats')
  t.after(() => stats.close())
  assert.equal(stats.res.statusCode, 200)
  assert.match(stats.res.headers['content-type'], /^text\/event-stream/)
  const first = await nextSample(stats, () => true, 'a first live sample')
  const second = await nextSample(stats, (s) => s.t > first.t, 'a second live sample')
  assert.equal(second.t - first.t >= 500 && second.t - first.t <= 3000, true, `about a second apart: ${second.t - first.t} ms`)
  assert.deepEqual(Object.keys(second).sort(), ['bytesWritten', 'connections', 'delivered', 'disconnects', 'heapUsed', 'heartbeats',
    'history', 'published', 'queueBytes', 'rss', 'slow', 'subscriptions', 't'])
  for (const name of ['t', 'connections', 'subscriptions', 'published', 'delivered', 'bytesWritten', 'queueBytes', 'slow', 'heartbeats', 'rss', 'heapUsed']) {
    assert.equal(Number.isSafeInteger(second[name]) && second[name] >= 0, true, `${name}: ${second[name]}`)
  }
  assert.equal(Math.abs(second.t - Date.now()) < 5000, true, 't is the time of the sample (ms)')
  assert.equal(second.rss > 0 && second.heapUsed > 0, true)
  assert.deepEqual(Object.keys(second.history).sort(), ['bytes', 'events', 'latest'])
  assert.match(second.history.latest, /^[A-Za-z0-9_-]+-[0-9]+$/)
  for (const [reason, count] of Object.entries(second.disconnects)) {
    assert.equal(Number.isSafeInteger(count) && count >= 0, true, `disconnects.${reason}: ${count}`)
  }
  assert.equal(second.connections, 0, 'the stats stream itself is not one of the main hub\'s connections')
})

test('/dashboard/stats: a new stream gets the recent samples first, then live ones', OPTIONS, async (t) => {
  const one = await openStream('/dashboard/stats')
  t.after(() => one.close())
  await waitFor(() => one.samples().length >= 2, 8000, 'two samples on the first stream')
  const openedAt = Date.now()
  const two = await openStream('/dashboard/stats')
  t.after(() => two.close())
  await waitFor(() => two.samples().length >= 2, 8000, 'the backlog on the second stream')
  const samples = two.samples()
  assert.equal(samples[0].t < openedAt - 500, true, 'the first sample is from before the stream opened')
  for (let i = 1; i < samples.length; i++) assert.equal(samples[i].t > samples[i - 1].t, true, 'oldest first')
  assert.equal(samples[0].t >= Date.now() - 125000, true, 'no older than 120 s')
})

test('/dashboard/stats: publishes, connections and disconnects by reason move with the main hub', OPTIONS, async (t) => {
  const stats = await openStream('/dashboard/stats')
  t.after(() => stats.close())
  const before = await nextSample(stats, () => true, 'a live sample')

  // A stream on the main hub, then a publish it receives.
  const events = await openStream('/events?topics=dash-test')
  t.after(() => events.close())
  assert.equal(events.res.statusCode, 200)
  const connected = await nextSample(stats, (s) => s.connections === before.connections + 1, 'the stream counted')
  const answer = await get('/publish?topic=dash-test', { method: 'POST', body: 'counted' })
  assert.equal(answer.status, 202)
  const { id } = JSON.parse(answer.body)
  await waitFor(() => events.events.some((ev) => ev.data === 'counted'), 5000, 'the event on the stream')
  const published = await nextSample(stats, (s) => s.history.latest === id, `history.latest = ${id}`)
  assert.equal(published.published, connected.published + 1, 'published counts the publish')
  assert.equal(published.delivered >= connected.delivered + 1, true, 'delivered counts the delivery')
  assert.equal(published.history.events > before.history.events, true, 'the history holds it')

  // The client goes away: the main hub's 'disconnect' (reason client) counted.
  events.close()
  const later = await nextSample(stats, (s) => (s.disconnects.client || 0) === (before.disconnects.client || 0) + 1, 'disconnects.client + 1')
  assert.equal(later.connections, before.connections, 'the stream no longer counted')
  for (const reason of Object.keys(before.disconnects).filter((r) => r !== 'client')) {
    assert.equal(later.disconnects[reason], before.disconnects[reason], `disconnects.${reason} unchanged`)
  }
})
