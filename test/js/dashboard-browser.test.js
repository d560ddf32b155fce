'use strict'
// The demo's dashboard in Chromium: examples/demo-server.js in a child
// process (PORT=0, no PUBLISH_TOKEN) and three tabs at / (each in a browser
// context of its own). Every tab's stream opens; an event published from one tab's form is
// shown in every tab within 1 s of the submit, with its id; an event name no
// other tab listened for is found and shown too, and the next one of that
// name arrives live; the figures count the tabs, the charts draw, and a tab
// that goes away moves the disconnects by reason. No page error, no CSP
// violation, no console error. A demo of its own, killed and started again on
// the same port: the tab goes reconnecting, then open (with a `reset`: a new
// epoch), the charts show the gap, the form works again.
// Skipped (with the reason) only where chromium or playwright-core is missing.

/* global MutationObserver */
const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { startExample } = require('../helpers/pb-example')
const { browserMissing, launchChromium, closeBrowser } = require('../helpers/browser')
const { waitFor, within } = require('../helpers/wait')

const missing = browserMissing()
const OPTIONS = { skip: missing || false, timeout: 60000 }
const TABS = 3
const DELIVERY_MS = 1000

let browser = null
let demo = null
const stops = [] // startExample() registers the demo's kill here
if (!missing) {
  before(async () => {
    demo = await startExample({ after: (fn) => stops.push(fn) }, 'examples/demo-server.js', { PUBLISH_TOKEN: '' })
    browser = await launchChromium()
  })
  after(async () => {
    await closeBrowser(browser)
    await Promise.all(stops.map((stop) => stop()))
  })
}

/** Opens the dashboard (at origin) in a context of its own; records page errors and console errors. */
async function openTab (t, n, { deviceScaleFactor = 1, origin = demo.url } = {}) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor })
  let closed = null
  const close = () => {
    if (!closed) closed = within(context.close(), 10000, `close tab ${n}`)
    return closed
  }
  t.after(close)
  const page = await context.newPage()
  page.setDefaultTimeout(10000)
  const tab = { n, page, close, problems: [] }
  page.on('pageerror', (err) => tab.problems.push(`page error: ${err.message}`))
  page.on('console', (msg) => { if (msg.type() === 'error') tab.problems.push(`console error: ${msg.text()}`) })
  await page.goto(`${origin}/`, { timeout: 10000 })
  return tab
}

const text = (tab, selector) => tab.page.$eval(selector, (el) => el.textContent)

/**
 * In the tab: resolves with Date.now() when an li holding data appears in
 * #events (at once if one is there), within timeoutMs; start it before the event is sent.
 */
function watchFor (tab, data, timeoutMs) {
  return tab.page.evaluate(({ data, timeoutMs }) => new Promise((resolve, reject) => {
    const list = document.getElementById('events')
    const find = () => [...list.querySelectorAll('li')].find((li) => li.textContent.includes(data))
    const done = (li) => {
      observer.disconnect()
      clearTimeout(timer)
      resolve({ at: Date.now(), id: li.dataset.id, name: li.querySelector('.name').textContent, count: [...list.querySelectorAll('li')].filter((l) => l.textContent.includes(data)).length })
    }
    const observer = new MutationObserver(() => { const li = find(); if (li) done(li) })
    const timer = setTimeout(() => { observer.disconnect(); reject(new Error(`no li with ${data} in #events after ${timeoutMs} ms`)) }, timeoutMs)
    observer.observe(list, { childList: true })
    const li = find()
    if (li) done(li)
  }), { data, timeoutMs })
}

/** Starts watching in every tab; resolves once every watcher is in place. */
async function watchAll (tabs, data, timeoutMs) {
  const watches = []
  for (const tab of tabs) watches.push(watchFor(tab, data, timeoutMs))
  // page.evaluate() runs in order per page: a no-op after it means the watcher is set.
  await Promise.all(tabs.map((tab) => tab.page.evaluate(() => true)))
  return watches
}

