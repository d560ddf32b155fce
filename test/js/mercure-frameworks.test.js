'use strict'
// sse-fanout/mercure mounted three ways (node:http handle(), the Fastify
// plugin, the Express middleware), each over real sockets: subscribe,
// publish, discovery, CORS preflight and headers. Then a shared hub: a
// MercureHub on an app's Hub, closed without closing it; a hub with a Redis
// bus refused.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { Hub } = require('../../lib/hub')
const { MercureHub, expressMercure } = require('../../lib/mercure')
const { startMercure, fullSubscriberToken, publisherToken, query, post, request } = require('../helpers/mercure')
const { waitFor } = require('../helpers/wait')

const ORIGIN = 'https://app.example.com'

for (const kind of ['http', 'fastify', 'express']) {
  describe(`mounted with ${kind}`, () => {
    test('subscribe, publish (private too), the page with its Link header', async (t) => {
      const hub = await startMercure(t, { anonymous: true }, { kind })
      const anonymous = await hub.subscribe(query(['https://example.com/books/{id}', 'barrier']))
      const all = await hub.subscribe(query(['https://example.com/books/{id}', 'barrier']), { token: await fullSubscriberToken() })
      const pub = await hub.publish({ topic: 'https://example.com/books/1', data: 'public' })
      assert.equal(pub.status, 200, pub.body)
      const priv = await hub.publish({ topic: 'https://example.com/books/1', data: 'private', private: 'on' })
      assert.equal(priv.status, 200, priv.body)
      await hub.barrier(anonymous, all)
      assert.deepEqual(anonymous.updates().map(([, d, id]) => [d, id]), [['public', pub.body]])
      assert.deepEqual(all.updates().map(([, d, id]) => [d, id]), [['public', pub.body], ['private', priv.body]])
      const page = await request(hub.port, 'GET', '/')
      assert.equal(page.status, 200)
      assert.equal(page.headers.link, '</.well-known/mercure>; rel="mercure"')
      const bad = await post(hub.port, hub.path, 'topic=a&data=%zz', { auth: await publisherToken() })
      assert.equal(bad.status, 400)
      assert.match(bad.body, /malformed form body/)
    })

    test('CORS: the preflight and the headers of an allowed origin', async (t) => {
      const hub = await startMercure(t, { anonymous: true, cors: { origins: [ORIGIN] } }, { kind })
      const preflight = await request(hub.port, 'OPTIONS', `${hub.path}?${query('a')}`, {
        headers: { origin: ORIGIN, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization,last-event-id' }
      })
      assert.equal(preflight.status, 204)
      assert.equal(preflight.headers['access-control-allow-origin'], ORIGIN)
      assert.equal(preflight.headers['access-control-allow-credentials'], 'true')
      assert.equal(preflight.headers['access-control-allow-methods'], 'GET')
      assert.equal(preflight.headers['access-control-allow-headers'], 'authorization, last-event-id')
      const refused = await request(hub.port, 'OPTIONS', hub.path, {
        headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' }
      })
      assert.equal(refused.status, 204)
      assert.equal(refused.headers['access-control-allow-origin'], undefined)
      const s = await hub.subscribe(query('a'), { headers: { origin: ORIGIN } })
      assert.equal(s.headers['access-control-allow-origin'], ORIGIN)
      assert.equal(s.headers['access-control-allow-credentials'], 'true')
      assert.equal(s.headers['access-control-expose-headers'], 'Last-Event-ID')
      const other = await hub.subscribe(query('a'), { headers: { origin: 'https://evil.example' } })
      assert.equal(other.headers['access-control-allow-origin'], undefined)
      const pub = await hub.publish({ topic: 'a', data: 'x' }, { headers: { origin: ORIGIN } })
      assert.equal(pub.headers['access-control-allow-origin'], ORIGIN)
      const denied = await request(hub.port, 'GET', `${hub.path}`, { headers: { origin: ORIGIN } })
      assert.equal(denied.status, 400)
      assert.equal(denied.headers['access-control-allow-origin'], ORIGIN, 'errors carry CORS headers, so the page can read them')
    })
  })
}

test('Express: a body express.urlencoded() parsed first is used; other paths go to next()', async (t) => {
  const express = require('express')
  const mercure = new MercureHub({ publisherJwt: { key: require('../helpers/mercure').SECRET }, subscriberJwt: null, anonymous: true })
  const app = express()
  app.use(express.urlencoded({ extended: false }))
  app.use(expressMercure(mercure))
  app.use((req, res) => { res.status(404).send('not here') })
  const server = http.createServer(app)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(async () => {
    await mercure.close()
    server.closeAllConnections()
    await new Promise((resolve) => server.close(resolve))
  })
  const port = server.address().port
  const path = mercure.options.path
  const s = await new Promise((resolve, reject) => {
    const events = []
    const req = http.get({ host: '127.0.0.1', port, path: `${path}?topic=a` }, (res) => {
      let raw = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { raw += c; if (raw.includes('data: two topics')) events.push(raw) })
      resolve({ res, events, close: () => req.destroy() })
    })
    req.on('error', reject)
  })
  t.after(() => s.close())
  const res = await post(port, path, 'topic=a&topic=b&data=two+topics', { auth: await publisherToken() })
  assert.equal(res.status, 200, res.body)
  await waitFor(() => s.events.length > 0, 5000, 'the update')
  assert.equal((await request(port, 'GET', '/elsewhere')).status, 404)
})

