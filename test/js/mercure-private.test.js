'use strict'
// Mercure authorization over real sockets: private updates reach only the
// subscribers whose `mercure.subscribe` selectors match one of their topics
// (token in the header or in the mercureAuthorization cookie); invalid and
// expired tokens are 401; a publisher without the right is 403; nothing is
// published on a refused POST.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startMercure, token, fullSubscriberToken, query, request, SECRET } = require('../helpers/mercure')

test('private updates reach matching claims only, token in the header or the cookie', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  const anonymous = await hub.subscribe(query('*'))
  const booksHeader = await hub.subscribe(query('*'), { token: await token({ mercure: { subscribe: ['https://example.com/books/{id}'] } }) })
  const booksCookie = await hub.subscribe(query('*'), { cookie: await token({ mercure: { subscribe: ['https://example.com/books/{id}'] } }) })
  const authors = await hub.subscribe(query('*'), { token: await token({ mercure: { subscribe: ['https://example.com/authors/1'] } }) })
  const noClaim = await hub.subscribe(query('*'), { token: await token({ sub: 'x' }) })
  const all = await hub.subscribe(query('*'), { token: await fullSubscriberToken() })

  assert.equal((await hub.publish({ topic: 'https://example.com/books/1', data: 'private book', private: 'on' })).status, 200)
  // `private` with any value, even empty, is private (as Go).
  assert.equal((await hub.publish({ topic: ['https://example.com/x', 'https://example.com/authors/1'], data: 'private author', private: '' })).status, 200)
  assert.equal((await hub.publish({ topic: 'https://example.com/books/2', data: 'public' })).status, 200)
  await hub.barrier(anonymous, booksHeader, booksCookie, authors, noClaim, all)

  const data = (s) => s.updates().map(([, d]) => d)
  assert.deepEqual(data(anonymous), ['public'])
  assert.deepEqual(data(noClaim), ['public'])
  assert.deepEqual(data(booksHeader), ['private book', 'public'])
  assert.deepEqual(data(booksCookie), ['private book', 'public'])
  assert.deepEqual(data(authors), ['private author', 'public'])
  assert.deepEqual(data(all), ['private book', 'private author', 'public'])
})

test('the selectors a subscriber asks for still filter its private updates', async (t) => {
  const hub = await startMercure(t, {})
  const tok = await fullSubscriberToken()
  const books = await hub.subscribe(query(['https://example.com/books/{id}', 'barrier']), { token: tok })
  hub.mercure.publish({ topic: 'https://example.com/authors/1', data: 'not asked for', private: true })
  hub.mercure.publish({ topic: 'https://example.com/books/1', data: 'asked for', private: true })
  await hub.barrier(books)
  assert.deepEqual(books.updates().map(([, d]) => d), ['asked for'])
})

test('invalid, expired and wrongly signed subscriber tokens are 401, even with anonymous on', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  const bad = [
    ['garbage', 'not.a.jwt'],
    ['expired', await token({ mercure: { subscribe: ['*'] } }, { expiresInS: -60 })],
    ['other key', await token({ mercure: { subscribe: ['*'] } }, { key: `${SECRET}-other` })]
  ]
  for (const [what, tok] of bad) {
    for (const headers of [{ authorization: `Bearer ${tok}` }, { cookie: `mercureAuthorization=${tok}` }]) {
      const res = await request(hub.port, 'GET', `${hub.path}?${query('*')}`, { headers })
      assert.equal(res.status, 401, `${what} ${Object.keys(headers)[0]}`)
      assert.match(res.headers['www-authenticate'], /^Bearer/)
      assert.match(res.headers['content-type'], /^text\/plain/)
    }
  }
  assert.equal(hub.mercure.size, 0)
})

test('publishers: 401 without or with a bad token, 403 outside their publish claim; nothing published', async (t) => {
  const hub = await startMercure(t, {})
  const watcher = await hub.subscribe(query('*'), { token: await fullSubscriberToken() })
  const cases = [
    ['no token', { noAuth: true }, 401],
    ['expired', { auth: await token({ mercure: { publish: ['*'] } }, { expiresInS: -60 }) }, 401],
    ['subscriber-only token', { auth: await token({ mercure: { subscribe: ['*'] } }) }, 403],
    ['other topics', { auth: await token({ mercure: { publish: ['https://example.com/authors/{id}'] } }) }, 403]
  ]
  for (const [what, opts, status] of cases) {
    const res = await hub.publish({ topic: 'https://example.com/books/1', data: what, private: 'on' }, opts)
    assert.equal(res.status, status, `${what}: ${res.body}`)
  }
  // A template in the publish claim allows the topics it matches, all of them.
  const books = await token({ mercure: { publish: ['https://example.com/books/{id}'] } })
  assert.equal((await hub.publish({ topic: ['https://example.com/books/1', 'https://example.com/authors/1'], data: 'half' }, { auth: books })).status, 403)
  assert.equal((await hub.publish({ topic: 'https://example.com/books/1', data: 'allowed' }, { auth: books })).status, 200)
  await hub.barrier(watcher)
  assert.deepEqual(watcher.updates().map(([, d]) => d), ['allowed'])
})

test('a cookie token publishes only from an allowed origin', async (t) => {
  const hub = await startMercure(t, { anonymous: true, publishOrigins: ['https://app.example.com'] })
  const watcher = await hub.subscribe(query('*'))
  const cookie = `mercureAuthorization=${await token({ mercure: { publish: ['*'] } })}`
  const refused = await hub.publish({ topic: 'a', data: 'forged' }, { noAuth: true, headers: { cookie, origin: 'https://evil.example' } })
  assert.equal(refused.status, 401)
  const ok = await hub.publish({ topic: 'a', data: 'from the app' }, { noAuth: true, headers: { cookie, origin: 'https://app.example.com' } })
  assert.equal(ok.status, 200, ok.body)
  await hub.barrier(watcher)
  assert.deepEqual(watcher.updates().map(([, d]) => d), ['from the app'])
})

test('a subscribe claim no topic can match (empty, a control character) is ignored, not refused', async (t) => {
  const hub = await startMercure(t, {})
  const s = await hub.subscribe(query(['*']), { token: await token({ mercure: { subscribe: ['', 'a\nb', 'https://example.com/books/{id}', 'https://example.com/books/{id}'] } }) })
  hub.mercure.publish({ topic: 'https://example.com/books/1', data: 'private', private: true })
  await hub.barrier(s)
  assert.deepEqual(s.updates().map(([, d]) => d), ['private'])
})
