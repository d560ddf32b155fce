'use strict'
// Hardening of the PocketBase realtime layer, over real sockets on the three
// app kinds (Fastify, Express, node:http):
//  - cross-site POSTs: form and text/plain bodies are refused unless allowFormBodies;
//  - clientIp gets the request authenticate gets, on GET and POST; a result that
//    is not a non-empty string is an error (500, requestError), never a pass;
//  - identities are unambiguous when ids hold '/'; updateAuth, revokeAuth, clientsOf;
//  - authorizeTopic keeps refused subscriptions out (custom and record topics alike);
//  - publish/sendToClient refuse what encodes past maxQueueBytes (with the id line)
//    instead of dropping every subscriber as slow;
//  - a record with id "*" is refused (it would pass "C/*" under the view rule);
//  - after close() on a shared hub: 503s, ERR_SSE_CLOSED, no client kept; close() idempotent;
//  - heartbeats on by default (the Hub's 15 s), hubOptions.heartbeatMs: 0 turns them off;
//  - the examples, run as child processes: the demo's /publish needs PUBLISH_TOKEN's
//    bearer token when set; the PocketBase example caps body and field sizes.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { post, assertPbError, openStream } = require('../helpers/pb-http')
const { KINDS, startApp, received, startExpressWithParsers } = require('../helpers/pb-app')
const { waitFor } = require('../helpers/wait')
const { startExample } = require('../helpers/pb-example')

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

const USERS_ID = 'pbc_1736455494'
const NOTES = { name: 'notes', id: 'pbc_3395098727', listRule: 'owner = @request.auth.id', viewRule: 'owner = @request.auth.id' }
const STAFF = { name: 'staff', id: 'pbc_5000000001', listRule: '@request.auth.role = "admin"', viewRule: '@request.auth.role = "admin"' }
// Tokens name auth records; the test changes the table to refresh them.
const byToken = (table) => (request) => table[String(request.headers.authorization || '')] || null

