'use strict'
// maxConnectionsPerIp: past the limit a stream is refused with 429 (Fastify
// plugin, PocketBase routes) or ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP (Hub),
// per client address (the framework's, with its trust-proxy setting), and the
// count goes down when streams end. Nothing of a refused request is
// registered. (The default, 256: hub-options.test.js.)

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const Fastify = require('fastify')
const { Hub } = require('../..')
const express = require('express')
const sseFanout = require('../../lib/fastify')
const { sse } = require('../../lib/express')
const { Realtime } = require('../../lib/pocketbase')
const { startHub } = require('../helpers/fixture')
const { within, waitFor, cleanup } = require('../helpers/wait')

/** Opens a GET from localAddress; resolves { status, body, close } once the head (and, for errors, the body) arrived. */
function get (port, path, localAddress) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, localAddress, agent: false }, (res) => {
      if (res.statusCode === 200) {
        resolve({ status: 200, close: () => res.destroy() })
        return
      }
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.on('error', reject)
  })
}

test('Hub: maxConnectionsPerIp refuses the next stream from that address only, until one ends', async (t) => {
  const { hub, port, errors } = await startHub(t, { hub: { threads: 1, maxConnectionsPerIp: 2 }, accept: { topics: ['t'] } })
  const a1 = await get(port, '/', '127.0.0.1')
  const a2 = await get(port, '/', '127.0.0.1')
  const a3 = await get(port, '/', '127.0.0.1')
  const b1 = await get(port, '/', '127.0.0.2')
  assert.deepEqual([a1.status, a2.status, a3.status, b1.status], [200, 200, 429, 200])
  assert.equal(a3.body, 'ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP')
  assert.match(errors[0].message, /maxConnectionsPerIp \(2\) connections from 127\.0\.0\.1/)
  assert.equal(hub.stats().connections, 3, 'the refused request registered nothing')
  a1.close()
  await waitFor(() => hub.stats().connections === 2, 5000, 'the closed stream is gone')
  const a4 = await get(port, '/', '127.0.0.1')
  assert.equal(a4.status, 200, 'a slot from that address is free again')
  for (const c of [a2, a4, b1]) c.close()
  await waitFor(() => hub.stats().connections === 0, 5000, 'all streams gone')
})

test('Hub: options.ip overrides the socket address; bad values are refused', async (t) => {
  const results = []
  const { port } = await startHub(t, {
    hub: { threads: 1, maxConnectionsPerIp: 1 },
    handler: (hub) => (req, res) => {
      const ip = new URL(req.url, 'http://x').searchParams.get('ip')
      try {
        hub.accept(req, res, { ip: ip === 'empty' ? '' : ip })
        results.push('ok')
      } catch (err) {
        results.push(err.code)
        res.statusCode = err.statusCode || 400
        res.end()
      }
    }
  })
  const open = []
  open.push(await get(port, '/?ip=10.0.0.1'))
  open.push(await get(port, '/?ip=10.0.0.2'))
  await get(port, '/?ip=10.0.0.1')
  await get(port, '/?ip=empty')
  assert.deepEqual(results, ['ok', 'ok', 'ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP', 'ERR_SSE_INVALID_ARGUMENT'])
  for (const c of open) c.close()
  assert.throws(() => new Hub({ maxConnectionsPerIp: -1 }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
})

test('Fastify plugin and PocketBase routes answer 429 past maxConnectionsPerIp', async (t) => {
  const defer = cleanup(t)
  const app = Fastify()
  await app.register(sseFanout, { threads: 1, maxConnectionsPerIp: 1 })
  app.get('/events', (request, reply) => { reply.sse({ topics: ['t'] }) })
  const realtime = new Realtime({ hubOptions: { threads: 1, maxConnectionsPerIp: 1 } })
  defer(() => realtime.close(), 'realtime.close()')
  app.get('/api/realtime', (request, reply) => { reply.hijack(); realtime.handler(request.raw, reply.raw) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  defer(() => app.close(), 'app.close()')
  const port = app.server.address().port

  const first = await get(port, '/events', '127.0.0.1')
  const second = await get(port, '/events', '127.0.0.1')
  assert.equal(first.status, 200)
  assert.equal(second.status, 429)
  assert.equal(JSON.parse(second.body).code, 'ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP')
  first.close()

  const pb1 = await get(port, '/api/realtime', '127.0.0.1')
  const pb2 = await get(port, '/api/realtime', '127.0.0.1')
  const pb3 = await get(port, '/api/realtime', '127.0.0.2')
  assert.equal(pb1.status, 200)
  assert.equal(pb2.status, 429)
  assert.equal(pb2.body, '{"data":{},"message":"Too Many Requests.","status":429}')
  assert.equal(pb3.status, 200)
  assert.equal(realtime.size, 2, 'the refused GET made no client')
  pb1.close()
  pb3.close()
  await within(waitFor(() => realtime.size === 0, 5000, 'clients gone'), 6000, 'clients gone')
})

/** GET with headers; resolves { status, close } once the head arrived. */
function getWith (port, path, headers) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      if (res.statusCode !== 200) res.resume()
      resolve({ status: res.statusCode, close: () => res.destroy() })
    }).on('error', reject)
  })
}

for (const framework of ['Fastify', 'Express']) {
  test(`${framework}: maxConnectionsPerIp counts the client address the framework's trust-proxy setting gives`, async (t) => {
    const hubOptions = { threads: 1, maxConnectionsPerIp: 1, heartbeatMs: 0 }
    let hub, port
    if (framework === 'Fastify') {
      const defer = cleanup(t)
      hub = new Hub(hubOptions)
      defer(() => hub.close(), 'hub.close()')
      const app = Fastify({ trustProxy: true })
      await app.register(sseFanout, { hub })
      app.get('/events', (request, reply) => { reply.sse({ topics: ['t'] }) })
      await app.listen({ port: 0, host: '127.0.0.1' })
      defer(() => app.close(), 'app.close()')
      port = app.server.address().port
    } else {
      ;({ hub, port } = await startHub(t, {
        hub: hubOptions,
        handler: (hub) => {
          const app = express()
          app.set('trust proxy', true)
          app.get('/events', sse(hub, { topics: ['t'] }))
          app.use((err, req, res, next) => { res.status(err.statusCode || 500).end(err.code) })
          return app
        }
      }))
    }
    // Every request comes from 127.0.0.1, through a proxy that names the client.
    const a = await getWith(port, '/events', { 'x-forwarded-for': '203.0.113.1' })
    const b = await getWith(port, '/events', { 'x-forwarded-for': '203.0.113.2' })
    const a2 = await getWith(port, '/events', { 'x-forwarded-for': '203.0.113.1' })
    assert.deepEqual([a.status, b.status, a2.status], [200, 200, 429])
    assert.deepEqual(Object.fromEntries(hub._perIp), { '203.0.113.1': 1, '203.0.113.2': 1 })
    for (const c of [a, b]) c.close()
    await waitFor(() => hub.stats().connections === 0, 5000, 'streams gone')
  })
}