test('a MercureHub on an app hub: close() ends its streams and leaves the hub open; a bus is refused', async (t) => {
  const shared = new Hub({ history: true })
  t.after(() => shared.close())
  const hub = await startMercure(t, { hub: shared, anonymous: true })
  const s = await hub.subscribe(query('a'))
  await waitFor(() => hub.mercure.size === 1, 5000, 'one stream')
  await hub.mercure.close()
  await waitFor(() => s.ended, 5000, 'the stream ended by close()')
  assert.equal(shared.closed, false)
  const after = await request(hub.port, 'GET', `${hub.path}?${query('a')}`)
  assert.equal(after.status, 503)
  assert.throws(() => new MercureHub({ hub: { stats: () => ({}) }, anonymous: true, publisherJwt: null }), /options\.hub/)
  // A Hub with a Redis bus: its stats say so (the bus itself needs Redis; its presence is enough).
  const withBus = Object.create(shared, { stats: { value: () => ({ ...shared.stats(), bus: {} }) } })
  assert.throws(() => new MercureHub({ hub: withBus, anonymous: true, publisherJwt: null }),
    { code: 'ERR_SSE_INVALID_ARGUMENT', message: /Redis bus/ })
})

test("the JS transport (hubOptions.transport 'js') serves the same streams: selectors, private, resume", async (t) => {
  const hub = await startMercure(t, { anonymous: true, hubOptions: { history: true, transport: 'js' } })
  hub.mercure.publish({ topic: 'https://example.com/books/1', data: 'before', id: 'urn:1' })
  hub.mercure.publish({ topic: 'https://example.com/books/2', data: 'private before', id: 'urn:2', private: true })
  const anonymous = await hub.subscribe(query(['https://example.com/books/{id}', 'barrier'], { lastEventID: 'earliest' }))
  const all = await hub.subscribe(query(['https://example.com/books/{id}', 'barrier'], { lastEventID: 'urn:1' }), { token: await fullSubscriberToken() })
  assert.equal(all.headers['last-event-id'], 'urn:1')
  hub.mercure.publish({ topic: 'https://example.com/books/3', data: 'live', private: true })
  await hub.barrier(anonymous, all)
  assert.deepEqual(anonymous.updates().map(([, d]) => d), ['before'])
  assert.deepEqual(all.updates().map(([, d]) => d), ['private before', 'live'])
  assert.equal(hub.mercure.hub.stats().js, 2)
})
