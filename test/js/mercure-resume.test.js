'use strict'
// Mercure reconnection over real sockets: Last-Event-ID (header, else the
// lastEventID query parameter) replays what followed, filtered by the
// subscriber's selectors and private rights exactly as live; `earliest`
// replays the whole history; the Last-Event-ID response header never names
// an update the subscriber may not see. A hub without history serves
// streams without resume.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Hub } = require('../../lib/hub')
const { startMercure, token, fullSubscriberToken, query } = require('../helpers/mercure')

/** Publishes public b1, private p1, public b2, private (authors) p2 on books/authors. */
function seed (mercure) {
  mercure.publish({ topic: 'https://example.com/books/1', data: 'b1', id: 'urn:b1' })
  mercure.publish({ topic: 'https://example.com/books/2', data: 'p1', id: 'urn:p1', private: true })
  mercure.publish({ topic: 'https://example.com/books/3', data: 'b2', id: 'urn:b2' })
  mercure.publish({ topic: 'https://example.com/authors/1', data: 'p2', id: 'urn:p2', private: true })
}

test('Last-Event-ID header or lastEventID query: what followed, as live, then live updates', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  seed(hub.mercure)
  const books = query(['https://example.com/books/{id}', 'barrier'])
  const byHeader = await hub.subscribe(books, { headers: { 'last-event-id': 'urn:b1' } })
  const byQuery = await hub.subscribe(query(['https://example.com/books/{id}', 'barrier'], { lastEventID: 'urn:b1' }))
  // The header wins over the query parameter.
  const both = await hub.subscribe(query(['https://example.com/books/{id}', 'barrier'], { lastEventID: 'urn:zzz' }), { headers: { 'last-event-id': 'urn:b1' } })
  const withRights = await hub.subscribe(books, { headers: { 'last-event-id': 'urn:b1' }, token: await fullSubscriberToken() })
  hub.mercure.publish({ topic: 'https://example.com/books/4', data: 'live' })
  await hub.barrier(byHeader, byQuery, both, withRights)
  for (const s of [byHeader, byQuery, both]) {
    assert.deepEqual(s.updates().map(([, d, id]) => [d, id]), [['b2', 'urn:b2'], ['live', s.updates()[1][2]]])
    // The response header: the id the subscriber resumed from (the spec's "event preceding the first one sent").
    assert.equal(s.headers['last-event-id'], 'urn:b1')
  }
  assert.deepEqual(withRights.updates().map(([, d]) => d), ['p1', 'b2', 'live'])
})

test('earliest replays the whole history the subscriber may see', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  seed(hub.mercure)
  const anonymous = await hub.subscribe(query(['*'], { lastEventID: 'earliest' }))
  const authors = await hub.subscribe(query(['*'], { lastEventID: 'earliest' }),
    { token: await token({ mercure: { subscribe: ['https://example.com/authors/{id}'] } }) })
  await hub.barrier(anonymous, authors)
  assert.deepEqual(anonymous.updates().map(([, d]) => d), ['b1', 'b2'])
  assert.deepEqual(authors.updates().map(([, d]) => d), ['b1', 'b2', 'p2'])
  assert.equal(anonymous.headers['last-event-id'], 'earliest')
})

test('the Last-Event-ID response header never names an update the subscriber may not see', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  seed(hub.mercure)
  // No cursor: the newest update it may see (b2 for an anonymous one, p2 with rights on authors).
  const anonymous = await hub.subscribe(query('*'))
  assert.equal(anonymous.headers['last-event-id'], 'urn:b2')
  const authors = await hub.subscribe(query('*'), { token: await token({ mercure: { subscribe: ['https://example.com/authors/{id}'] } }) })
  assert.equal(authors.headers['last-event-id'], 'urn:p2')
  // Selectors count too: only books/2 asked for (p1, private).
  const book2 = await hub.subscribe(query('https://example.com/books/2'), { token: await fullSubscriberToken() })
  assert.equal(book2.headers['last-event-id'], 'urn:p1')
  const book2Anonymous = await hub.subscribe(query('https://example.com/books/2'))
  assert.equal(book2Anonymous.headers['last-event-id'], 'earliest')
  // A cursor the history does not hold: nothing replayed, the newest visible update.
  const unknown = await hub.subscribe(query(['*']), { headers: { 'last-event-id': 'urn:nope' } })
  assert.equal(unknown.headers['last-event-id'], 'urn:b2')
  // Nothing visible at all: earliest.
  const none = await hub.subscribe(query('https://example.com/other'))
  assert.equal(none.headers['last-event-id'], 'earliest')
  await hub.barrier(anonymous, unknown)
  assert.deepEqual(unknown.updates(), [], 'an unknown cursor replays nothing (no reset event either)')
})

test('a hub without history: streams work, nothing is replayed, Last-Event-ID: earliest only when asked', async (t) => {
  const shared = new Hub({ history: false })
  t.after(() => shared.close())
  const hub = await startMercure(t, { hub: shared, anonymous: true })
  hub.mercure.publish({ topic: 'a', data: 'before' })
  const plain = await hub.subscribe(query(['a', 'barrier']))
  assert.equal(plain.headers['last-event-id'], undefined)
  const resuming = await hub.subscribe(query(['a', 'barrier'], { lastEventID: 'earliest' }))
  assert.equal(resuming.headers['last-event-id'], 'earliest')
  hub.mercure.publish({ topic: 'a', data: 'after' })
  await hub.barrier(plain, resuming)
  assert.deepEqual(plain.updates().map(([, d]) => d), ['after'])
  assert.deepEqual(resuming.updates().map(([, d]) => d), ['after'])
})

test('an id beyond ASCII: the stream carries it as is, the Last-Event-ID header as its URI form', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  hub.mercure.publish({ topic: 'a', data: '1', id: 'urn:livre:été' })
  hub.mercure.publish({ topic: 'a', data: '2', id: 'urn:livre:日本' })
  const fresh = await hub.subscribe(query(['a']))
  assert.equal(fresh.headers['last-event-id'], 'urn:livre:%E6%97%A5%E6%9C%AC')
  const resuming = await hub.subscribe(query(['a', 'barrier'], { lastEventID: 'urn:livre:été' }))
  assert.equal(resuming.headers['last-event-id'], 'urn:livre:%C3%A9t%C3%A9')
  await hub.barrier(resuming)
  assert.deepEqual(resuming.updates().map(([, d, id]) => [d, id]), [['2', 'urn:livre:日本']])
})