for (const kind of KINDS) {
  test(`${kind}: ids with '/' make distinct identities (a/b + c is not a + b/c)`, async (t) => {
    const table = {
      one: { id: 'c', collectionId: 'a/b', collectionName: 'users' },
      two: { id: 'b/c', collectionId: 'a', collectionName: 'users' }
    }
    const { connect, realtime, port, barrier } = await startApp(t, kind, { authenticate: byToken(table) })
    const s1 = await connect()
    const s2 = await connect()
    assert.equal((await post(port, { clientId: s1.cid, subscriptions: ['notes/*'] }, { auth: 'one' })).status, 204)
    assertPbError(await post(port, { clientId: s1.cid, subscriptions: ['notes/*'] }, { auth: 'two' }), 403,
      "The current and the previous request authorization don't match.", {}, 'the other identity')
    assert.equal((await post(port, { clientId: s2.cid, subscriptions: ['notes/*'] }, { auth: 'two' })).status, 204)
    realtime.broadcastRecord(NOTES, 'create', { id: 'note00000000001', owner: 'c' })
    realtime.broadcastRecord(NOTES, 'create', { id: 'note00000000002', owner: 'b/c' })
    await barrier(s1)
    await barrier(s2)
    const owners = (s) => received(s).map(([, data]) => JSON.parse(data).record.owner)
    assert.deepEqual(owners(s1), ['c'], "one's notes only")
    assert.deepEqual(owners(s2), ['b/c'], "two's notes only")
    assert.deepEqual(realtime.clientsOf('a/b', 'c'), [s1.cid])
    assert.deepEqual(realtime.clientsOf('a', 'b/c'), [s2.cid])
  })

  test(`${kind}: updateAuth refreshes and revokeAuth unbinds every live client of an identity`, async (t) => {
    const table = {
      tokenA: { id: 'usera0000000001', collectionId: USERS_ID, collectionName: 'users', role: 'member' },
      tokenB: { id: 'userb0000000002', collectionId: USERS_ID, collectionName: 'users', role: 'member' }
    }
    const { connect, realtime, port, barrier } = await startApp(t, kind, { authenticate: byToken(table) })
    const a1 = await connect()
    const a2 = await connect()
    const b = await connect()
    const subs = ['staff/*', 'notes/*', 'custom']
    for (const [s, auth] of [[a1, 'tokenA'], [a2, 'tokenA'], [b, 'tokenB']]) {
      assert.equal((await post(port, { clientId: s.cid, subscriptions: subs }, { auth })).status, 204)
    }
    assert.deepEqual(realtime.clientsOf(USERS_ID, 'usera0000000001').sort(), [a1.cid, a2.cid].sort())
    assert.deepEqual(realtime.clientsOf(USERS_ID, 'nobody'), [])
    const staffNote = (n) => realtime.broadcastRecord(STAFF, 'create', { id: `staff0000000000${n}`, text: String(n) })
    staffNote(1)
    for (const s of [a1, a2, b]) await barrier(s)
    for (const s of [a1, a2, b]) assert.deepEqual(received(s), [], 'members see no staff records')

    // A promoted: its live clients see staff records from now on; B does not.
    assert.equal(realtime.updateAuth({ ...table.tokenA, role: 'admin' }), 2)
    assert.equal(realtime.client(a1.cid).auth.role, 'admin')
    assert.deepEqual(realtime.client(a1.cid).subscriptions.sort(), [...subs].sort(), 'subscriptions kept')
    staffNote(2)
    for (const s of [a1, a2, b]) await barrier(s)
    for (const s of [a1, a2]) assert.deepEqual(received(s).map(([e]) => e), ['staff/*'])
    assert.deepEqual(received(b), [])
    assert.equal(realtime.updateAuth({ id: 'ghost', collectionId: USERS_ID }), 0, 'no live client')

    // A revoked: guests with the same subscriptions; owner-only notes stop, custom messages go on.
    assert.equal(realtime.revokeAuth(USERS_ID, 'usera0000000001'), 2)
    assert.deepEqual(realtime.clientsOf(USERS_ID, 'usera0000000001'), [])
    assert.equal(realtime.client(a1.cid).auth, null)
    assert.deepEqual(realtime.client(a1.cid).subscriptions.sort(), [...subs].sort())
    staffNote(3)
    realtime.broadcastRecord(NOTES, 'create', { id: 'note00000000001', owner: 'usera0000000001' })
    realtime.publish('custom', 'still here')
    for (const s of [a1, a2]) await barrier(s)
    for (const s of [a1, a2]) assert.deepEqual(received(s).map(([e]) => e), ['staff/*', 'custom'], 'as a guest')
    // A guest may bind again with a later POST.
    assert.equal((await post(port, { clientId: a1.cid, subscriptions: subs }, { auth: 'tokenA' })).status, 204)
    assert.equal(realtime.client(a1.cid).auth.id, 'usera0000000001')
    assert.deepEqual(realtime.clientsOf(USERS_ID, 'usera0000000001'), [a1.cid])
    assert.equal(realtime.revokeAuth(USERS_ID, 'usera0000000001'), 1)

    // A closed client leaves its identity's set.
    b.close()
    await waitFor(() => realtime.clientsOf(USERS_ID, 'userb0000000002').length === 0, 5000, 'b forgotten')
    assert.throws(() => realtime.updateAuth(null), { code: 'ERR_SSE_INVALID_ARGUMENT' })
    assert.throws(() => realtime.updateAuth({ id: 'x' }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
    assert.throws(() => realtime.revokeAuth(USERS_ID), { code: 'ERR_SSE_INVALID_ARGUMENT' })
    assert.throws(() => realtime.clientsOf('', 'x'), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  })
}

for (const kind of KINDS) {
  test(`${kind}: authorizeTopic keeps a refused subscription out; the POST still answers 204`, async (t) => {
    const table = { tokenA: { id: 'usera0000000001', collectionId: USERS_ID, collectionName: 'users', role: 'member' } }
    const asked = []
    // Async on Express, sync elsewhere: both forms are part of the API.
    const decide = (topic, { auth }) => !(topic === 'admin-only' || topic.startsWith('drafts/')) || auth?.role === 'admin'
    const authorizeTopic = (topic, context) => {
      asked.push([topic, context])
      return kind === 'express' ? Promise.resolve(decide(topic, context)) : decide(topic, context)
    }
    const { connect, realtime, port, barrier } = await startApp(t, kind, { authenticate: byToken(table), authorizeTopic })
    const refused = []
    realtime.on('invalidSubscription', (e) => refused.push([e.clientId, e.subscription, e.message]))
    const s = await connect()
    const subs = ['public', 'admin-only', 'drafts/*', 'posts/*', '', 'public']
    assert.equal((await post(port, { clientId: s.cid, subscriptions: subs }, { auth: 'tokenA' })).status, 204)
    assert.deepEqual(realtime.client(s.cid).subscriptions.sort(), ['posts/*', 'public'])
    assert.deepEqual(refused, [[s.cid, 'admin-only', 'refused by options.authorizeTopic'], [s.cid, 'drafts/*', 'refused by options.authorizeTopic']])
    assert.deepEqual(asked.map(([topic]) => topic), ['public', 'admin-only', 'drafts/*', 'posts/*'], 'once per distinct subscription')
    for (const [, context] of asked) {
      assert.equal(context.clientId, s.cid)
      assert.equal(context.auth.id, 'usera0000000001')
      assert.equal(context.request.headers.authorization, 'tokenA')
      if (kind === 'fastify') assert.ok(context.request.raw, "Fastify's request")
    }
    const DRAFTS = { name: 'drafts', id: 'pbc_6000000001', listRule: '', viewRule: '' }
    const send = () => {
      realtime.publish('admin-only', 'secret')
      realtime.publish('public', 'hello')
      realtime.broadcastRecord(DRAFTS, 'create', { id: 'draft0000000001' })
      realtime.broadcastRecord({ name: 'posts', listRule: '', viewRule: '' }, 'create', { id: 'post00000000001' })
    }
    send()
    await barrier(s)
    assert.deepEqual(received(s).map(([e]) => e), ['public', 'posts/*'])

    // Promoted: the subscriptions it asked for are authorized again with the new record.
    assert.equal(realtime.updateAuth({ ...table.tokenA, role: 'admin' }), 1)
    await waitFor(() => realtime.client(s.cid).subscriptions.length === 4, 5000, 'all four allowed')
    send()
    await barrier(s)
    assert.deepEqual(received(s).map(([e]) => e).slice(2), ['admin-only', 'public', 'drafts/*', 'posts/*'])
    // Revoked: a guest again, and the admin topics are refused again.
    assert.equal(realtime.revokeAuth(USERS_ID, 'usera0000000001'), 1)
    if (kind === 'express') {
      // Pending answers keep their topics out meanwhile (fail closed).
      assert.deepEqual(realtime.client(s.cid).subscriptions, [], 'at once: only what is already allowed')
      await waitFor(() => realtime.client(s.cid).subscriptions.length === 2, 5000, 'the guest topics back')
    }
    assert.deepEqual(realtime.client(s.cid).subscriptions.sort(), ['posts/*', 'public'])
    send()
    await barrier(s)
    assert.deepEqual(received(s).map(([e]) => e).slice(6), ['public', 'posts/*'])
    assert.equal(asked.at(-1)[1].auth, null)

    // setSubscriptions asks too (a promise when the answer is one).
    const result = realtime.setSubscriptions(s.cid, ['admin-only', 'public'])
    if (kind === 'express') await result
    else assert.equal(result, undefined)
    assert.deepEqual(realtime.client(s.cid).subscriptions, ['public'])
  })

  test(`${kind}: an authorizeTopic that throws fails the POST with 500 and requestError; nothing changes`, async (t) => {
    const authorizeTopic = (topic) => {
      if (topic === 'boom') throw new Error('authorizer failed')
      if (topic === 'later-boom') return Promise.reject(new Error('authorizer failed later'))
      return true
    }
    const { connect, realtime, port } = await startApp(t, kind, { authorizeTopic })
    const errors = []
    realtime.on('requestError', (err) => errors.push(err.message))
    const s = await connect()
    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['a'] })).status, 204)
    assertPbError(await post(port, { clientId: s.cid, subscriptions: ['b', 'boom'] }), 500, GENERIC_400, {}, 'throws')
    assertPbError(await post(port, { clientId: s.cid, subscriptions: ['b', 'later-boom'] }), 500, GENERIC_400, {}, 'rejects')
    assert.deepEqual(errors, ['authorizer failed', 'authorizer failed later'])
    assert.deepEqual(realtime.client(s.cid).subscriptions, ['a'])
  })
}

