'use strict'
// A real EventSource in Chromium receives what Python publishes: the page of
// examples/mercure-hub.js (a real process, anonymous subscribers on) shows
// an update test/helpers/mercure_publish.py (standard library only) posted,
// with the id the script printed; an EventSource on the hub gets it with its
// id and type; a page at another path follows its own URL; a private update reaches the page whose browser holds the
// mercureAuthorization cookie, not the one without it.
// Skipped (with the reason) only where chromium, playwright-core or python3
// is missing.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const { browserMissing, launchChromium, closeBrowser, openPage } = require('../helpers/browser')
const { startExample } = require('../helpers/pb-example')
const { pythonMissing, publishFromPython, EXAMPLE_ENV } = require('../helpers/mercure-python')
const { token, query, SECRET, PATH } = require('../helpers/mercure')
const { cleanup } = require('../helpers/wait')

const missing = browserMissing() || pythonMissing()
const OPTIONS = { skip: missing || false, timeout: 60000 }

const BOOKS = 'https://example.com/books/{id}'
/* global document */

let browser = null
if (!missing) {
  before(async () => { browser = await launchChromium() })
  after(() => closeBrowser(browser))
}

async function publish (hubUrl, update) {
  const r = await publishFromPython(hubUrl, SECRET, update)
  assert.equal(r.code, 0, `mercure_publish.py exited ${r.code}: ${r.stderr}`)
  return r.id
}

/** The example's page for `selectors` in a browser context of its own (cookie: its mercureAuthorization); closed after the test. */
async function openExamplePage (t, origin, selectors, { cookie } = {}) {
  const page = await openPage(browser, origin, { pagePath: `/?${query(selectors)}` })
  cleanup(t)(() => page.close(), 'close page')
  if (cookie !== undefined) {
    await page.page.context().addCookies([{ name: 'mercureAuthorization', value: cookie, url: origin, httpOnly: true, sameSite: 'Strict' }])
    // The page's own stream opened before the cookie was there: reload it.
    await page.page.reload({ timeout: 10000 })
  }
  await page.page.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: 10000 })
  return page
}

/** The updates the example's page shows, oldest first: [id, data]. */
function shown (page) {
  return page.page.evaluate(() => [...document.querySelectorAll('#updates li')].reverse()
    .map((li) => [li.dataset.id, li.querySelector('pre').textContent]))
}

test('the example page and an EventSource in Chromium receive an update published from Python', OPTIONS, async (t) => {
  const example = await startExample(t, 'examples/mercure-hub.js', EXAMPLE_ENV)
  const hubUrl = `${example.url}${PATH}`
  const page = await openExamplePage(t, example.url, BOOKS)
  const es = await page.eventSource(`${PATH}?${query(BOOKS)}`, { events: ['book'] })
  await es.waitUntil((s) => s.opens >= 1, 10000, 'EventSource open')

  const id = await publish(hubUrl, { topic: 'https://example.com/books/1', data: '{"title":"Dune"}', type: 'book', id: 'dune-1' })
  assert.equal(id, 'dune-1')
  const made = await publish(hubUrl, { topic: 'https://example.com/books/2', data: 'second' })
  assert.match(made, /^urn:uuid:/)
  const state = await es.waitForCount(2, 10000)
  assert.deepEqual(state.events.map((e) => [e.type, e.data, e.lastEventId]), [['book', '{"title":"Dune"}', 'dune-1'], ['message', 'second', made]])
  assert.equal(state.errors, 0)
  // The page listens for `message` only: it shows the untyped update.
  await page.page.waitForFunction((n) => document.querySelectorAll('#updates li').length >= n, 1, { timeout: 10000 })
  assert.deepEqual(await shown(page), [[made, 'second']])
})

test('a page at another path follows its own URL as its topic', OPTIONS, async (t) => {
  const example = await startExample(t, 'examples/mercure-hub.js', EXAMPLE_ENV)
  const page = await openPage(browser, example.url, { pagePath: '/books/42' })
  cleanup(t)(() => page.close(), 'close page')
  await page.page.waitForFunction(() => document.getElementById('state').textContent === 'open', null, { timeout: 10000 })
  assert.equal(await page.page.evaluate(() => document.getElementById('selectors').textContent), `${example.url}/books/42`)
  await publish(`${example.url}${PATH}`, { topic: `${example.url}/books/41`, data: 'another book' })
  const id = await publish(`${example.url}${PATH}`, { topic: `${example.url}/books/42`, data: 'this book' })
  await page.page.waitForFunction(() => document.querySelectorAll('#updates li').length >= 1, null, { timeout: 10000 })
  assert.deepEqual(await shown(page), [[id, 'this book']])
})

test('a private update from Python reaches the browser holding the mercureAuthorization cookie only', OPTIONS, async (t) => {
  const example = await startExample(t, 'examples/mercure-hub.js', EXAMPLE_ENV)
  const hubUrl = `${example.url}${PATH}`
  const cookie = await token({ mercure: { subscribe: [BOOKS] } })
  const withCookie = await openExamplePage(t, example.url, BOOKS, { cookie })
  const without = await openExamplePage(t, example.url, BOOKS)
  const esWith = await withCookie.eventSource(`${PATH}?${query(BOOKS)}`)
  const esWithout = await without.eventSource(`${PATH}?${query(BOOKS)}`)
  await esWith.waitUntil((s) => s.opens >= 1, 10000, 'EventSource with the cookie open')
  await esWithout.waitUntil((s) => s.opens >= 1, 10000, 'EventSource without the cookie open')

  const secret = await publish(hubUrl, { topic: 'https://example.com/books/1', data: 'secret', private: true })
  const open = await publish(hubUrl, { topic: 'https://example.com/books/1', data: 'public' })
  const a = await esWith.waitForCount(2, 10000)
  const b = await esWithout.waitForCount(1, 10000)
  assert.deepEqual(a.events.map((e) => [e.data, e.lastEventId]), [['secret', secret], ['public', open]])
  // The public update came after the private one: a leaked private update would be first.
  assert.deepEqual(b.events.map((e) => [e.data, e.lastEventId]), [['public', open]])
  await withCookie.page.waitForFunction(() => document.querySelectorAll('#updates li').length >= 2, null, { timeout: 10000 })
  await without.page.waitForFunction(() => document.querySelectorAll('#updates li').length >= 1, null, { timeout: 10000 })
  assert.deepEqual(await shown(withCookie), [[secret, 'secret'], [open, 'public']])
  assert.deepEqual(await shown(without), [[open, 'public']])
})
