'use strict'
// Hardening of the PocketBase realtime layer, over real sockets on the three
// app kinds (Fastify, Express, node:http):
//  - cross-site POSTs: form and text/plain bodies are refused unless allowFormBodies;

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { post, assertPbError } = require('../helpers/pb-http')
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

