'use strict'
// The browser module (lib/client/index.mjs) served over real HTTP on
// 127.0.0.1:0: serveClient() for node:http, the Fastify plugin's clientPath,
// client() of sse-fanout/express, and the demo at /sse-fanout-client.js.
// Each answers the exact bytes of the file with the same headers and ETag,
// 304 for a matching If-None-Match, HEAD without a body, and other methods
// as the framework does (405 from serveClient, 404 from Fastify and Express).
// Plus the file helper itself: read once, a failed read not kept.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const http = require('node:http')
const { once } = require('node:events')
const Fastify = require('fastify')
const cors = require('@fastify/cors')
const express = require('express')
const sseFanout = require('sse-fanout/fastify')
const { client } = require('sse-fanout/express')
const { Hub, serveClient } = require('sse-fanout')
const { servedFile, CLIENT_PATH } = require('../../lib/client-file')
const { startExample } = require('../helpers/pb-example')

const BYTES = fs.readFileSync(CLIENT_PATH)
const ETAG = /^"[A-Za-z0-9_-]{43}"$/ // a strong tag: sha256, base64url

async function listen (t, handler) {
  const server = http.createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }))
  return `http://127.0.0.1:${server.address().port}`
}

async function get (url, options = {}) {
  const res = await fetch(url, { ...options, signal: AbortSignal.timeout(5000) })
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) }
}

/** Asserts the 200 answer to a GET: the file's bytes and the headers. Returns the ETag. */
function assertModule (res, what) {
  assert.equal(res.status, 200, what)
  assert.ok(res.body.equals(BYTES), `${what}: the exact bytes of lib/client/index.mjs`)
  assert.equal(res.headers.get('content-type'), 'text/javascript; charset=utf-8', what)
  assert.equal(res.headers.get('content-length'), String(BYTES.length), what)
  assert.equal(res.headers.get('cache-control'), 'no-cache', what)
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff', what)
  const etag = res.headers.get('etag')
  assert.match(etag, ETAG, what)
  return etag
}

/**
 * The GET/HEAD/If-None-Match contract at url; returns the ETag. `other` is
 * the status a POST gets.
 */
async function assertServes (url, other, what) {
  const etag = assertModule(await get(url), what)
  for (const inm of [etag, `W/${etag}`, `"nope", ${etag}`, '*']) {
    const res = await get(url, { headers: { 'if-none-match': inm } })
    assert.equal(res.status, 304, `${what}: If-None-Match ${inm}`)
    assert.equal(res.body.length, 0, `${what}: a 304 has no body`)
    assert.equal(res.headers.get('etag'), etag, `${what}: the 304 names the ETag`)
    assert.equal(res.headers.get('cache-control'), 'no-cache', what)
  }
  assertModule(await get(url, { headers: { 'if-none-match': '"nope"' } }), `${what}: another ETag`)
  const head = await get(url, { method: 'HEAD' })
  assert.equal(head.status, 200, `${what}: HEAD`)
  assert.equal(head.body.length, 0, `${what}: HEAD has no body`)
  assert.equal(head.headers.get('content-length'), String(BYTES.length), `${what}: HEAD says the length`)
  assert.equal(head.headers.get('etag'), etag, `${what}: HEAD`)
  assert.equal(head.headers.get('content-type'), 'text/javascript; charset=utf-8', `${what}: HEAD`)
  const post = await get(url, { method: 'POST', body: 'x' })
  assert.equal(post.status, other, `${what}: POST`)
  return etag
}

/** A real Hub with history on, closed after the test. */
function historyHub (t) {
  const hub = new Hub({ threads: 1, history: true })
  t.after(() => hub.close())
  return hub
}

test('the served bytes are an ES module exporting SseClient', async () => {
  const mod = await import(`data:text/javascript;base64,${BYTES.toString('base64')}`)
  assert.equal(typeof mod.SseClient, 'function')
})

test('node:http: serveClient() answers GET, HEAD and If-None-Match; 405 with Allow for other methods', async (t) => {
  const hub = historyHub(t)
  const url = await listen(t, (req, res) => {
    if (req.url === '/sse-fanout-client.js') return serveClient(req, res)
    if (req.url.startsWith('/poll')) return hub.poll(req, res)
    res.writeHead(404).end()
  })
  await assertServes(`${url}/sse-fanout-client.js`, 405, 'node:http')
  const put = await fetch(`${url}/sse-fanout-client.js`, { method: 'PUT', body: 'x'.repeat(100000) })
  assert.equal(put.status, 405)
  assert.equal(put.headers.get('allow'), 'GET, HEAD')
  // The hub's own endpoint beside it still answers (the same server, history on).
  assert.equal((await get(`${url}/poll?topics=a`)).status, 200)
  assert.throws(() => serveClient(null, {}), { code: 'ERR_SSE_INVALID_ARGUMENT' })
})

test('node:http: a cache-control the app set before is kept; other headers it set are sent too', async (t) => {
  const url = await listen(t, (req, res) => {
    res.setHeader('cache-control', 'public, max-age=31536000, immutable')
    res.setHeader('access-control-allow-origin', '*')
    serveClient(req, res)
  })
  for (const headers of [{}, { 'if-none-match': '*' }]) {
    const res = await get(`${url}/v1/client.js`, { headers })
    assert.equal(res.headers.get('cache-control'), 'public, max-age=31536000, immutable')
    assert.equal(res.headers.get('access-control-allow-origin'), '*')
  }
})

