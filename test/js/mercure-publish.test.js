'use strict'
// Mercure publishing over real sockets: the refused POSTs (malformed forms,
// oversized bodies, too many topics, wrong media type, bad fields) answer a
// clear plain-text reason and publish nothing: a subscriber on `*` with
// every private right gets only the barrier after them. publish() from JS
// goes through the same checks. The spec's publish example as a fixture.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startMercure, fullSubscriberToken, publisherToken, query, post } = require('../helpers/mercure')

test('refused POSTs answer 400/403/413/415-as-400 with a reason, and publish nothing', async (t) => {
  const hub = await startMercure(t, { maxBodyBytes: 1024, maxTopicsPerUpdate: 3 })
  const watcher = await hub.subscribe(query('*'), { token: await fullSubscriberToken() })
  const auth = await publisherToken()
  const raw = (body, opts = {}) => post(hub.port, hub.path, body, { auth, ...opts })
  const cases = [
    ['bad escape', () => raw('topic=a&data=%zz'), 400, /two hexadecimal digits/],
    ['; separator', () => raw('topic=a;data=x'), 400, /";" is not a separator/],
    ['not UTF-8', () => raw('topic=a&data=%ff'), 400, /not UTF-8/],
    ['no topic', () => raw('data=x'), 400, /Missing "topic" parameter/],
    ['too many topics', () => raw('topic=a&topic=b&topic=c&topic=d&data=x'), 400, /too many topics/],
    ['oversized body', () => raw(`topic=a&data=${'x'.repeat(2000)}`), 413, /maxBodyBytes/],
    ['JSON body', () => raw('{"topic":"a"}', { type: 'application/json' }), 400, /x-www-form-urlencoded/],
    ['no content type', () => raw('topic=a', { type: null }), 400, /x-www-form-urlencoded/],
    ['multipart', () => raw('--x\r\n', { type: 'multipart/form-data; boundary=x' }), 400, /x-www-form-urlencoded/],
    ['bad retry', () => raw('topic=a&retry=-5'), 400, /Invalid "retry" parameter/],
    ['id with #', () => raw('topic=a&id=%23frag'), 400, /not starting with "#"/],
    ['id with a line feed', () => raw('topic=a&id=a%0Aevent%3A+x'), 400, /for id/],
    ['type with a line feed', () => raw('topic=a&type=a%0Adata%3A+x'), 400, /for type/],
    ['empty topic', () => raw('topic=&data=x'), 400, /topic\[0\]/],
    ['reserved topic', () => raw('topic=https%3A%2F%2Fexample.com%2F.well-known%2Fmercure%2Fsubscriptions%2Fa'), 403, /reserved/]
  ]
  for (const [what, send, status, reason] of cases) {
    const res = await send()
    assert.equal(res.status, status, `${what}: ${res.body}`)
    assert.match(res.body, reason, what)
    assert.match(res.headers['content-type'], /^text\/plain/, what)
  }
  await hub.barrier(watcher)
  assert.deepEqual(watcher.updates(), [], 'nothing was published')
  // A body streamed past the limit (no Content-Length) is refused the same way.
  const streamed = await post(hub.port, hub.path, `topic=a&data=${'y'.repeat(4096)}`, { auth, headers: { 'content-length': undefined } })
  assert.equal(streamed.status, 413)
  await hub.barrier(watcher)
  assert.deepEqual(watcher.updates(), [])
})

test('a form of more than 10000 fields is refused (400) before its pairs are decoded; 10000 publish', async (t) => {
  const hub = await startMercure(t)
  const watcher = await hub.subscribe(query('*'), { token: await fullSubscriberToken() })
  const auth = await publisherToken()
  const many = await post(hub.port, hub.path, `topic=a&data=x${'&f=1'.repeat(10000)}`, { auth })
  assert.equal(many.status, 400, many.body)
  assert.match(many.body, /more than 10000 fields/)
  const most = await post(hub.port, hub.path, `topic=a&data=x${'&f=1'.repeat(9998)}`, { auth })
  assert.equal(most.status, 200, most.body)
  await hub.barrier(watcher)
  assert.deepEqual(watcher.updates().map(([, data]) => data), ['x'])
})

test("the spec's examples: its subscription URL, its publish body, the 200 and the id", async (t) => {
  const hub = await startMercure(t, {})
  // draft-dunglas-mercure-07, "Subscription": three selectors, one a template.
  const url = new URL('http://127.0.0.1/.well-known/mercure')
  url.searchParams.append('topic', 'https://example.com/foo')
  url.searchParams.append('topic', 'bar')
  url.searchParams.append('topic', 'https://example.com/bar/{id}')
  const watcher = await hub.subscribe(url.search.slice(1), { token: await fullSubscriberToken() })
  // "Publication": the body as the spec writes it (':' and '/' unescaped).
  const res = await post(hub.port, hub.path, 'topic=https://example.com/foo&data=the%20content', { auth: await publisherToken() })
  assert.equal(res.status, 200)
  assert.match(res.headers['content-type'], /^text\/plain/)
  assert.match(res.body, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
  const alternate = await post(hub.port, hub.path, 'topic=https://example.com/baz&topic=https://example.com/bar/1&data=alternate', { auth: await publisherToken() })
  assert.equal(alternate.status, 200)
  await watcher.wait(2)
  assert.deepEqual(watcher.events.map((e) => [e.data, e.lastEventId]), [['the content', res.body], ['alternate', alternate.body]])
})

test('publish() from JS: same checks, the id returned, private honoured', async (t) => {
  const hub = await startMercure(t, { anonymous: true })
  const anonymous = await hub.subscribe(query('*'))
  const all = await hub.subscribe(query('*'), { token: await fullSubscriberToken() })
  const id = hub.mercure.publish({ topic: 'https://example.com/books/1', data: { title: 'Dune' } })
  assert.match(id, /^urn:uuid:/)
  assert.equal(hub.mercure.publish({ topics: ['a', 'b'], data: 'secret', private: true, id: 'urn:x:2', type: 'note' }), 'urn:x:2')
  assert.throws(() => hub.mercure.publish({ topic: 'a', id: '#1' }), { code: 'ERR_SSE_INVALID_ID' })
  assert.throws(() => hub.mercure.publish({ topic: 'x/.well-known/mercure/subscriptions' }), { code: 'ERR_SSE_INVALID_TOPIC' })
  assert.throws(() => hub.mercure.publish({ topics: [] }), { code: 'ERR_SSE_INVALID_TOPIC' })
  await hub.barrier(anonymous, all)
  assert.deepEqual(anonymous.updates(), [['message', '{"title":"Dune"}', id]])
  assert.deepEqual(all.updates(), [['message', '{"title":"Dune"}', id], ['note', 'secret', 'urn:x:2']])
  await hub.mercure.close()
  assert.throws(() => hub.mercure.publish({ topic: 'a' }), { code: 'ERR_SSE_CLOSED' })
  const res = await post(hub.port, hub.path, 'topic=a', { auth: await publisherToken() })
  assert.equal(res.status, 503)
})

test('publishing over HTTP can be turned off (publisherJwt: null): 403, publish() still works', async (t) => {
  const hub = await startMercure(t, { publisherJwt: null, anonymous: true })
  const s = await hub.subscribe(query('*'))
  const res = await post(hub.port, hub.path, 'topic=a&data=x', { auth: await publisherToken() })
  assert.equal(res.status, 403)
  hub.mercure.publish({ topic: 'a', data: 'from js' })
  await s.wait(1)
  assert.deepEqual(s.updates().map(([, d]) => d), ['from js'])
})
