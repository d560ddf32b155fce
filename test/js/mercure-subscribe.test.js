'use strict'
// Mercure subscriptions over real sockets (sse-fanout/mercure): exact, URI
// template and `*` selectors; an update to several topics reaches a
// subscriber once; the stream's headers; the refused requests; heartbeats;
// a token's `exp` ends the stream.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startMercure, token, query, request } = require('../helpers/mercure')
const { waitFor, sleep } = require('../helpers/wait')

test('exact, template and * selectors each get what they match, once per update', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  const exact = await hub.subscribe(query(['https://example.com/books/1', 'barrier']))
  const template = await hub.subscribe(query(['https://example.com/books/{id}', 'barrier']))
  const star = await hub.subscribe(query('*'))
  const other = await hub.subscribe(query(['https://example.com/authors/{id}', 'barrier']))

  let res = await hub.publish({ topic: 'https://example.com/books/1', data: 'b1' })
  assert.equal(res.status, 200, res.body)
  res = await hub.publish({ topic: 'https://example.com/books/2', data: 'b2' })
  assert.equal(res.status, 200, res.body)
  // One update to several topics: canonical and alternates all match some selectors.
  res = await hub.publish({ topic: ['https://example.com/books/1', 'https://example.com/books/3', 'https://example.com/authors/7'], data: 'many' })
  assert.equal(res.status, 200, res.body)
  await hub.barrier(exact, template, star, other)

  const data = (s) => s.updates().map(([, d]) => d)
  assert.deepEqual(data(exact), ['b1', 'many'])
  assert.deepEqual(data(template), ['b1', 'b2', 'many'])
  assert.deepEqual(data(star), ['b1', 'b2', 'many'])
  assert.deepEqual(data(other), ['many'])
})

test('the update is sent as the spec says: id, event type, retry, multi-line data', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  const s = await hub.subscribe(query('*'))
  const res = await hub.publish({ topic: 'a', data: 'line 1\nline 2', id: 'urn:example:1', type: 'book', retry: '2500' })
  assert.equal(res.status, 200)
  assert.equal(res.body, 'urn:example:1')
  assert.match(res.headers['content-type'], /^text\/plain/)
  const generated = await hub.publish({ topic: 'a', data: 'x' })
  assert.match(generated.body, /^urn:uuid:[0-9a-f-]{36}$/)
  await s.wait(2)
  assert.deepEqual(s.events.map((e) => [e.event, e.data, e.lastEventId]),
    [['book', 'line 1\nline 2', 'urn:example:1'], ['message', 'x', generated.body]])
  assert.equal(s.parser.retry, 2500)
})

test('the stream answers with the headers the spec and the reference hub send', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  const s = await hub.subscribe(query('a'))
  assert.equal(s.status, 200)
  assert.equal(s.headers['content-type'], 'text/event-stream')
  assert.equal(s.headers['cache-control'], 'private, no-cache, no-store, must-revalidate, max-age=0')
  assert.equal(s.headers['x-accel-buffering'], 'no')
  assert.equal(s.headers.pragma, 'no-cache')
  // History on (the default hub), nothing published: the spec's value for an empty history.
  assert.equal(s.headers['last-event-id'], 'earliest')
})

test('requests the hub refuses: no topic, a bad selector, too many selectors, an unknown method', async (t) => {
  const hub = await startMercure(t, { anonymous: true, maxSelectorsPerSubscriber: 3 })
  const cases = [
    ['', 400, /Missing "topic" parameter/],
    [query(['a', 'b', 'c', 'd']), 400, /Too many "topic" parameters/],
    [query(['a', '']), 400, /Invalid "topic" parameter/],
    [query(['a\u0001b']), 400, /Invalid "topic" parameter/]
  ]
  for (const [q, status, reason] of cases) {
    const res = await request(hub.port, 'GET', `${hub.path}?${q}`)
    assert.equal(res.status, status, q)
    assert.match(res.body, reason, q)
    assert.match(res.headers['content-type'], /^text\/plain/)
  }
  const put = await request(hub.port, 'PUT', hub.path)
  assert.equal(put.status, 405)
  assert.equal(put.headers.allow, 'GET, POST, OPTIONS')
  assert.equal(hub.mercure.size, 0)
})

test('a subscriber without a token: 401 unless anonymous is on', async (t) => {
  const closed = await startMercure(t, {})
  const res = await request(closed.port, 'GET', `${closed.path}?${query('a')}`)
  assert.equal(res.status, 401)
  assert.equal(res.headers['www-authenticate'], 'Bearer')
  const open = await startMercure(t, { anonymous: true })
  await open.subscribe(query('a'))
})