/** Publishes with the tab's form; resolves with the page's Date.now() at submit and the id it shows. */
async function submit (tab, { event = '', data }) {
  await tab.page.fill('#publish-topic', 'demo')
  await tab.page.fill('#publish-event', event)
  await tab.page.fill('#publish-data', data)
  await tab.page.evaluate(() => {
    document.getElementById('publish').addEventListener('submit', () => { window.__submittedAt = Date.now() }, { once: true, capture: true })
    delete document.getElementById('publish-result').dataset.id
  })
  await tab.page.click('#publish button[type=submit]')
  const id = await waitFor(() => tab.page.$eval('#publish-result', (el) => el.dataset.id), 5000, 'the id in #publish-result')
  assert.match(await text(tab, '#publish-result'), new RegExp(id), '#publish-result shows the id')
  return { id, submittedAt: await tab.page.evaluate(() => window.__submittedAt) }
}

/** How many pixels of the canvas are close to the color #rrggbb. */
function pixelsOf (tab, selector, color) {
  return tab.page.$eval(selector, (canvas, color) => {
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16))
    const { data } = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height)
    let n = 0
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3] > 200 && Math.abs(data[i] - r) < 24 && Math.abs(data[i + 1] - g) < 24 && Math.abs(data[i + 2] - b) < 24) n++
    }
    return n
  }, color)
}

