'use strict'
// examples/mercure-hub.js as another language sees it: a Python script using
// only the standard library (test/helpers/mercure_publish.py: urllib, hmac)
// signs a token and publishes; the `eventsource` package and a real
// EventSource in Chromium (playwright-core) receive the update. The example's
// contract: a hub on PORT, keys from the Mercure environment variables, any
// page at `/`, the protocol at /.well-known/mercure.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { promisify } = require('node:util')
const { startExample } = require('../helpers/pb-example')
const { request, token, SECRET, PATH } = require('../helpers/mercure')
const { waitFor } = require('../helpers/wait')
const { browserMissing, launchChromium, closeBrowser, openEventSource } = require('../helpers/browser')

const run = promisify(execFile)
const PYTHON = process.env.PYTHON || 'python3'
const SCRIPT = path.join(__dirname, '..', 'helpers', 'mercure_publish.py')
const ENV = { MERCURE_PUBLISHER_JWT_KEY: SECRET, MERCURE_SUBSCRIBER_JWT_KEY: SECRET, MERCURE_ANONYMOUS: '1' }

let pythonMissing = null
before(async () => {
  try {
    await run(PYTHON, ['--version'], { timeout: 10000 })
  } catch {
    pythonMissing = `no ${PYTHON} on this machine (set PYTHON)`
  }
})

async function publishFromPython (hubUrl, topic, data, ...extra) {
  const { stdout } = await run(PYTHON, [SCRIPT, hubUrl, topic, data, ...extra], { env: { ...process.env, ...ENV }, timeout: 15000 })
  const [status, ...body] = stdout.trim().split(' ')
  return { status: Number(status), body: body.join(' ') }
}

/** An EventSource of the `eventsource` package, recording messages. */
function eventSourceClient (url, init) {
  const { EventSource } = require('eventsource')
  const es = new EventSource(url, init)
  const messages = []
  let opened = false
  es.onopen = () => { opened = true }
  es.onmessage = (e) => messages.push({ data: e.data, lastEventId: e.lastEventId })
  return { es, messages, opened: () => opened }
}

test('the example: a page at /, the Link header, the protocol at /.well-known/mercure', async (t) => {
  const { url } = await startExample(t, 'examples/mercure-hub.js', ENV)
  const port = Number(new URL(url).port)
  const pageRes = await request(port, 'GET', '/books/1')
  assert.equal(pageRes.status, 200)
  assert.match(pageRes.body, /EventSource/)
  assert.equal(pageRes.headers.link, `<${PATH}>; rel="mercure"`)
  const missing = await request(port, 'GET', PATH)
  assert.equal(missing.status, 400)
})

test('Python publishes (stdlib only); the eventsource package receives, private updates need the claims', async (t) => {
  if (pythonMissing) return t.skip(pythonMissing)
  const { url } = await startExample(t, 'examples/mercure-hub.js', ENV)
  const hubUrl = url + PATH
  const topic = 'https://example.com/books/1'
  const anonymous = eventSourceClient(`${hubUrl}?topic=${encodeURIComponent(topic)}`)
  const subscriberToken = await token({ mercure: { subscribe: [topic] } })
  const withClaims = eventSourceClient(`${hubUrl}?topic=${encodeURIComponent(topic)}`, {
    fetch: (input, init) => fetch(input, { ...init, headers: { ...init.headers, Authorization: `Bearer ${subscriberToken}` } })
  })
  t.after(() => { anonymous.es.close(); withClaims.es.close() })
  await waitFor(() => anonymous.opened() && withClaims.opened(), 10000, 'both EventSources open')
  const privateRes = await publishFromPython(hubUrl, topic, 'from python, private', 'private')
  assert.equal(privateRes.status, 200, privateRes.body)
  const publicRes = await publishFromPython(hubUrl, topic, 'from python')
  assert.equal(publicRes.status, 200, publicRes.body)
  assert.match(publicRes.body, /^urn:uuid:/)
  await waitFor(() => anonymous.messages.length >= 1 && withClaims.messages.length >= 2, 10000, 'the updates')
  assert.deepEqual(anonymous.messages, [{ data: 'from python', lastEventId: publicRes.body }])
  assert.deepEqual(withClaims.messages, [
    { data: 'from python, private', lastEventId: privateRes.body },
    { data: 'from python', lastEventId: publicRes.body }
  ])
})

const missing = browserMissing()
let browser = null
after(() => closeBrowser(browser))

test('a real EventSource in Chromium receives what Python published', { skip: missing || false }, async (t) => {
  if (pythonMissing) return t.skip(pythonMissing)
  const { url } = await startExample(t, 'examples/mercure-hub.js', ENV)
  browser ??= await launchChromium()
  const topic = 'https://example.com/books/7'
  const es = await openEventSource(browser, url, `${PATH}?topic=${encodeURIComponent(topic)}`)
  t.after(() => es.close())
  await es.waitUntil((s) => s.opens >= 1, 10000, 'the EventSource opens')
  const res = await publishFromPython(url + PATH, topic, '{"title":"from python"}')
  assert.equal(res.status, 200, res.body)
  const state = await es.waitForCount(1, 10000)
  assert.deepEqual(state.events.map((e) => [e.type, e.data, e.lastEventId]), [['message', '{"title":"from python"}', res.body]])
})
