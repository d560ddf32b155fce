'use strict'
// Hardening of the PocketBase realtime layer, over real sockets on the three
// app kinds (Fastify, Express, node:http):
//  - cross-site POSTs: form and text/plain bodies are refused unless allowFormBodies;
//  - clientIp gets the request authenticate gets, on GET and POST; a result that
//    is not a non-empty string is an error (500, requestError), never a pass;

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { post, assertPbError, openStream } = require('../helpers/pb-http')
const { KINDS, startApp } = require('../helpers/pb-app')

const GENERIC_400 = 'Something went wrong while processing your request.'
const VICTIM = { id: 'victim000000001', collectionId: 'pbc_1736455494', collectionName: 'users' }
// An app whose authenticate reads a session cookie: what a cross-site POST carries.
const byCookie = (req) => (/(?:^|;\s*)session=victim(?:;|$)/.test(String(req.headers.cookie || '')) ? VICTIM : null)

for (const kind of KINDS) {
  test(`${kind}: a cross-site form or text/plain POST binds nothing; forms only with allowFormBodies`, async (t) => {
    const { connect, realtime, port } = await startApp(t, kind, { authenticate: byCookie })
    const s = await connect()
    const cookie = { cookie: 'session=victim' }
    const form = `clientId=${s.cid}&subscriptions=notes%2F*`
    assertPbError(await post(port, form, { type: 'application/x-www-form-urlencoded', headers: cookie }), 400, GENERIC_400, {}, 'form')
    assertPbError(await post(port, form, { type: 'application/x-www-form-urlencoded; charset=UTF-8', headers: cookie }), 400, GENERIC_400, {}, 'form with charset')
    const json = JSON.stringify({ clientId: s.cid, subscriptions: ['notes/*'] })
    assertPbError(await post(port, json, { type: 'text/plain', headers: cookie }), 400, GENERIC_400, {}, 'text/plain')
    assert.equal(realtime.client(s.cid).auth, null, 'not bound to the victim')
    assert.deepEqual(realtime.client(s.cid).subscriptions, [])
    // JSON (which needs a preflight cross-origin) binds as before.
    assert.equal((await post(port, json, { headers: cookie })).status, 204)
    assert.equal(realtime.client(s.cid).auth.id, VICTIM.id)

    const open = await startApp(t, kind, { authenticate: byCookie, allowFormBodies: true })
    const s2 = await open.connect()
    const res = await post(open.port, `clientId=${s2.cid}&subscriptions=a`, { type: 'application/x-www-form-urlencoded' })
    assert.equal(res.status, 204, res.body)
    assert.deepEqual(open.realtime.client(s2.cid).subscriptions, ['a'])
    assert.equal(open.realtime.options.allowFormBodies, true)
    assert.equal(realtime.options.allowFormBodies, false, 'off by default')
  })
}

for (const kind of KINDS) {
  test(`${kind}: clientIp gets the framework's request on GET and POST; a non-string is a 500, not a pass`, async (t) => {
    const seen = []
    // Fastify's request and Express's req have .ip; node:http's req has not.
    const clientIp = (request) => { seen.push(request); return request.ip }
    const authenticate = (request) => { seen.push(request); return null }
    const { connect, realtime, port } = await startApp(t, kind, { clientIp, authenticate })
    const errors = []
    realtime.on('requestError', (err) => errors.push(err))
    if (kind === 'http') {
      const s = await openStream(port)
      t.after(() => s.close())
      assertPbError({ status: s.status, headers: s.headers, body: await bodyOf(s) }, 500, GENERIC_400, {}, 'GET')
      assert.equal(realtime.size, 0)
      assert.equal(errors.length, 1)
      assert.equal(errors[0].code, 'ERR_SSE_INVALID_ARGUMENT')
      assert.match(errors[0].message, /options\.clientIp/)
      return
    }
    const s = await connect({ localAddress: '127.0.0.1' })
    assertPbError(await post(port, { clientId: s.cid, subscriptions: ['a'] }, { localAddress: '127.0.0.2' }), 400,
      'Invalid realtime client.', {}, 'POST from another IP')
    assert.deepEqual(realtime.client(s.cid).subscriptions, [])
    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['a'] })).status, 204)
    assert.ok(seen.length >= 4)
    for (const request of seen) {
      if (kind === 'fastify') assert.ok(request.raw && request.raw !== request, 'a Fastify request, not the IncomingMessage')
      assert.match(request.ip, /^127\.0\.0\.[12]$/)
    }
    assert.equal(seen.filter((r) => r.method === 'GET').length, 1, 'clientIp on the GET')
    assert.deepEqual(errors, [])

    // undefined from clientIp on a POST: 500 and requestError.
    const broken = await startApp(t, kind, { clientIp: (request) => (request.method === 'GET' ? '127.0.0.1' : undefined) })
    const b = await broken.connect()
    const brokenErrors = []
    broken.realtime.on('requestError', (err) => brokenErrors.push(err))
    assertPbError(await post(broken.port, { clientId: b.cid, subscriptions: ['a'] }), 500, GENERIC_400, {}, 'POST')
    assert.deepEqual(broken.realtime.client(b.cid).subscriptions, [])
    assert.equal(brokenErrors.length, 1)
    assert.match(brokenErrors[0].message, /options\.clientIp/)
  })
}

function bodyOf (s) {
  return new Promise((resolve) => {
    if (s.ended) resolve(s.raw)
    else setTimeout(() => resolve(bodyOf(s)), 20)
  })
}

test('express: a body parsed by express.urlencoded() is refused without allowFormBodies', async (t) => {
  const express = require('express')
  const http = require('node:http')
  const { Realtime, expressRealtime } = require('../../lib/pocketbase')
  const { openStream } = require('../helpers/pb-http')
  const { cleanup } = require('../helpers/wait')
  const defer = cleanup(t)
  const realtime = new Realtime({ authenticate: byCookie })
  const app = express()
  app.use(express.urlencoded({ extended: false }))
  app.use(express.json({ type: () => true })) // a parser that ignores the content type
  app.use(expressRealtime(realtime))
  const server = http.createServer(app)
  await new Promise((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  defer(async () => {
    await realtime.close()
    await new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
  }, 'close')
  const port = server.address().port
  const s = await openStream(port)
  defer(() => s.close(), 'close stream')
  await s.connected()
  const cookie = { cookie: 'session=victim' }
  assertPbError(await post(port, `clientId=${s.cid}&subscriptions=a`, { type: 'application/x-www-form-urlencoded', headers: cookie }),
    400, GENERIC_400, {}, 'parsed form')
  assertPbError(await post(port, { clientId: s.cid, subscriptions: ['a'] }, { type: 'text/plain', headers: cookie }),
    400, GENERIC_400, {}, 'text/plain parsed as JSON')
  assert.equal(realtime.client(s.cid).auth, null)
  assert.equal((await post(port, { clientId: s.cid, subscriptions: ['a'] }, { headers: cookie })).status, 204)
  assert.equal(realtime.client(s.cid).auth.id, VICTIM.id)
})