test('heartbeats keep a quiet stream alive', async (t) => {
  const hub = await startMercure(t, { anonymous: true, hubOptions: { heartbeatMs: 100 } })
  const s = await hub.subscribe(query('a'))
  await waitFor(() => s.parser.comments >= 2, 5000, 'two heartbeat comments')
})

test('the stream ends when the subscriber token expires', async (t) => {
  const hub = await startMercure(t, {})
  const s = await hub.subscribe(query('a'), { token: await token({ mercure: { subscribe: ['a'] } }, { expiresInS: 1 }) })
  await sleep(200)
  assert.equal(s.ended, false)
  await waitFor(() => s.ended, 5000, 'the stream to end at exp')
})

test('a token accepted within clockToleranceSec after its exp keeps its stream until exp plus the tolerance', async (t) => {
  const hub = await startMercure(t, { clockToleranceSec: 2 })
  // exp one second ago: accepted (tolerance 2 s), so the stream lives about
  // one more second, not 1 ms (a reconnect loop).
  const s = await hub.subscribe(query('a'), { token: await token({ mercure: { subscribe: ['a'] } }, { expiresInS: -1 }) })
  await sleep(400)
  assert.equal(s.ended, false)
  await waitFor(() => s.ended, 5000, 'the stream to end at exp + tolerance')
})

test('the page and the discovery Link header beside the hub', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  const page = await request(hub.port, 'GET', '/')
  assert.equal(page.body, 'page')
  assert.equal(page.headers.link, '</.well-known/mercure>; rel="mercure"')
})

test("budgets answer plainly: maxDistinctSelectors 503, the hub's maxConnectionsPerIp 429", async (t) => {
  const hub = await startMercure(t, { anonymous: true, maxDistinctSelectors: 2, hubOptions: { history: true, maxConnectionsPerIp: 2 } })
  await hub.subscribe(query('a'))
  await hub.subscribe(query('https://example.com/{id}'))
  const distinct = await request(hub.port, 'GET', `${hub.path}?${query('c')}`)
  assert.equal(distinct.status, 503)
  assert.match(distinct.body, /maxDistinctSelectors/)
  const perIp = await request(hub.port, 'GET', `${hub.path}?${query('a')}`)
  assert.equal(perIp.status, 429)
  assert.match(perIp.body, /maxConnectionsPerIp/)
  assert.equal(hub.mercure.size, 2)
})

test('maxDistinctTemplates bounds the URI templates held (503), exact selectors still welcome', async (t) => {
  const hub = await startMercure(t, { anonymous: true, maxDistinctTemplates: 1 })
  await hub.subscribe(query('https://example.com/books/{id}'))
  const second = await request(hub.port, 'GET', `${hub.path}?${query('https://example.com/users/{id}')}`)
  assert.equal(second.status, 503)
  assert.match(second.body, /maxDistinctTemplates/)
  await hub.subscribe(query(['https://example.com/books/{id}', 'https://example.com/users/1']))
  assert.equal(hub.mercure.stats().templates, 1)
})

test('maxDistinctTemplates weighs a template by its expressions: many-expression templates cannot make each update cost more', async (t) => {
  const hub = await startMercure(t, { anonymous: true, maxDistinctTemplates: 16 })
  const heavy = await hub.subscribe(query(`{+a}${'{+b}'.repeat(15)}`))
  const second = await request(hub.port, 'GET', `${hub.path}?${query('https://example.com/books/{id}')}`)
  assert.equal(second.status, 503)
  assert.match(second.body, /maxDistinctTemplates/)
  heavy.close()
  await waitFor(() => hub.mercure.stats().templates === 0, 5000, 'the heavy template released')
  await hub.subscribe(query('https://example.com/books/{id}'))
  assert.equal(hub.mercure.stats().templates, 1)
})

test('maxExpressionsPerSubscriber bounds the template expressions of one subscription (400)', async (t) => {
  const hub = await startMercure(t, { anonymous: true, maxExpressionsPerSubscriber: 2 })
  const tooMany = await request(hub.port, 'GET', `${hub.path}?${query(['https://example.com/{a}/{b}', 'https://example.com/x/{c}'])}`)
  assert.equal(tooMany.status, 400)
  assert.match(tooMany.body, /maxExpressionsPerSubscriber/)
  await hub.subscribe(query(['https://example.com/{a}/{b}', 'https://example.com/exact']))
  assert.equal(hub.mercure.stats().templates, 1)
})
