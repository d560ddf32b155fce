'use strict'
// Writes docs/dashboard.png: the demo's live dashboard after ~20 s of
// traffic. Starts examples/demo-server.js (PORT=0), opens / in Chromium at
// 1280x900 and meanwhile, from this process:
// - publishes small JSON events to `demo` at a rate that swells and ebbs;
// - opens up to 24 reading streams (topics demo and load), then closes half
//   of them and opens a few again (client disconnects);
// - opens one stream that never reads and publishes 48 KB events to its
//   topic until its queue passes maxQueueBytes (the queue chart, a `slow`
//   disconnect);
// - publishes three events from the page's own form.
//
//   node scripts/dashboard-screenshot.js [out.png]     (DURATION_S=20)
//
// Needs /usr/bin/chromium (or CHROMIUM_PATH) and playwright-core.

const net = require('node:net')
const path = require('node:path')
const { startExample } = require('../test/helpers/pb-example')
const { browserMissing, launchChromium, closeBrowser } = require('../test/helpers/browser')
const { sleep, waitFor } = require('../test/helpers/wait')

const OUT = path.resolve(process.argv[2] || path.join(__dirname, '..', 'docs', 'dashboard.png'))
const DURATION_MS = Number(process.env.DURATION_S || 20) * 1000

/** A stream read to the end by fetch(); close() aborts it. */
function reader (base, topics) {
  const controller = new AbortController()
  const done = fetch(`${base}/events?topics=${topics}`, { signal: controller.signal })
    .then((res) => res.arrayBuffer()) // reads until the stream ends
    .catch(() => {})
  return { close: () => { controller.abort(); return done } }
}

/** A stream whose socket is never read: its queue grows until the hub drops it. */
function stalledReader (base) {
  const { hostname, port } = new URL(base)
  const socket = net.connect(Number(port), hostname)
  socket.on('error', () => {})
  socket.write(`GET /events?topics=bulk HTTP/1.1\r\nHost: ${hostname}:${port}\r\n\r\n`)
  socket.pause()
  return socket
}

async function publish (base, topic, data, event) {
  const query = new URLSearchParams({ topic })
  if (event) query.set('event', event)
  const res = await fetch(`${base}/publish?${query}`, { method: 'POST', body: data })
  if (res.status !== 202) throw new Error(`publish answered ${res.status}`)
}

async function main () {
  const missing = browserMissing()
  if (missing) throw new Error(missing)
  const stops = [] // startExample() registers the demo's kill here
  const demo = await startExample({ after: (fn) => stops.push(fn) }, 'examples/demo-server.js', { PUBLISH_TOKEN: '' })
  let browser = null
  const readers = []
  let stalled = null
  try {
    browser = await launchChromium()
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 })
    const page = await context.newPage()
    page.on('pageerror', (err) => console.error('page error:', err.message))
    await page.goto(`${demo.url}/`, { timeout: 10000 })
    await waitFor(() => page.$eval('#state', (el) => el.dataset.state === 'open'), 10000, '#state open')

    const startedAt = Date.now()
    const elapsed = () => (Date.now() - startedAt) / DURATION_MS // 0 .. 1
    const bulk = Buffer.alloc(48 * 1024, 'x').toString()
    let n = 0
    let formPublishes = 0
    while (elapsed() < 1) {
      const e = elapsed()
      // Streams: up to 24 by 40%, half closed at 55%, four back at 75%.
      const wanted = e < 0.4 ? Math.round(24 * e / 0.4) : e < 0.55 ? 24 : e < 0.75 ? 12 : 16
      while (readers.length < wanted) readers.push(reader(demo.url, readers.length % 3 === 0 ? 'load' : 'demo'))
      while (readers.length > wanted) readers.pop().close()
      // The slow reader from 30% on; 48 KB events until it is dropped.
      if (e >= 0.3 && stalled === null) stalled = stalledReader(demo.url)
      if (stalled !== null && !stalled.destroyed && e < 0.8) {
        for (let i = 0; i < 3; i++) await publish(demo.url, 'bulk', bulk)
      }
      // demo: 2 to 30 events a second, swelling and ebbing.
      const perTick = Math.max(0, Math.round(3 * (0.55 + 0.45 * Math.sin(e * Math.PI * 3))))
      for (let i = 0; i < perTick; i++) {
        await publish(demo.url, n % 4 === 0 ? 'load' : 'demo', JSON.stringify({ n: n++, at: new Date().toISOString() }), n % 5 === 0 ? 'tick' : undefined)
      }
      if (e >= 0.85 + formPublishes * 0.04 && formPublishes < 3) {
        formPublishes++
        await page.fill('#publish-event', formPublishes === 2 ? 'greeting' : '')
        await page.fill('#publish-data', ['hello from the dashboard', 'hi, every open tab', 'one more, with feeling'][formPublishes - 1])
        await page.click('#publish button[type=submit]')
      }
      await sleep(100)
    }
    // The traffic runs up to the screenshot: the figures show it going on.
    await waitFor(() => page.$eval('#publish-result', (el) => el.dataset.id !== undefined), 5000, 'the form publish answered')
    await page.screenshot({ path: OUT })
    console.log(`wrote ${OUT}`)
  } finally {
    for (const r of readers) r.close()
    if (stalled) stalled.destroy()
    await closeBrowser(browser)
    await Promise.all(stops.map((stop) => stop()))
  }
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
