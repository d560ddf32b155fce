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

test('a cursor naming a private update the subscriber may not read is unknown: no replay, no echo', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  seed(hub.mercure)
  const books = query(['https://example.com/books/{id}', 'barrier'])
  // urn:p1 is private: resuming from it would tell it exists (what follows
  // it, and the echoed header), so the stream starts live, as for an id the
  // history never held.
  const probing = await hub.subscribe(books, { headers: { 'last-event-id': 'urn:p1' } })
  const unknown = await hub.subscribe(books, { headers: { 'last-event-id': 'urn:never' } })
  const allowed = await hub.subscribe(books, { headers: { 'last-event-id': 'urn:p1' }, token: await fullSubscriberToken() })
  hub.mercure.publish({ topic: 'https://example.com/books/5', data: 'live' })
  await hub.barrier(probing, unknown, allowed)
  for (const s of [probing, unknown]) {
    assert.deepEqual(s.updates().map(([, d]) => d), ['live'])
    assert.equal(s.headers['last-event-id'], 'urn:b2')
  }
  assert.deepEqual(allowed.updates().map(([, d]) => d), ['b2', 'live'])
  assert.equal(allowed.headers['last-event-id'], 'urn:p1')
})

test("a cursor of the hub's own (<epoch>-<seq>) places no Mercure subscriber: only update ids and earliest do", async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  seed(hub.mercure)
  const { epoch } = hub.mercure.hub.stats().history
  // Position 1 is urn:b1: as a cursor it would replay b2 (and, by which
  // positions replay what, tell where the private ones are).
  const byCursor = await hub.subscribe(query(['*', 'barrier']), { headers: { 'last-event-id': `${epoch}-1` } })
  const byId = await hub.subscribe(query(['*', 'barrier']), { headers: { 'last-event-id': 'urn:b1' } })
  hub.mercure.publish({ topic: 'https://example.com/books/5', data: 'live' })
  await hub.barrier(byCursor, byId)
  assert.deepEqual(byCursor.updates().map(([, d]) => d), ['live'])
  assert.equal(byCursor.headers['last-event-id'], 'urn:b2')
  assert.deepEqual(byId.updates().map(([, d]) => d), ['b2', 'live'])
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

test('a replay past maxReplayEvents keeps the newest; Last-Event-ID names the update before the first one sent', async (t) => {
  const hub = await startMercure(t, { anonymous: true, hubOptions: { history: { maxReplayEvents: 3 } } })
  for (const [id, isPrivate] of [['u0'], ['u1'], ['s', true], ['u2'], ['u3'], ['u4']]) {
    hub.mercure.publish({ topic: 'a', id, data: id, private: isPrivate === true })
  }
  const resumed = await hub.subscribe(query('a', { lastEventID: 'u0' }))
  const earliest = await hub.subscribe(query('a', { lastEventID: 'earliest' }))
  const reader = await hub.subscribe(query('a', { lastEventID: 'u0' }), { token: await fullSubscriberToken() })
  const fits = await hub.subscribe(query('a', { lastEventID: 'u2' }))
  hub.mercure.publish({ topic: 'a', id: 'u5', data: 'u5' })
  for (const s of [resumed, earliest, reader, fits]) await s.wait(s === fits ? 3 : 4)
  assert.deepEqual(resumed.updates().map(([, d]) => d), ['u2', 'u3', 'u4', 'u5'])
  assert.equal(resumed.headers['last-event-id'], 'u1') // not u0: the client can tell it missed some
  assert.deepEqual(earliest.updates().map(([, d]) => d), ['u2', 'u3', 'u4', 'u5'])
  assert.equal(earliest.headers['last-event-id'], 'u1')
  assert.deepEqual(reader.updates().map(([, d]) => d), ['u2', 'u3', 'u4', 'u5'])
  assert.equal(reader.headers['last-event-id'], 's') // a private update it may read
  assert.deepEqual(fits.updates().map(([, d]) => d), ['u3', 'u4', 'u5'])
  assert.equal(fits.headers['last-event-id'], 'u2')
})
