'use strict'
// The PocketBase realtime endpoints over raw HTTP (node:http clients, no SDK),
// the same assertions against three app kinds: Fastify with fastifyRealtime,
// Express with expressRealtime, and node:http with realtime.handler.
//  1. GET: status and headers, the exact PB_CONNECT bytes, 40-char distinct ids.
//  2. Record frames: `id:<cid>` first, `event:` = the subscription string as posted
//     (by name, by collection id, by record id, with ?options=), rules applied.
//  3. POST 204 with an empty body; every error row of the protocol, exact bodies:
//     unreadable body, validation (clientId, subscriptions count and length),
//     unknown client, IP mismatch, authorization mismatch; body size limit.
//  4. Replace-all semantics; form bodies (allowFormBodies).
// POCKETBASE.md (the protocol as PocketBase v0.39 speaks it) is the reference.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startRealtimeApp, openStream, post, assertPbError } = require('../helpers/pb-http')
const { waitFor } = require('../helpers/wait')
const { startApp, startExpressWithParsers } = require('../helpers/pb-app')

const KINDS = ['fastify', 'express', 'http']
const GENERIC_400 = 'Something went wrong while processing your request.'

const USERS = {
  tokenA: { id: 'usera0000000001', collectionId: 'pbc_1736455494', collectionName: 'users', email: 'a@example.com' },
  tokenB: { id: 'userb0000000002', collectionId: 'pbc_1736455494', collectionName: 'users', email: 'b@example.com' },
  tokenS: { id: 'super0000000003', collectionId: 'pbc_3142635823', collectionName: '_superusers', email: 's@example.com' }
}
const tokenOf = (req) => String(req.headers.authorization || '').replace(/^Bearer\s+/i, '')
// Sync for Fastify and node:http, async for Express: both forms are part of the API.
const authenticators = {
  fastify: (req) => USERS[tokenOf(req)] || null,
  express: async (req) => USERS[tokenOf(req)] || null,
  http: (req) => USERS[tokenOf(req)] || null
}

const POSTS = { name: 'posts', id: 'pbc_1125843985', listRule: '', viewRule: '' }
const SECRETS = { name: 'secrets', id: 'pbc_2000000001', listRule: null, viewRule: null }
const OWNED = { name: 'notes', id: 'pbc_3395098727', listRule: 'owner = @request.auth.id', viewRule: 'owner = @request.auth.id' }

const withOptions = (topic, query) => `${topic}?options=${encodeURIComponent(JSON.stringify({ query, headers: {} }))}`

/** A realtime app of `kind` with its authenticator (test/helpers/pb-app.js). */
function start (t, kind, options = {}) {
  return startApp(t, kind, { authenticate: authenticators[kind], ...options })
}

const subscriptionsOf = (realtime, cid) => [...realtime.client(cid).subscriptions].sort()