test('three tabs: the form\'s event in every tab within 1 s, any event name, the figures and charts', OPTIONS, async (t) => {
  const tabs = []
  // Tab 1 on a 2x screen: its canvases have twice the pixels of their CSS size.
  for (let n = 1; n <= TABS; n++) tabs.push(await openTab(t, n, { deviceScaleFactor: n === 1 ? 2 : 1 }))
  for (const tab of tabs) {
    await waitFor(() => tab.page.$eval('#state', (el) => el.dataset.state === 'open' && el.textContent === 'open'), 10000, `tab ${tab.n}: #state open`)
  }
  const [one, two, three] = tabs

  // An unnamed event from tab 1's form: every tab within DELIVERY_MS of the submit.
  const data = `hello from tab 1 <b>${Date.now()}</b>`
  const watches = await watchAll(tabs, data, 5000)
  const { id, submittedAt } = await submit(one, { data })
  const seen = await Promise.all(watches)
  t.diagnostic(`shown ${seen.map((s) => s.at - submittedAt).join(', ')} ms after the submit`)
  for (const [i, s] of seen.entries()) {
    const ms = s.at - submittedAt
    assert.equal(ms >= 0 && ms < DELIVERY_MS, true, `tab ${i + 1} showed the event ${ms} ms after the submit`)
    assert.equal(s.id, id, `tab ${i + 1}: the li's data-id is the id published`)
    assert.equal(s.name, 'message', `tab ${i + 1}`)
    assert.equal(s.count, 1, `tab ${i + 1}: shown once`)
  }
  for (const tab of tabs) {
    assert.equal(await text(tab, '#cursor'), id, `tab ${tab.n}: #cursor is the last event's id`)
    const li = await tab.page.$eval('#events li', (el) => ({ html: el.innerHTML, id: el.dataset.id }))
    assert.equal(li.id, id, `tab ${tab.n}: newest first`)
    assert.equal(li.html.includes('<b>'), false, `tab ${tab.n}: the data is text, not markup`)
  }

  // An event name only tab 1 listens for (it typed it): tabs 2 and 3 find it
  // (a catch-up read when the figures say the hub moved) and show it; the
  // next event of that name reaches every tab live.
  const greeting = `greeting ${Date.now()}`
  const found = await watchAll(tabs, greeting, 6000)
  const named = await submit(one, { event: 'greeting', data: greeting })
  for (const [i, s] of (await Promise.all(found)).entries()) {
    assert.deepEqual([s.id, s.name, s.count], [named.id, 'greeting', 1], `tab ${i + 1}: the named event`)
  }
  const again = `greeting again ${Date.now()}`
  const live = await watchAll(tabs, again, 5000)
  const sentAt = Date.now()
  const res = await fetch(`${demo.url}/publish?topic=demo&event=greeting`, { method: 'POST', body: again, signal: AbortSignal.timeout(5000) })
  assert.equal(res.status, 202)
  for (const [i, s] of (await Promise.all(live)).entries()) {
    assert.equal(s.at - sentAt < DELIVERY_MS, true, `tab ${i + 1}: the next greeting live, ${s.at - sentAt} ms`)
    assert.equal(s.name, 'greeting')
  }

  // Figures: the three tabs' streams (the stats streams are not counted); a chart drawn.
  await waitFor(async () => Number(await text(one, '#now-connections')) >= TABS, 5000, '#now-connections >= 3')
  await waitFor(() => one.page.$eval('#chart-connections', (el) => Number(el.dataset.points) >= 2), 5000, 'the connections chart drew 2 samples')
  assert.equal(await pixelsOf(one, '#chart-connections', '#2563eb') > 20, true, 'the connections line is on the canvas')
  const { width, height, clientWidth, clientHeight } = await one.page.$eval('#chart-connections', (el) => ({ width: el.width, height: el.height, clientWidth: el.clientWidth, clientHeight: el.clientHeight }))
  assert.equal(await one.page.evaluate(() => window.devicePixelRatio), 2)
  assert.deepEqual([width, height], [clientWidth * 2, clientHeight * 2], 'the backing store is the CSS size times the pixel ratio')
  assert.equal(Number(await text(one, '#now-publishes')) >= 0, true, `#now-publishes is a number: ${await text(one, '#now-publishes')}`)
  assert.match(await text(one, '#now-queue'), /^[0-9.]+ (B|KB|MB|GB)$/)
  const log = await one.page.$$eval('#log li', (items) => items.map((li) => li.textContent))
  assert.equal(log.some((line) => /^\[SSE\] \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z state connecting -> open$/.test(line)), true, log.join('\n'))

  // Tab 3 goes away: a client disconnect in tab 1's legend, two connections left.
  const legendCount = async () => {
    const items = await one.page.$$eval('#legend-disconnects li', (lis) => lis.map((li) => li.textContent))
    const client = items.find((s) => s.startsWith('client'))
    return client === undefined ? NaN : Number(client.slice('client'.length))
  }
  const clientBefore = await legendCount()
  assert.equal(Number.isInteger(clientBefore), true, 'the legend lists `client`')
  await three.close()
  await waitFor(async () => await legendCount() === clientBefore + 1, 5000, 'legend: client + 1')
  await waitFor(async () => Number(await text(one, '#now-connections')) === TABS - 1, 5000, '#now-connections back to 2')
  await waitFor(() => one.page.$eval('#chart-disconnects', (el) => Number(el.dataset.points) >= 2), 5000, 'the disconnects chart drew')
  await waitFor(async () => await pixelsOf(one, '#chart-disconnects', '#64748b') > 5, 5000, 'a `client` line on the disconnects chart')

  for (const tab of [one, two]) assert.deepEqual(tab.problems, [], `tab ${tab.n}: no page or console error`)
})

test('the publish form: a refusal is shown (an empty topic; 401 without PUBLISH_TOKEN), the token field sends it', OPTIONS, async (t) => {
  const guarded = await startOwnDemo(t, 0, { PUBLISH_TOKEN: 't0ken' })
  const tab = await openTab(t, 1, { origin: guarded.url })
  await waitFor(() => tab.page.$eval('#state', (el) => el.dataset.state === 'open'), 10000, '#state open')
  const refusal = async (what) => {
    await tab.page.click('#publish button[type=submit]')
    return waitFor(async () => {
      const shown = await text(tab, '#publish-result')
      return /^refused: /.test(shown) && shown
    }, 5000, `the refusal in #publish-result (${what})`)
  }
  await tab.page.fill('#publish-data', 'not yet')
  assert.match(await refusal('no token'), /^refused: 401 unauthorized$/)
  assert.equal(await tab.page.$eval('#publish-result', (el) => el.dataset.id), undefined)
  assert.equal(await tab.page.evaluate(() => document.activeElement.id), 'publish-token', 'a 401 opens the token field')
  await tab.page.fill('#publish-token', 't0ken')
  await tab.page.fill('#publish-topic', ' ')
  await tab.page.evaluate(() => { document.getElementById('publish-topic').removeAttribute('required') })
  assert.match(await refusal('an empty topic'), /^refused: 400 /)
  const data = `with the token ${Date.now()}`
  const [watch] = await watchAll([tab], data, 5000)
  const { id } = await submit(tab, { data })
  assert.equal((await watch).id, id, 'published with the token, shown in the tab')
  assert.deepEqual(tab.problems.filter((p) => !/status of (401|400)/.test(p)), [])
})