for (const kind of KINDS) {
  test(`${kind}: publish and sendToClient size the encoded frame with its id line; no subscriber is dropped`, async (t) => {
    const maxQueueBytes = 64 * 1024
    const { connect, realtime, port, barrier } = await startApp(t, kind, { hubOptions: { maxQueueBytes } })
    const dropped = []
    realtime.on('disconnect', (e) => dropped.push(e))
    const streams = [await connect(), await connect()]
    for (const s of streams) assert.equal((await post(port, { clientId: s.cid, subscriptions: ['big'] })).status, 204)
    // Raw, just under the limit; encoded, one "data:" line per break: about 6 times larger.
    const breaks = '\n'.repeat(maxQueueBytes - 1000)
    assert.throws(() => realtime.publish('big', breaks), { code: 'ERR_SSE_DATA_TOO_LARGE' })
    assert.throws(() => realtime.sendToClient(streams[0].cid, breaks, { event: 'big' }), { code: 'ERR_SSE_DATA_TOO_LARGE' })
    // The largest message that fits an empty queue whatever the stream id: event:big\n data:<n>\n \n,
    // chunk framing (18 + 2) twice, and "id: " + 256 bytes + "\n".
    const fits = maxQueueBytes - (10 + 6 + 1) - 20 - 261 - 20
    realtime.publish('big', 'x'.repeat(fits))
    assert.throws(() => realtime.publish('big', 'x'.repeat(fits + 1)), { code: 'ERR_SSE_DATA_TOO_LARGE' })
    for (const s of streams) await barrier(s)
    for (const s of streams) {
      assert.deepEqual(received(s).map(([e, data]) => [e, data.length]), [['big', fits]])
    }
    assert.deepEqual(dropped, [], 'nobody dropped as slow')
    assert.equal(realtime.size, 2)
  })
}

