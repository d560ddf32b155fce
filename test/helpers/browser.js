'use strict'
// A real browser for the tests: Debian's chromium driven by playwright-core
// (no browser download; CI installs both). A test file checks browserMissing()
// first and skips with its reason when either is absent; otherwise it
// launches one browser for the file and closes it in after().
//
//   const missing = browserMissing()
//   const browser = await launchChromium()
//   const es = await openEventSource(browser, proxy.url, '/events?topics=a', { events: ['reset'] })
//   await es.waitForCount(10, 5000)
//   const { events, opens, errors } = await es.read()
//   await es.close()
//
// A page is a blank page served by the test's server at pagePath (same
// origin as the streams, so no CORS), in a browser context of its own (its
// own connection pool); openPage() gives one to open several EventSources in.

const fs = require('node:fs')
const { within, waitFor } = require('./wait')
const { unsanitizedEnv } = require('./sanitized')

const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium'
const LAUNCH_TIMEOUT_MS = 15000

/** The page the test's server answers for pagePath. */
const BLANK_PAGE = '<!doctype html><meta charset="utf-8"><title>sse-fanout test</title>'

/** Why no browser test can run here (a message for `skip`), or null. */
function browserMissing () {
  try {
    require.resolve('playwright-core')
  } catch {
    return 'playwright-core is not installed (npm ci installs it as a devDependency)'
  }
  try {
    fs.accessSync(CHROMIUM_PATH, fs.constants.X_OK)
  } catch {
    return `no chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set CHROMIUM_PATH)`
  }
  return null
}

/** Launches headless chromium; rejects (bounded) when it does not start. */
async function launchChromium () {
  const { chromium } = require('playwright-core')
  const env = unsanitizedEnv() // chromium started with libasan preloaded never comes up
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: ['--no-sandbox'],
    headless: true,
    timeout: LAUNCH_TIMEOUT_MS,
    env
  })
}

/** Closes a browser (bounded), whatever state it is in. */
async function closeBrowser (browser) {
  if (browser) await within(browser.close(), 10000, 'browser.close()')
}

/* global EventSource, window */
// Runs in the page: one more EventSource recording everything it dispatches;
// returns its index in window.__sse. conn is the number of 'open' events seen
// when the event arrived (1 on the first connection, 2 after the first
// reconnect, ...).
function pageOpen ({ url, events }) {
  const state = { events: [], opens: 0, errors: 0, errorStates: [] }
  const es = new EventSource(url)
  const record = (e) => state.events.push({ type: e.type, data: e.data, lastEventId: e.lastEventId, conn: state.opens })
  es.onopen = () => { state.opens++ }
  es.onerror = () => { state.errors++; state.errorStates.push(es.readyState) }
  es.onmessage = record
  for (const name of events) es.addEventListener(name, record)
  window.__sse = window.__sse || []
  return window.__sse.push({ es, state }) - 1
}

function pageRead (key) {
  const { es, state } = window.__sse[key]
  return { ...state, events: state.events.slice(), readyState: es.readyState }
}

function pageCount (key) {
  return window.__sse[key].state.events.length
}

/**
 * Opens a blank page at origin + pagePath in a browser context of its own.
 * Its eventSource(path) opens one more EventSource on origin + path; the
 * browser keeps at most 6 connections per host in a context, so at most 5
 * streams per page (one for the page itself). Streams of one page share a
 * renderer process: cheaper than a page each on a loaded machine.
 * @param {import('playwright-core').Browser} browser
 * @param {string} origin e.g. proxy.url
 */
async function openPage (browser, origin, { pagePath = '/' } = {}) {
  const context = await browser.newContext()
  let closed = null
  const close = () => {
    if (!closed) closed = within(context.close(), 10000, 'browser context close()')
    return closed
  }
  try {
    const page = await context.newPage()
    await page.goto(origin + pagePath, { timeout: 10000 })
    return {
      page,
      close,
      /**
       * @param {string} path the stream's path and query
       * @param {{ events?: string[] }} [options] named events to record besides 'message'
       */
      async eventSource (path, { events = [] } = {}) {
        const key = await page.evaluate(pageOpen, { url: origin + path, events })
        return eventSourceHandle(page, key, path)
      }
    }
  } catch (err) {
    await close()
    throw err
  }
}

function eventSourceHandle (page, key, path) {
  /** { events: [{ type, data, lastEventId, conn }], opens, errors, errorStates, readyState } */
  const read = () => page.evaluate(pageRead, key)
  return {
    read,
    /** Resolves with the state once at least n events were recorded. */
    async waitForCount (n, timeoutMs, what = `${n} events at ${path}`) {
      let count = 0
      await waitFor(async () => {
        count = await page.evaluate(pageCount, key)
        return count >= n
      }, timeoutMs, () => `${what} (got ${count})`)
      return read()
    },
    /** Resolves with the state once predicate(state) holds. */
    async waitUntil (predicate, timeoutMs, what) {
      let last = null
      return waitFor(async () => {
        last = await read()
        return predicate(last) && last
      }, timeoutMs, () => `${what} (state: ${JSON.stringify({ ...last, events: last && last.events.length })})`)
    }
  }
}

/** openPage() with one EventSource in it; close() closes the page's context. */
async function openEventSource (browser, origin, path, { events = [], pagePath = '/' } = {}) {
  const page = await openPage(browser, origin, { pagePath })
  try {
    return { ...await page.eventSource(path, { events }), page: page.page, close: page.close }
  } catch (err) {
    await page.close()
    throw err
  }
}

module.exports = { CHROMIUM_PATH, BLANK_PAGE, browserMissing, launchChromium, closeBrowser, openPage, openEventSource }