/** The demo on port (0: a free one); stop() kills it now (else it is killed after the test). */
async function startOwnDemo (t, port, env = {}) {
  let stop = null
  const demo = await startExample({ after: (fn) => { stop = fn; t.after(fn) } }, 'examples/demo-server.js', { PUBLISH_TOKEN: '', PORT: String(port), ...env })
  return { ...demo, stop: () => stop() }
}

test('a server restart: the tab goes reconnecting, then open again (reset: another epoch); the charts keep a gap', OPTIONS, async (t) => {
  const first = await startOwnDemo(t, 0)
  const port = new URL(first.url).port
  const tab = await openTab(t, 1, { origin: first.url })
  await tab.page.evaluate(() => {
    window.__states = [window.dashboard.events.state]
    window.dashboard.events.subscribe(() => window.__states.push(window.dashboard.events.state))
  })
  await waitFor(() => tab.page.$eval('#state', (el) => el.dataset.state === 'open'), 10000, '#state open')
  await waitFor(() => tab.page.$eval('#chart-connections', (el) => Number(el.dataset.points) >= 2), 5000, 'the chart drew')
  const before = await tab.page.evaluate(() => window.dashboard.samples.length)

  await first.stop()
  await waitFor(() => tab.page.$eval('#state', (el) => el.dataset.state === 'reconnecting'), 5000, '#state reconnecting')
  await waitFor(() => tab.page.$eval('#stats-state', (el) => el.dataset.state === 'reconnecting'), 5000, 'the figures reconnecting')
  await waitFor(async () => await text(tab, '#state') === 'reconnecting', 1000, 'the text too')

  // The same port, a new process: a new history epoch.
  const second = await startOwnDemo(t, port)
  assert.equal(second.url, first.url)
  await waitFor(() => tab.page.$eval('#state', (el) => el.dataset.state === 'open'), 20000, '#state open again')
  await waitFor(() => tab.page.$eval('#stats-state', (el) => el.dataset.state === 'open'), 20000, 'the figures open again')
  const states = await tab.page.evaluate(() => window.__states)
  assert.deepEqual(states.filter((s, i) => s !== states[i - 1]).slice(-3), ['open', 'reconnecting', 'open'], states.join(' -> '))
  await waitFor(async () => (await tab.page.$$eval('#log li', (lis) => lis.map((li) => li.textContent))).some((line) => line.startsWith('reset (epoch)')),
    5000, 'the reset (another epoch) in #log')

  // New samples after the old ones, a gap between them on the chart.
  await waitFor(() => tab.page.evaluate((n) => window.dashboard.samples.length >= n + 2, before), 8000, 'samples from the new server')
  await waitFor(() => tab.page.$eval('#chart-connections', (el) => Number(el.dataset.segments) === 2), 5000, 'two pieces on the connections chart')

  // And the tab goes on: its form, its stream.
  const data = `after the restart ${Date.now()}`
  const [watch] = await watchAll([tab], data, 5000)
  const { id } = await submit(tab, { data })
  assert.equal((await watch).id, id)
  assert.deepEqual(tab.problems.filter((p) => !p.includes('ERR_CONNECTION_REFUSED')), [])
})