test('servedFile: read once (a change on disk is not seen), a failed read answers 500 and is tried again', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sse-client-'))
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'client.mjs')
  const served = servedFile(file)
  const url = await listen(t, (req, res) => served.answer(req, res))

  const missing = await get(url)
  assert.equal(missing.status, 500)
  assert.equal(missing.body.toString(), 'Internal Server Error')

  fs.writeFileSync(file, 'export const a = 1\n')
  const first = await get(url)
  assert.equal(first.status, 200, 'the failure was not kept')
  assert.equal(first.body.toString(), 'export const a = 1\n')
  fs.writeFileSync(file, 'export const a = 2\n')
  const second = await get(url)
  assert.equal(second.body.toString(), 'export const a = 1\n', 'read once')
  assert.equal(second.headers.get('etag'), first.headers.get('etag'))

  const fresh = await get(await listen(t, (req, res) => servedFile(file).answer(req, res)))
  assert.equal(fresh.body.toString(), 'export const a = 2\n')
  assert.notEqual(fresh.headers.get('etag'), first.headers.get('etag'), 'the ETag follows the bytes')
})

/** A Fastify app on 127.0.0.1:0 with the plugin; setup runs before it, routes after it. */
async function fastifyApp (t, plugin, { setup, routes } = {}) {
  const app = Fastify({ logger: false })
  t.after(() => app.close())
  if (setup) await setup(app)
  await app.register(sseFanout, plugin)
  if (routes) routes(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  return { app, url: `http://127.0.0.1:${app.server.address().port}` }
}

test('fastify: clientPath adds a GET route (and HEAD) serving the module; other methods 404; hooks apply', async (t) => {
  const hub = historyHub(t)
  const { url } = await fastifyApp(t, { hub, clientPath: '/sse-fanout-client.js' }, {
    setup: (app) => app.register(cors),
    routes: (app) => app.get('/poll', (request, reply) => reply.ssePoll({ topics: 'a' }))
  })
  const etag = await assertServes(`${url}/sse-fanout-client.js`, 404, 'fastify')
  const res = await get(`${url}/sse-fanout-client.js`, { headers: { origin: 'http://example.test' } })
  assert.equal(res.headers.get('access-control-allow-origin'), '*', '@fastify/cors applies to the route')
  assert.equal((await get(`${url}/poll`)).status, 200, 'the poll beside it, history on')

  const nodeUrl = await listen(t, serveClient)
  assert.equal((await get(nodeUrl)).headers.get('etag'), etag, 'the same ETag as serveClient()')
})

test('fastify: without clientPath nothing is served; a hook\'s cache-control is kept; a bad clientPath is refused', async (t) => {
  const hub = historyHub(t)
  const none = await fastifyApp(t, { hub })
  assert.equal((await get(`${none.url}/sse-fanout-client.js`)).status, 404)

  const { url } = await fastifyApp(t, { hub, clientPath: '/assets/client.js' }, {
    setup: (app) => app.addHook('onRequest', async (request, reply) => { reply.header('cache-control', 'public, max-age=60') })
  })
  const res = await get(`${url}/assets/client.js`)
  assert.ok(res.body.equals(BYTES))
  assert.equal(res.headers.get('cache-control'), 'public, max-age=60')

  for (const clientPath of ['sse-fanout-client.js', '', 5, null]) {
    const app = Fastify({ logger: false })
    t.after(() => app.close())
    app.register(sseFanout, { threads: 1, clientPath })
    await assert.rejects(app.ready(), { code: 'ERR_SSE_INVALID_ARGUMENT', message: /options\.clientPath/ }, String(clientPath))
  }
})

test('express: client() at the app\'s path serves the module; other methods reach Express\'s 404', async (t) => {
  const hub = historyHub(t)
  const { poll } = require('sse-fanout/express')
  const app = express()
  app.get('/sse-fanout-client.js', client())
  app.use('/mounted.js', client())
  app.get('/poll', poll(hub, { topics: 'a' }))
  const url = await listen(t, app)
  await assertServes(`${url}/sse-fanout-client.js`, 404, 'express app.get')
  await assertServes(`${url}/mounted.js`, 404, 'express app.use (next() for POST)')
  assert.equal((await get(`${url}/poll`)).status, 200, 'the poll beside it, history on')
  assert.equal(client().name, 'sseFanoutClient')
})

test('demo: the module at /sse-fanout-client.js (CORS *), the other routes as before', async (t) => {
  const { url } = await startExample(t, 'examples/demo-server.js', { PUBLISH_TOKEN: '' })
  await assertServes(`${url}/sse-fanout-client.js`, 405, 'demo')
  const res = await get(`${url}/sse-fanout-client.js`)
  assert.equal(res.headers.get('access-control-allow-origin'), '*')

  const published = await get(`${url}/publish?topic=news`, { method: 'POST', body: 'hello' })
  assert.equal(published.status, 202)
  const { id } = JSON.parse(published.body)
  const polled = await get(`${url}/poll?topics=news&since=${id.replace(/-\d+$/, '-0')}`)
  assert.equal(polled.status, 200)
  assert.deepEqual(JSON.parse(polled.body).events.map((e) => [e.id, e.data]), [[id, 'hello']])
  assert.equal((await get(`${url}/stats`)).status, 200)
  const missing = await get(`${url}/nope`)
  assert.equal(missing.status, 404)
  assert.deepEqual(JSON.parse(missing.body), { error: 'not found' })
})