for (const kind of KINDS) {
  test(`${kind}: GET /api/realtime answers 200 text/event-stream and the exact PB_CONNECT frame`, async (t) => {
    const { connect, realtime, port } = await start(t, kind)
    const connects = []
    realtime.on('connect', (e) => connects.push(e.clientId))
    const s1 = await connect()
    const s2 = await connect()
    for (const s of [s1, s2]) {
      assert.equal(s.status, 200)
      assert.match(s.headers['content-type'], /^text\/event-stream/)
      assert.equal(s.headers['cache-control'], 'no-store')
      assert.equal(s.headers['x-accel-buffering'], 'no')
      assert.match(s.cid, /^[A-Za-z0-9]{40}$/)
      const first = `id:${s.cid}\nevent:PB_CONNECT\ndata:{"clientId":"${s.cid}"}\n\n`
      assert.equal(s.raw.slice(0, first.length), first, 'the first bytes are exactly the PB_CONNECT frame')
      assert.deepEqual(s.events[0], { event: 'PB_CONNECT', data: `{"clientId":"${s.cid}"}`, lastEventId: s.cid })
      const c = realtime.client(s.cid)
      assert.equal(c.clientId, s.cid)
      assert.deepEqual([...c.subscriptions], [])
      assert.ok(c.auth == null, 'not bound before the first POST')
    }
    assert.notEqual(s1.cid, s2.cid, 'two connections, two client ids')
    assert.deepEqual(connects.sort(), [s1.cid, s2.cid].sort())
    // No auth is read on the GET: a token there binds nothing.
    const s3 = await connect({ headers: { authorization: 'tokenA' } })
    assert.ok(realtime.client(s3.cid).auth == null)
    assert.equal((await post(port, { clientId: s3.cid, subscriptions: ['x'] })).status, 204, 'a guest POST is fine afterwards')
  })

  test(`${kind}: record frames start with id:<cid>; event: is the subscription as posted; rules and options apply`, async (t) => {
    const { connect, realtime, port, barrier } = await start(t, kind)
    const guest = await connect()
    const userA = await connect()
    const superuser = await connect()
    const rid = 'rec000000000001'
    const subs = [
      'posts/*',
      withOptions('posts/*', { filter: 'views > 10' }),
      withOptions('posts/*', { fields: 'id,title' }),
      `posts/${rid}`,
      `${POSTS.id}/*`, // by collection id
      'posts', // the deprecated bare form
      'secrets/*',
      'notes/*',
      'custom-topic',
      withOptions('posts/*', { filter: 'views >>> 1' }), // does not compile: receives nothing
      withOptions('posts/*', { filter: ' // only a comment' }) // refused as by PocketBase (fexpr.ErrEmpty): nothing
    ]
    const refused = subs.slice(-2)
    const invalid = []
    realtime.on('invalidSubscription', (e) => invalid.push(e))
    for (const [s, auth] of [[guest, undefined], [userA, 'tokenA'], [superuser, 'Bearer tokenS']]) {
      const res = await post(port, { clientId: s.cid, subscriptions: subs }, { auth })
      assert.equal(res.status, 204, res.body)
      assert.equal(res.body, '', '204 with an empty body')
      assert.deepEqual(subscriptionsOf(realtime, s.cid), subs.slice().sort())
    }
    assert.equal(realtime.client(userA.cid).auth.id, USERS.tokenA.id)

    const subEvents = []
    realtime.on('subscribe', (e) => subEvents.push(e))
    realtime.broadcastRecord(POSTS, 'create', { id: rid, title: 'hello', views: 20 })
    realtime.broadcastRecord(POSTS, 'update', { id: 'rec000000000002', title: 'quiet', views: 1 })
    realtime.broadcastRecord(SECRETS, 'create', { id: 'sec000000000001', text: 'for superusers' })
    realtime.broadcastRecord(OWNED, 'create', { id: 'not000000000001', owner: USERS.tokenA.id })
    realtime.broadcastRecord(OWNED, 'delete', { id: 'not000000000002', owner: USERS.tokenB.id })
    realtime.publish('custom-topic', { hi: 1 })
    for (const s of [guest, userA, superuser]) await barrier(s)

    const full = { id: rid, title: 'hello', views: 20, collectionId: POSTS.id, collectionName: 'posts' }
    const quiet = { id: 'rec000000000002', title: 'quiet', views: 1, collectionId: POSTS.id, collectionName: 'posts' }
    const postFrames = [
      ['posts/*', { action: 'create', record: full }],
      [subs[1], { action: 'create', record: full }],
      [subs[2], { action: 'create', record: { id: rid, title: 'hello' } }],
      [`posts/${rid}`, { action: 'create', record: full }],
      [`${POSTS.id}/*`, { action: 'create', record: full }],
      ['posts', { action: 'create', record: full }],
      ['posts/*', { action: 'update', record: quiet }],
      [subs[2], { action: 'update', record: { id: quiet.id, title: 'quiet' } }],
      [`${POSTS.id}/*`, { action: 'update', record: quiet }],
      ['posts', { action: 'update', record: quiet }]
    ]
    const expected = {
      guest: [...postFrames, ['custom-topic', { hi: 1 }]],
      userA: [...postFrames,
        ['notes/*', { action: 'create', record: { id: 'not000000000001', owner: USERS.tokenA.id, collectionId: OWNED.id, collectionName: 'notes' } }],
        ['custom-topic', { hi: 1 }]],
      superuser: [...postFrames,
        ['secrets/*', { action: 'create', record: { id: 'sec000000000001', text: 'for superusers', collectionId: SECRETS.id, collectionName: 'secrets' } }],
        ['notes/*', { action: 'create', record: { id: 'not000000000001', owner: USERS.tokenA.id, collectionId: OWNED.id, collectionName: 'notes' } }],
        ['notes/*', { action: 'delete', record: { id: 'not000000000002', owner: USERS.tokenB.id, collectionId: OWNED.id, collectionName: 'notes' } }],
        ['custom-topic', { hi: 1 }]]
    }
    const key = ([event, data]) => `${event} ${JSON.stringify(data, Object.keys(flatKeys(data)).sort())}`
    for (const [name, s] of Object.entries({ guest, userA, superuser })) {
      const got = s.events.slice(1).filter((e) => e.event !== 'barrier').map((e) => [e.event, JSON.parse(e.data)])
      // Frames of one record to different subscriptions may come in any order; compare as multisets.
      assert.deepEqual(got.map(key).sort(), expected[name].map(key).sort(), `${name} frames`)
      // Event order across records is kept: every frame of the create before any of the update.
      const actions = got.filter(([, d]) => d.action && d.record.collectionName === 'posts').map(([, d]) => d.action)
      assert.deepEqual(actions, [...actions].sort(), `${name}: creates before updates`)
      // Every frame after PB_CONNECT: id:<cid> first, then event:<subscription>.
      const frames = s.frames()
      assert.equal(frames.length, s.events.length)
      for (const [i, lines] of frames.entries()) {
        assert.equal(lines[0], `id:${s.cid}`, `${name} frame ${i} starts with id:<cid>: ${JSON.stringify(lines)}`)
        assert.equal(lines[1].replace(/^event: ?/, ''), s.events[i].event)
        assert.ok(lines[1].startsWith('event:'))
      }
    }
    assert.deepEqual(subEvents, [], "broadcasts emit no 'subscribe'")
    // The filters that do not compile were reported (once per client at most, whenever found).
    await waitFor(() => new Set(invalid.map((e) => e.subscription)).size === 2, 5000, "'invalidSubscription' for both")
    for (const e of invalid) {
      assert.ok(refused.includes(e.subscription), e.subscription)
      assert.ok([guest.cid, userA.cid, superuser.cid].includes(e.clientId))
      assert.equal(typeof e.message, 'string')
      assert.ok(e.message.length > 0)
    }
  })

  test(`${kind}: POST errors answer with PocketBase's exact bodies and change nothing`, async (t) => {
    const { connect, realtime, port } = await start(t, kind)
    const s = await connect()
    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['keep'] })).status, 204)

    for (const [body, what] of [['{"clientId": "abc", ', 'truncated JSON'], ['not json at all', 'not JSON'],
      [JSON.stringify({ clientId: 42, subscriptions: [] }), 'clientId not a string']]) {
      assertPbError(await post(port, body), 400, GENERIC_400, {}, what)
    }
    // A valid JSON body under a content type PocketBase does not bind (an empty one included).
    for (const type of ['', 'text/plain', 'application/xml']) {
      assertPbError(await post(port, { clientId: s.cid, subscriptions: ['other'] }, { type }), 400, GENERIC_400, {},
        `content-type ${JSON.stringify(type)}`)
    }

    const required = { clientId: { code: 'validation_required', message: 'Cannot be blank.' } }
    assertPbError(await post(port, { subscriptions: ['a'] }), 400, GENERIC_400, required, 'clientId missing')
    assertPbError(await post(port, { clientId: '', subscriptions: ['a'] }), 400, GENERIC_400, required, 'clientId blank')
    assertPbError(await post(port, { clientId: 'x'.repeat(256), subscriptions: ['a'] }), 400, GENERIC_400,
      { clientId: { code: 'validation_length_out_of_range', message: 'The length must be between 1 and 255.' } }, 'clientId of 256')
    assertPbError(await post(port, { clientId: 'x'.repeat(255), subscriptions: ['a'] }), 404, 'Missing or invalid client id.', {},
      'clientId of 255 passes validation, then is unknown')

    const many = Array.from({ length: 1001 }, (_, i) => `topic-${i}`)
    assertPbError(await post(port, { clientId: s.cid, subscriptions: many }), 400, GENERIC_400,
      { subscriptions: { code: 'validation_length_too_long', message: 'The length must be no more than 1000.' } }, '1001 subscriptions')
    assertPbError(await post(port, { clientId: s.cid, subscriptions: ['ok', 'y'.repeat(2501), 'ok2'] }), 400, GENERIC_400,
      { subscriptions: { 1: { code: 'validation_length_too_long', message: 'The length must be no more than 2500.' } } }, 'a subscription of 2501')
    assertPbError(await post(port, { clientId: 'z'.repeat(40), subscriptions: ['a'] }), 404, 'Missing or invalid client id.', {}, 'unknown client')
    assert.deepEqual(subscriptionsOf(realtime, s.cid), ['keep'], 'failed POSTs changed nothing')

    // The limits themselves are allowed.
    const thousand = many.slice(0, 1000)
    assert.equal((await post(port, { clientId: s.cid, subscriptions: thousand })).status, 204, '1000 subscriptions')
    assert.equal(subscriptionsOf(realtime, s.cid).length, 1000)
    // 2500 characters: a custom topic, and a record subscription whose options carry a long filter.
    const optionsOf = (n) => withOptions('posts/*', { filter: `title != "${'q'.repeat(n)}"` })
    const long = optionsOf(2500 - optionsOf(0).length)
    assert.equal(long.length, 2500)
    const exact = 'w'.repeat(2500)
    const res = await post(port, { clientId: s.cid, subscriptions: [exact, long] })
    assert.equal(res.status, 204, `subscriptions of 2500 characters: ${res.body}`)
    assert.deepEqual(subscriptionsOf(realtime, s.cid), [exact, long].sort())
    realtime.publish(exact, { long: true })
    realtime.broadcastRecord(POSTS, 'create', { id: 'rec000000000001', title: 't' })
    await s.wait(3)
    assert.deepEqual(s.names(1), [exact, long], 'the 2500-character subscriptions receive their messages')

    // A client that went away is unknown.
    s.close()
    await waitFor(() => realtime.client(s.cid) === undefined, 5000, 'the closed client is forgotten')
    assertPbError(await post(port, { clientId: s.cid, subscriptions: ['a'] }), 404, 'Missing or invalid client id.', {}, 'closed client')
  })

  test(`${kind}: JSON "subscriptions" that is not an array of strings is an unreadable body (400), as Go's decoder says`, async (t) => {
    // PocketBase binds the JSON body with encoding/json into []string: a string there fails to decode.
    const { connect, realtime, port } = await start(t, kind)
    const s = await connect()
    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['keep'] })).status, 204)
    for (const [value, what] of [[[1], 'an array of numbers'], [{ 0: 'a' }, 'an object'], ['keep-me', 'a string']]) {
      assertPbError(await post(port, { clientId: s.cid, subscriptions: value }), 400, GENERIC_400, {}, `subscriptions as ${what}`)
    }
    assert.deepEqual(subscriptionsOf(realtime, s.cid), ['keep'])
  })

  test(`${kind}: a POST body over maxBodyBytes gets 413`, async (t) => {
    const { connect, realtime, port } = await start(t, kind, { maxBodyBytes: 4096 })
    const s = await connect()
    const res = await post(port, { clientId: s.cid, subscriptions: ['b'.repeat(2000), 'c'.repeat(2000), 'd'.repeat(500)] })
    assert.equal(res.status, 413, res.body)
    assert.deepEqual(subscriptionsOf(realtime, s.cid), [])
    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['b'.repeat(2000)] })).status, 204, 'under the limit')
  })

  test(`${kind}: a POST from another IP than the stream's GET gets 400 "Invalid realtime client."`, async (t) => {
    const { connect, realtime, port, defer } = await start(t, kind)
    const s = await connect({ localAddress: '127.0.0.1' })
    const res = await post(port, { clientId: s.cid, subscriptions: ['a'] }, { localAddress: '127.0.0.2' })
    assertPbError(res, 400, 'Invalid realtime client.', {}, 'other IP')
    assert.deepEqual(subscriptionsOf(realtime, s.cid), [])
    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['a'] }, { localAddress: '127.0.0.1' })).status, 204, 'same IP')
    assert.deepEqual(subscriptionsOf(realtime, s.cid), ['a'])

    // checkIp: false lets it through.
    const loose = await startRealtimeAppFor(kind, defer, { checkIp: false })
    const s2 = await openStream(loose.port, { localAddress: '127.0.0.1' })
    defer(() => s2.close(), 'close stream')
    await s2.connected()
    assert.equal((await post(loose.port, { clientId: s2.cid, subscriptions: ['a'] }, { localAddress: '127.0.0.2' })).status, 204)
  })

  test(`${kind}: a client bound to a user refuses another user or a guest (403); guest to user is allowed`, async (t) => {
    const { connect, realtime, port, barrier } = await start(t, kind)
    const FORBIDDEN = "The current and the previous request authorization don't match."
    const a = await connect()
    assert.equal((await post(port, { clientId: a.cid, subscriptions: ['x'] }, { auth: 'tokenA' })).status, 204)
    assert.equal(realtime.client(a.cid).auth.id, USERS.tokenA.id)
    assert.equal((await post(port, { clientId: a.cid, subscriptions: ['x', 'y'] }, { auth: 'Bearer tokenA' })).status, 204,
      'the same user with "Bearer " is the same identity')
    assertPbError(await post(port, { clientId: a.cid, subscriptions: ['z'] }, { auth: 'Bearer tokenB' }), 403, FORBIDDEN, {}, 'A then B')
    assertPbError(await post(port, { clientId: a.cid, subscriptions: ['z'] }), 403, FORBIDDEN, {}, 'A then guest')
    assertPbError(await post(port, { clientId: a.cid, subscriptions: ['z'] }, { auth: 'unknown-token' }), 403, FORBIDDEN, {}, 'A then an invalid token')
    assertPbError(await post(port, { clientId: a.cid, subscriptions: ['z'] }, { auth: 'tokenS' }), 403, FORBIDDEN, {}, 'A then a superuser')
    assert.deepEqual(subscriptionsOf(realtime, a.cid), ['x', 'y'], 'the refused POSTs changed nothing')
    assert.equal(realtime.client(a.cid).auth.id, USERS.tokenA.id)

    const g = await connect()
    assert.equal((await post(port, { clientId: g.cid, subscriptions: ['notes/*'] })).status, 204, 'guest')
    assert.ok(realtime.client(g.cid).auth == null)
    realtime.broadcastRecord(OWNED, 'create', { id: 'not000000000001', owner: USERS.tokenB.id })
    await barrier(g)
    assert.deepEqual(g.names(1), ['barrier'], 'as a guest: no notes')
    assert.equal((await post(port, { clientId: g.cid, subscriptions: ['notes/*'] }, { auth: 'tokenB' })).status, 204, 'guest to user B')
    assert.equal(realtime.client(g.cid).auth.id, USERS.tokenB.id)
    realtime.broadcastRecord(OWNED, 'create', { id: 'not000000000003', owner: USERS.tokenB.id })
    await barrier(g)
    assert.deepEqual(g.names(1), ['barrier', 'notes/*', 'barrier'], "as B: B's note")
    assertPbError(await post(port, { clientId: g.cid, subscriptions: [] }), 403, FORBIDDEN, {}, 'B then guest')
  })

  test(`${kind}: each POST replaces the whole set; empty strings skipped, duplicates collapse, [] unsubscribes all`, async (t) => {
    const { connect, realtime, port, barrier } = await start(t, kind)
    const subscribeEvents = []
    realtime.on('subscribe', (e) => subscribeEvents.push(e))
    const s = await connect()
    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['a', 'b', 'posts/*'] })).status, 204)
    assert.deepEqual(subscriptionsOf(realtime, s.cid), ['a', 'b', 'posts/*'])
    assert.equal(subscribeEvents.length, 1)
    assert.equal(subscribeEvents[0].clientId, s.cid)
    assert.deepEqual([...subscribeEvents[0].subscriptions].sort(), ['a', 'b', 'posts/*'])

    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['c', '', 'c', 'b', ''] })).status, 204)
    assert.deepEqual(subscriptionsOf(realtime, s.cid), ['b', 'c'])
    realtime.publish('a', { to: 'a' })
    realtime.publish('c', { to: 'c' })
    realtime.broadcastRecord(POSTS, 'create', { id: 'rec000000000001' })
    realtime.publish('b', { to: 'b' })
    await barrier(s)
    assert.deepEqual(s.names(1), ['c', 'b', 'barrier'], "'a' and posts/* are gone; 'c' once although posted twice")
    assert.deepEqual(JSON.parse(s.events[1].data), { to: 'c' })

    assert.equal((await post(port, { clientId: s.cid, subscriptions: [] })).status, 204)
    assert.deepEqual(subscriptionsOf(realtime, s.cid), [])
    realtime.publish('b', { to: 'b' })
    realtime.publish('c', { to: 'c' })
    await barrier(s)
    assert.deepEqual(s.names(4), ['barrier'], 'nothing after []')

    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['d'] })).status, 204)
    assert.equal((await post(port, { clientId: s.cid })).status, 204, 'no subscriptions field: the empty set')
    assert.deepEqual(subscriptionsOf(realtime, s.cid), [])
    assert.equal((await post(port, { clientId: s.cid, subscriptions: ['', ''] })).status, 204)
    assert.deepEqual(subscriptionsOf(realtime, s.cid), [])
  })

  test(`${kind}: a form body (application/x-www-form-urlencoded) works too with allowFormBodies`, async (t) => {
    const { connect, realtime, port, barrier } = await start(t, kind, { allowFormBodies: true })
    const s = await connect()
    const body = `clientId=${s.cid}&subscriptions=a&subscriptions=${encodeURIComponent('posts/*')}`
    const res = await post(port, body, { type: 'application/x-www-form-urlencoded' })
    assert.equal(res.status, 204, res.body)
    assert.equal(res.body, '')
    assert.deepEqual(subscriptionsOf(realtime, s.cid), ['a', 'posts/*'])
    realtime.publish('a', 'x')
    await barrier(s)
    assert.deepEqual(s.names(1), ['a', 'barrier'])
    assertPbError(await post(port, 'subscriptions=a', { type: 'application/x-www-form-urlencoded' }), 400, GENERIC_400,
      { clientId: { code: 'validation_required', message: 'Cannot be blank.' } }, 'form without clientId')
  })

  test(`${kind}: a JSON body binds as Go's decoder binds it (PocketBase's BindBody)`, async (t) => {
    const { connect, realtime, port } = await start(t, kind)
    const s = await connect()
    // Keys match case-insensitively, with Unicode simple folding (U+017F is a long s).
    const res = await post(port, `{"CLIENTID": "${s.cid}", "\u017fubscriptions": ["a", "b"]}`)
    assert.equal(res.status, 204, res.body)
    assert.deepEqual(subscriptionsOf(realtime, s.cid), ['a', 'b'])
    {
      // The first value counts; what follows it is not read.
      const trailing = await post(port, `  {"clientId": "${s.cid}", "subscriptions": ["c}"]} trailing {junk`)
      assert.equal(trailing.status, 204, trailing.body)
      assert.deepEqual(subscriptionsOf(realtime, s.cid), ['c}'])
      assertPbError(await post(port, 'null, whatever'), 400, GENERIC_400,
        { clientId: { code: 'validation_required', message: 'Cannot be blank.' } }, 'null binds nothing')
      for (const body of ['{"clientId": "x"', '{"clientId": "x", } ', '[] {}', '"text"', '   ']) {
        assertPbError(await post(port, body), 400, GENERIC_400, {}, JSON.stringify(body))
      }
    }
    assert.deepEqual(subscriptionsOf(realtime, s.cid), ['c}'])
  })
}