test('http: broadcastRecord refuses a record with id "*"; nothing reaches "C/*" subscribers', async (t) => {
  const { connect, realtime, port, barrier } = await startApp(t, 'http')
  // Everyone may view one record by id; nobody but superusers may list.
  const LISTLESS = { name: 'listless', id: 'pbc_7000000001', listRule: null, viewRule: '' }
  const s = await connect()
  assert.equal((await post(port, { clientId: s.cid, subscriptions: ['listless/*', 'listless/r1'] })).status, 204)
  assert.throws(() => realtime.broadcastRecord(LISTLESS, 'create', { id: '*', secret: 'all of them' }),
    { code: 'ERR_SSE_INVALID_ARGUMENT', message: /record\.id/ })
  realtime.broadcastRecord(LISTLESS, 'create', { id: 'r1' })
  await barrier(s)
  assert.deepEqual(received(s).map(([e, data]) => [e, JSON.parse(data).record.id]), [['listless/r1', 'r1']])
})

for (const kind of KINDS) {
  test(`${kind}: a Realtime closed on a shared hub takes no more clients; close() is idempotent`, async (t) => {
    const { Hub } = require('../..')
    const hub = new Hub({ threads: 1 })
    t.after(() => hub.close())
    const { connect, realtime, port } = await startApp(t, kind, { hub })
    const s = await connect()
    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['a'] })).status, 204)
    const first = realtime.close()
    assert.equal(realtime.close(), first, 'the same promise')
    await first
    await realtime.close()
    assert.equal(realtime.closed, true)
    assert.equal(hub.closed, false, 'the shared hub stays open')
    await waitFor(() => s.ended, 5000, 'the stream ended')

    const late = await openStream(port)
    t.after(() => late.close())
    await waitFor(() => late.ended, 5000, 'the 503 body')
    assert.equal(late.status, 503)
    assert.equal(JSON.parse(late.raw).status, 503)
    assertPbError(await post(port, { clientId: s.cid, subscriptions: ['b'] }), 503, 'the realtime is closed', {}, 'POST')
    assert.equal(realtime.size, 0, 'no client entry kept')
    const closed = { code: 'ERR_SSE_CLOSED' }
    assert.throws(() => realtime.setSubscriptions(s.cid, ['a']), closed)
    assert.throws(() => realtime.broadcastRecord({ name: 'posts', listRule: '' }, 'create', { id: 'r1' }), closed)
    assert.throws(() => realtime.publish('a', 'x'), closed)
    assert.throws(() => realtime.sendToClient(s.cid, 'x', { event: 'e' }), closed)
    assert.throws(() => realtime.updateAuth({ id: 'u', collectionId: 'c' }), closed)
    assert.throws(() => realtime.revokeAuth('c', 'u'), closed)
    assert.deepEqual(realtime.clientsOf('c', 'u'), [])
    assert.equal(hub.stats().connections, 0, 'nothing left on the hub')
  })
}

