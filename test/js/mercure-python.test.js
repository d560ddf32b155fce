'use strict'
// Publishing from another language: test/helpers/mercure_publish.py (Python's
// standard library only) signs an HS256 token and POSTs a form to
// examples/mercure-hub.js, a real process; the `eventsource` package (what
// Node apps subscribe with) receives each update with the id the script
// printed: an id the publisher chose or one the hub made, an event type,
// several topics reaching a subscriber once, a private update only for the
// subscriber whose token allows it. A refused publish (wrong key, a token
// that may not publish there) exits 1 with the hub's answer, nothing sent.
// Skipped (with the reason) only where python3 is missing.

const { test, before } = require('node:test')
const assert = require('node:assert/strict')
const { EventSource } = require('eventsource')
const { startExample } = require('../helpers/pb-example')
const { pythonMissing, publishFromPython, EXAMPLE_ENV } = require('../helpers/mercure-python')
const { token, fullSubscriberToken, query, openStream, SECRET, PATH } = require('../helpers/mercure')
const { waitFor, within } = require('../helpers/wait')

const missing = pythonMissing()
const OPTIONS = { skip: missing || false, timeout: 30000 }

let subscriberToken = null
before(async () => { subscriberToken = await fullSubscriberToken() })

/**
 * An `eventsource` package EventSource on the hub, recording every update
 * ({ type, data, lastEventId }); with a token, sent as Authorization: Bearer.
 * Resolves once it is open; closed after the test.
 */
async function subscribe (t, hubUrl, selectors, { tok, types = [] } = {}) {
  const init = tok === undefined
    ? {}
    : { fetch: (input, req) => fetch(input, { ...req, headers: { ...req.headers, authorization: `Bearer ${tok}` } }) }
  const es = new EventSource(`${hubUrl}?${query(selectors)}`, init)
  t.after(() => es.close())
  const events = []
  const record = (e) => events.push({ type: e.type, data: e.data, lastEventId: e.lastEventId })
  es.onmessage = record
  for (const type of types) es.addEventListener(type, record)
  await within(new Promise((resolve, reject) => {
    es.onopen = resolve
    es.onerror = (e) => { if (es.readyState === EventSource.CLOSED) reject(new Error(`EventSource refused: ${e.message || e.code}`)) }
  }), 5000, 'EventSource open')
  return {
    events,
    waitFor: (n) => waitFor(() => events.length >= n, 5000, () => `${n} events (got ${JSON.stringify(events)})`)
  }
}

async function startHub (t) {
  const example = await startExample(t, 'examples/mercure-hub.js', EXAMPLE_ENV)
  return `${example.url}${PATH}`
}

async function publish (hubUrl, update, key = SECRET) {
  const r = await publishFromPython(hubUrl, key, update)
  assert.equal(r.code, 0, `mercure_publish.py exited ${r.code}: ${r.stderr}`)
  return r.id
}

test('an update published from Python reaches the eventsource package with the id the script printed', OPTIONS, async (t) => {
  const hubUrl = await startHub(t)
  const es = await subscribe(t, hubUrl, 'https://example.com/books/{id}', { types: ['book'] })
  // The same stream as bytes: what the package does not expose (retry).
  const raw = await openStream(Number(new URL(hubUrl).port), `${PATH}?${query('https://example.com/books/{id}')}`)
  t.after(() => raw.close())
  const chosen = await publish(hubUrl, { topic: 'https://example.com/books/1', data: '{"title":"Dune"}', id: 'dune-1' })
  assert.equal(chosen, 'dune-1')
  const made = await publish(hubUrl, { topic: 'https://example.com/books/2', data: 'line 1\nline 2', type: 'book', retry: 2500 })
  assert.match(made, /^urn:uuid:[0-9a-f-]{36}$/)
  await es.waitFor(2)
  assert.deepEqual(es.events, [
    { type: 'message', data: '{"title":"Dune"}', lastEventId: 'dune-1' },
    { type: 'book', data: 'line 1\nline 2', lastEventId: made }
  ])
  await raw.wait(2)
  assert.match(raw.raw, new RegExp(`event: book\\nid: ${made}\\nretry: 2500\\ndata: line 1\\ndata: line 2\\n\\n`))
})

test('an update to several topics reaches a subscriber matching more than one of them once', OPTIONS, async (t) => {
  const hubUrl = await startHub(t)
  const both = await subscribe(t, hubUrl, ['https://example.com/books/{id}', 'https://example.com/authors/{id}'])
  const authors = await subscribe(t, hubUrl, 'https://example.com/authors/{id}')
  const id = await publish(hubUrl, { topics: ['https://example.com/books/3', 'https://example.com/authors/9'], data: 'two topics' })
  const last = await publish(hubUrl, { topic: 'https://example.com/authors/9', data: 'last' })
  await both.waitFor(2)
  await authors.waitFor(2)
  assert.deepEqual(both.events.map((e) => [e.data, e.lastEventId]), [['two topics', id], ['last', last]])
  assert.deepEqual(authors.events.map((e) => [e.data, e.lastEventId]), [['two topics', id], ['last', last]])
})

test('a private update from Python reaches only the subscriber whose token allows it', OPTIONS, async (t) => {
  const hubUrl = await startHub(t)
  const allowed = await subscribe(t, hubUrl, 'https://example.com/books/{id}', { tok: subscriberToken })
  const narrow = await subscribe(t, hubUrl, 'https://example.com/books/{id}', {
    tok: await token({ mercure: { subscribe: ['https://example.com/authors/{id}'] } })
  })
  const anonymous = await subscribe(t, hubUrl, 'https://example.com/books/{id}')
  const secret = await publish(hubUrl, { topic: 'https://example.com/books/1', data: 'secret', private: true })
  const open = await publish(hubUrl, { topic: 'https://example.com/books/1', data: 'public' })
  await allowed.waitFor(2)
  await narrow.waitFor(1)
  await anonymous.waitFor(1)
  assert.deepEqual(allowed.events.map((e) => [e.data, e.lastEventId]), [['secret', secret], ['public', open]])
  // The public update came after the private one: had the private one been
  // sent to them, it would be there first.
  assert.deepEqual(narrow.events.map((e) => [e.data, e.lastEventId]), [['public', open]])
  assert.deepEqual(anonymous.events.map((e) => [e.data, e.lastEventId]), [['public', open]])
})

test('a refused publish exits 1 with the hub\'s answer, and nothing is sent', OPTIONS, async (t) => {
  const hubUrl = await startHub(t)
  const es = await subscribe(t, hubUrl, '*', { tok: subscriberToken })
  const wrongKey = await publishFromPython(hubUrl, 'not the key', { topic: 'https://example.com/books/1', data: 'forged' })
  assert.equal(wrongKey.code, 1)
  assert.match(wrongKey.stderr, /^HTTP 401: /)
  const narrow = await publishFromPython(hubUrl, SECRET, { topic: 'https://example.com/books/1', data: 'not allowed', publish: ['https://example.com/authors/{id}'] })
  assert.equal(narrow.code, 1)
  assert.match(narrow.stderr, /^HTTP 403: /)
  const after = await publish(hubUrl, { topic: 'https://example.com/books/1', data: 'after' })
  await es.waitFor(1)
  assert.deepEqual(es.events.map((e) => [e.data, e.lastEventId]), [['after', after]])
})