/** A second app of the same kind (other options), closed by defer. */
async function startRealtimeAppFor (kind, defer, options) {
  const app = await startRealtimeApp(kind, { authenticate: authenticators[kind], ...options })
  defer(() => app.close(), `${kind} app close`)
  return app
}

/** Every key of a nested value, for a sorted JSON.stringify replacer list. */
function flatKeys (value, out = {}) {
  if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out[k] = true
      flatKeys(v, out)
    }
  }
  return out
}

test('express: bodies already parsed by express.json() and express.urlencoded() are used as they are', async (t) => {
  const { Realtime } = require('../../lib/pocketbase')
  const realtime = new Realtime({ authenticate: authenticators.express, allowFormBodies: true })
  const { port, s } = await startExpressWithParsers(t, realtime, (express) => [express.json(), express.urlencoded({ extended: false })])
  assert.equal((await post(port, { clientId: s.cid, subscriptions: ['a', 'b', 'a'] }, { auth: 'tokenA' })).status, 204)
  assert.deepEqual(subscriptionsOf(realtime, s.cid), ['a', 'b'])
  assert.equal(realtime.client(s.cid).auth.id, USERS.tokenA.id)
  const form = await post(port, `clientId=${s.cid}&subscriptions=c`, { type: 'application/x-www-form-urlencoded', auth: 'Bearer tokenA' })
  assert.equal(form.status, 204, form.body)
  assert.deepEqual(subscriptionsOf(realtime, s.cid), ['c'], 'one form value')
  // Keys of a parsed JSON body still match as Go matches them.
  assert.equal((await post(port, { ClientID: s.cid, SUBSCRIPTIONS: ['d'] }, { auth: 'tokenA' })).status, 204)
  assert.deepEqual(subscriptionsOf(realtime, s.cid), ['d'], 'case-insensitive keys')
  assertPbError(await post(port, { subscriptions: ['a'] }), 400, GENERIC_400,
    { clientId: { code: 'validation_required', message: 'Cannot be blank.' } }, 'parsed body without clientId')
  assertPbError(await post(port, { clientId: s.cid, subscriptions: ['a'] }, { auth: 'tokenB' }), 403,
    "The current and the previous request authorization don't match.", {}, 'another user')
})