for (const kind of KINDS) {
  test(`${kind}: a Realtime's own hub sends heartbeats by default; hubOptions.heartbeatMs: 0 turns them off`, async (t) => {
    const plain = await startApp(t, kind, {})
    assert.equal(plain.realtime.hub.options.heartbeatMs, 15000, 'the Hub default')
    const off = await startApp(t, kind, { hubOptions: { heartbeatMs: 0 } })
    assert.equal(off.realtime.hub.options.heartbeatMs, 0)

    const fast = await startApp(t, kind, { hubOptions: { heartbeatMs: 50 } })
    const s = await fast.connect()
    await waitFor(() => /\n:[^\n]*\n\n/.test(s.raw), 5000, 'a heartbeat comment')
    assert.deepEqual(s.events.map((e) => e.event), ['PB_CONNECT'], 'comments are no events')
    // The id line goes with events only, not with comments.
    assert.ok(s.raw.split('\n\n').filter((b) => b.startsWith(':')).every((b) => !b.includes('id:')))
    const quiet = await off.connect()
    await new Promise((resolve) => setTimeout(resolve, 300))
    assert.ok(!quiet.raw.includes('\n:'), 'no heartbeat with heartbeatMs: 0')
  })
}

test('demo-server: with PUBLISH_TOKEN, POST /publish needs the bearer token (401 otherwise); it says what is open', async (t) => {
  const { url, output } = await startExample(t, 'examples/demo-server.js', { PUBLISH_TOKEN: 's3cret' })
  // The address line comes first; wait for the lines that say what is open.
  await waitFor(() => /POST \/publish needs Authorization: Bearer/.test(output()) && /open: GET \/events/.test(output()), 5000,
    () => `the demo says what is open (output: ${output()})`)
  const events = []
  const stream = await new Promise((resolve, reject) => {
    const req = require('node:http').get(`${url}/events?topics=news`, (res) => {
      res.setEncoding('utf8')
      res.on('data', (c) => events.push(c))
      resolve(req)
    })
    req.on('error', reject)
  })
  t.after(() => stream.destroy())
  const publish = (headers, body = 'hello') => fetch(`${url}/publish?topic=news`, { method: 'POST', headers, body })
  for (const [headers, what] of [[{}, 'no token'], [{ authorization: 'Bearer wrong!' }, 'a wrong token'],
    [{ authorization: 's3cret' }, 'no Bearer'], [{ 'content-type': 'text/plain' }, 'a cross-site simple POST']]) {
    const res = await publish(headers, 'forged')
    assert.equal(res.status, 401, what)
    assert.deepEqual(await res.json(), { error: 'unauthorized' }, what)
  }
  const ok = await publish({ authorization: 'Bearer s3cret' })
  assert.equal(ok.status, 202)
  const body = await ok.json()
  assert.equal(body.ok, true, 'the shape as before')
  assert.match(body.id, /^[A-Za-z0-9]{8}-1$/, 'with the event id (the demo runs with history on)')
  await waitFor(() => events.join('').includes('data: hello') || events.join('').includes('data:hello'), 5000, 'the event')
  assert.ok(!events.join('').includes('forged'))
  const empty = await publish({ authorization: 'Bearer s3cret' }, undefined)
  assert.equal(empty.status, 202, 'an empty body is still an event, as before')

  // Without the token it says plainly that publishing is open.
  const open = await startExample(t, 'examples/demo-server.js', { PUBLISH_TOKEN: '' })
  await waitFor(() => /open: POST \/publish to anyone/.test(open.output()), 5000, () => `the demo says /publish is open (output: ${open.output()})`)
  const res = await fetch(`${open.url}/publish?topic=news`, { method: 'POST', body: 'x' })
  assert.equal(res.status, 202)
})

test('pocketbase-server example: body and field sizes are capped (413, 400); it says what is open', async (t) => {
  const { url, output } = await startExample(t, 'examples/pocketbase-server.js')
  await waitFor(() => /open: anyone who can reach it may sign up/.test(output()), 5000, () => `the example says what is open (output: ${output()})`)
  const create = (body) => fetch(`${url}/api/collections/posts/records`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body)
  })
  const ok = await create({ title: 't'.repeat(4998) }) // 5000 characters as JSON
  assert.equal(ok.status, 200, await ok.clone().text())
  const id = (await ok.json()).id
  const long = await create({ title: 't'.repeat(4999) })
  assert.equal(long.status, 400)
  assert.deepEqual(await long.json(), {
    data: { title: { code: 'validation_max_text_constraint', message: 'Must be less than 5000 character(s).' } },
    message: 'Failed to create record.',
    status: 400
  })
  const nested = await create({ blob: { deep: 'x'.repeat(6000) } })
  assert.equal(nested.status, 400, 'any value, as JSON')
  const many = await create(Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`f${i}`, i])))
  assert.equal(many.status, 400)
  assert.equal((await many.json()).status, 400)
  const huge = await create({ a: 'x'.repeat(40000), b: 'y'.repeat(40000) })
  assert.equal(huge.status, 413)
  assert.equal((await huge.json()).status, 413)
  const patch = await fetch(`${url}/api/collections/posts/records/${id}`, {
    method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'u'.repeat(6000) })
  })
  assert.equal(patch.status, 400)
  assert.equal((await patch.json()).message, 'Failed to update record.')
  const list = await (await fetch(`${url}/api/collections/posts/records`)).json()
  assert.equal(list.totalItems, 1, 'only the record within the caps')
})

function bodyOf (s) {
  return new Promise((resolve) => {
    if (s.ended) resolve(s.raw)
    else setTimeout(() => resolve(bodyOf(s)), 20)
  })
}

test('express: a body parsed by express.urlencoded() is refused without allowFormBodies', async (t) => {
  const { Realtime } = require('../../lib/pocketbase')
  const realtime = new Realtime({ authenticate: byCookie })
  // express.json({ type: () => true }) is a parser that ignores the content type.
  const { port, s } = await startExpressWithParsers(t, realtime,
    (express) => [express.urlencoded({ extended: false }), express.json({ type: () => true })])
  const cookie = { cookie: 'session=victim' }
  assertPbError(await post(port, `clientId=${s.cid}&subscriptions=a`, { type: 'application/x-www-form-urlencoded', headers: cookie }),
    400, GENERIC_400, {}, 'parsed form')
  assertPbError(await post(port, { clientId: s.cid, subscriptions: ['a'] }, { type: 'text/plain', headers: cookie }),
    400, GENERIC_400, {}, 'text/plain parsed as JSON')
  assert.equal(realtime.client(s.cid).auth, null)
  assert.equal((await post(port, { clientId: s.cid, subscriptions: ['a'] }, { headers: cookie })).status, 204)
  assert.equal(realtime.client(s.cid).auth.id, VICTIM.id)
})
