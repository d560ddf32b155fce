'use strict'
// The native listener's token path (hub.listen({ token })): JWTs signed by
// jose, verified on the I/O threads over real sockets: where the token comes
// from (header, query, cookie), each algorithm, the refusals (401 with its
// WWW-Authenticate, 403, 400), topics from the claim (exact, '*', URI
// template), the user, the cache of verified tokens, and the options' checks.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { openStream } = require('../helpers/compressed')
const { rawConnect } = require('../helpers/raw-http')
const { startListener, GET } = require('../helpers/native-listener')
const { waitFor, sleep } = require('../helpers/wait')
const { Hub } = require('../..')

const SECRET = 'a-secret-of-at-least-32-bytes-length!'
const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'prime256v1' })

let jose
async function sign (claims, { alg = 'HS256', key, kid, expSec, header = {} } = {}) {
  jose ||= await import('jose')
  const signer = new jose.SignJWT(claims).setProtectedHeader({ alg, ...(kid ? { kid } : {}), ...header })
  if (expSec !== undefined) signer.setExpirationTime(expSec)
  const signingKey = key ?? (alg === 'HS256' ? new TextEncoder().encode(SECRET) : alg === 'RS256' ? rsa.privateKey : ec.privateKey)
  return signer.sign(signingKey)
}

const subscribe = (topics, extra = {}) => ({ mercure: { subscribe: topics }, ...extra })

/** One request on a raw connection: { status, body, headers } of its answer, once the server closed. */
async function refusal (port, path, extra = '') {
  const c = await rawConnect(port)
  await c.send(GET(path, extra))
  await c.waitClosed()
  const h = c.heads()[0]
  return { status: h.status, headers: h.headers, body: JSON.parse(h.body) }
}

async function startWithToken (t, token, listenOptions = {}) {
  return startListener(t, {}, { token, ...listenOptions })
}

test('token: a Bearer header, the query parameter or the cookie opens the stream; topics must match the claim', async (t) => {
  const { hub, port, listener } = await startWithToken(t, { algorithm: 'HS256', key: SECRET })
  const jwt = await sign(subscribe(['/books/{id}', '/news', 'exact']))
  const streams = [
    await openStream(port, '/events?topics=/books/1', { headers: { authorization: `Bearer ${jwt}` } }),
    await openStream(port, '/events?topics=/books/1', { headers: { authorization: `bEaReR ${jwt}` } }),
    await openStream(port, `/events?topics=/books/1&authorization=${jwt}`),
    await openStream(port, '/events?topics=/books/1', { headers: { cookie: `other=1; mercureAuthorization=${jwt}` } })
  ]
  for (const s of streams) assert.equal(s.status, 200)
  await waitFor(() => hub.stats().connections === streams.length, 5000, 'the streams counted')
  hub.publish('/books/1', 'one')
  hub.publish('/books/2', 'not asked for')
  for (const s of streams) {
    await s.waitEvents(1)
    assert.deepEqual(s.events.map((e) => e.data), ['one'])
    s.close()
  }
  // The header wins over the query, and the query over the cookie.
  const bad = 'x.y.z'
  const viaHeader = await openStream(port, `/events?topics=exact&authorization=${bad}`, { headers: { authorization: `Bearer ${jwt}`, cookie: `mercureAuthorization=${bad}` } })
  assert.equal(viaHeader.status, 200)
  viaHeader.close()
  const viaQuery = await openStream(port, `/events?topics=exact&authorization=${jwt}`, { headers: { cookie: `mercureAuthorization=${bad}` } })
  assert.equal(viaQuery.status, 200)
  viaQuery.close()
  assert.equal(listener.stats().tokenRefused, 0)
})

test('token: each algorithm (HS256, RS256, ES256), several keys with kids; a private key is refused', async (t) => {
  const { hub, port } = await startWithToken(t, {
    keys: [
      { algorithm: 'HS256', key: SECRET, kid: 'h' },
      { algorithm: 'RS256', key: rsa.publicKey.export({ type: 'spki', format: 'pem' }) },
      { algorithm: 'ES256', key: ec.publicKey }
    ]
  })
  for (const alg of ['HS256', 'RS256', 'ES256']) {
    const jwt = await sign(subscribe([alg]), { alg, kid: alg === 'HS256' ? 'h' : undefined })
    const s = await openStream(port, `/events?topics=${alg}`, { headers: { authorization: `Bearer ${jwt}` } })
    assert.equal(s.status, 200, alg)
    await waitFor(() => hub.stats().connections === 1, 5000, `the ${alg} stream`)
    hub.publish(alg, `via ${alg}`)
    await s.waitEvents(1)
    assert.equal(s.events[0].data, `via ${alg}`)
    s.close()
    await waitFor(() => hub.stats().connections === 0, 5000, 'the stream gone')
  }
  // The wrong kid; an RS256 token signed with another RSA key.
  const wrongKid = await refusal(port, '/events?topics=HS256', `Authorization: Bearer ${await sign(subscribe(['HS256']), { kid: 'other' })}\r\n`)
  assert.equal(wrongKid.status, 401)
  const other = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
  const forged = await refusal(port, '/events?topics=RS256', `Authorization: Bearer ${await sign(subscribe(['RS256']), { alg: 'RS256', key: other.privateKey })}\r\n`)
  assert.equal(forged.status, 401)
  assert.match(forged.headers['www-authenticate'], /error="invalid_token"/)
  await assert.rejects(hub.listen({ token: { algorithm: 'RS256', key: rsa.privateKey } }),
    { code: 'ERR_SSE_INVALID_ARGUMENT', message: /private KeyObject/ })
})

test('token: 401 without a token or with a bad one (WWW-Authenticate), 403 for a topic the claim lacks, 400 when none can be chosen', async (t) => {
  const { port, listener } = await startWithToken(t, { algorithm: 'HS256', key: SECRET })
  const none = await refusal(port, '/events?topics=a')
  assert.equal(none.status, 401)
  assert.equal(none.body.error, 'ERR_SSE_UNAUTHORIZED')
  assert.equal(none.headers['www-authenticate'], 'Bearer')
  const now = Math.floor(Date.now() / 1000)
  const cases = [
    ['garbage', 'not.a.token'],
    ['expired', await sign(subscribe(['a']), { expSec: now - 10 })],
    ['wrong secret', await sign(subscribe(['a']), { key: new TextEncoder().encode('another-secret-another-secret-!!') })],
    ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.`],
    ['RS256 for an HS256 key', await sign(subscribe(['a']), { alg: 'RS256' })],
    ['crit', await sign(subscribe(['a']), { header: { crit: ['b64'], b64: true } }).catch(() => null)]
  ]
  for (const [name, jwt] of cases) {
    if (jwt === null) continue // jose refuses to sign it: nothing to send
    const r = await refusal(port, '/events?topics=a', `Authorization: Bearer ${jwt}\r\n`)
    assert.equal(r.status, 401, name)
    assert.equal(r.body.error, 'ERR_SSE_UNAUTHORIZED', name)
    assert.match(r.headers['www-authenticate'], /^Bearer error="invalid_token"/, name)
    assert.ok(!JSON.stringify(r).includes(jwt.slice(0, 20)), `${name}: the answer never quotes the token`)
  }
  assert.equal((await refusal(port, '/events?topics=a', 'Authorization: Basic dXNlcjpwYXNz\r\n')).headers['www-authenticate'],
    'Bearer error="invalid_request", error_description="malformed authorization"')
  const jwt = await sign(subscribe(['a', '/t/{x}', '*-not-all']))
  const forbidden = await refusal(port, '/events?topics=a,b', `Authorization: Bearer ${jwt}\r\n`)
  assert.equal(forbidden.status, 403)
  assert.equal(forbidden.body.error, 'ERR_SSE_FORBIDDEN')
  const noExact = await sign(subscribe(['/t/{x}', '*']))
  const nothing = await refusal(port, '/events', `Authorization: Bearer ${noExact}\r\n`)
  assert.equal(nothing.status, 400)
  assert.equal(nothing.body.error, 'ERR_SSE_BAD_REQUEST')
  const noClaim = await refusal(port, '/events?topics=a', `Authorization: Bearer ${await sign({ sub: 'x' })}\r\n`)
  assert.equal(noClaim.status, 403)
  // HEAD would answer what only a token may grant.
  const c = await rawConnect(port)
  await c.send(`HEAD /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${jwt}\r\n\r\n`)
  await c.waitClosed()
  assert.equal(c.heads()[0].status, 405)
  assert.equal(listener.stats().tokenRefused, cases.filter(([, j]) => j !== null).length + 5)
})

test('token: topics from the claim: exact selectors when none is named, "*" and URI templates match named ones', async (t) => {
  const { hub, port } = await startWithToken(t, { algorithm: 'HS256', key: SECRET })
  const exact = await sign(subscribe(['e1', 'e2', '/t/{id}', '*']))
  const s = await openStream(port, '/events', { headers: { authorization: `Bearer ${exact}` } })
  assert.equal(s.status, 200)
  const all = await sign(subscribe(['*']))
  const wild = await openStream(port, '/events?topics=anything,else', { headers: { authorization: `Bearer ${all}` } })
  assert.equal(wild.status, 200)
  const tmpl = await sign({ 'https://mercure.rocks/': { subscribe: ['https://example.com/books/{id}'] }, mercure: { subscribe: ['ignored'] } })
  const byTemplate = await openStream(port, `/events?topics=${encodeURIComponent('https://example.com/books/7')}`, { headers: { authorization: `Bearer ${tmpl}` } })
  assert.equal(byTemplate.status, 200)
  assert.equal((await refusal(port, '/events?topics=ignored', `Authorization: Bearer ${tmpl}\r\n`)).status, 403)
  await waitFor(() => hub.stats().connections === 3, 5000, 'three streams')
  hub.publish('e2', 'to e2')
  hub.publish('https://example.com/books/7', 'book 7')
  hub.publish('else', 'else')
  await s.waitEvents(1)
  await byTemplate.waitEvents(1)
  await wild.waitEvents(1)
  await sleep(50)
  assert.deepEqual(s.events.map((e) => e.data), ['to e2'])
  assert.deepEqual(byTemplate.events.map((e) => e.data), ['book 7'])
  assert.deepEqual(wild.events.map((e) => e.data), ['else'])
  for (const x of [s, wild, byTemplate]) x.close()
})

test('token: a prefix pattern (topic/*) is granted only by "*" or that exact selector, never by a URI template', async (t) => {
  // The hub delivers every topic under the prefix to a "/books/*" stream, and
  // "/books/{+id}" does not match them all (a raw non-ASCII byte, a space):
  // matched as a string, the template would grant what it does not cover.
  const { hub, port } = await startWithToken(t, { algorithm: 'HS256', key: SECRET })
  const jwt = await sign(subscribe(['/books/{+id}', '/news/*']))
  const viaTemplate = await refusal(port, `/events?topics=${encodeURIComponent('/books/*')}`, `Authorization: Bearer ${jwt}\r\n`)
  assert.equal(viaTemplate.status, 403)
  assert.equal(viaTemplate.body.error, 'ERR_SSE_FORBIDDEN')
  const s = await openStream(port, `/events?topics=${encodeURIComponent('/books/1,/news/*')}`, { headers: { authorization: `Bearer ${jwt}` } })
  assert.equal(s.status, 200)
  await waitFor(() => hub.stats().connections === 1, 5000, 'the stream')
  hub.publish('/books/\u00e9t\u00e9', 'not granted')
  hub.publish('/news/today', 'news')
  hub.publish('/books/1', 'book 1')
  await s.waitEvents(2)
  await sleep(50)
  assert.deepEqual(s.events.map((e) => e.data), ['news', 'book 1'])
  s.close()
})

test('token: the user claim makes the stream a user\'s: hub.publish to that user reaches it, connect carries it', async (t) => {
  const { hub, port } = await startWithToken(t, { algorithm: 'HS256', key: SECRET, claim: 'app.topics', userClaim: 'uid', cookie: 'session', query: null })
  const connects = []
  hub.on('connect', (c) => connects.push(c))
  const jwt = await sign({ app: { topics: ['private'] }, uid: 'u1', sub: 'not-this' })
  const s = await openStream(port, '/events', { headers: { cookie: `session=${jwt}` } })
  assert.equal(s.status, 200)
  await waitFor(() => connects.length === 1, 5000, 'the connect event')
  assert.equal(connects[0].user, 'u1')
  assert.equal(connects[0].transport, 'native')
  hub.publish('private', 'for u2', { users: ['u2'] })
  hub.publish('private', 'for u1', { users: ['u1'] })
  await s.waitEvents(1)
  await sleep(50)
  assert.deepEqual(s.events.map((e) => e.data), ['for u1'])
  s.close()
  // query: null turns the query token off; the default cookie name is not read.
  assert.equal((await refusal(port, `/events?authorization=${jwt}`)).status, 401)
  assert.equal((await refusal(port, '/events', `Cookie: mercureAuthorization=${jwt}\r\n`)).status, 401)
})

test('token: a token that verified is taken from its I/O thread\'s cache until its exp; cache: 0 keeps none', async (t) => {
  // One I/O thread: every connection meets the same acceptor and its cache.
  const { hub, port, listener } = await startListener(t, { threads: 1 }, { token: { algorithm: 'HS256', key: SECRET } })
  const exp = Math.floor(Date.now() / 1000) + 4
  const jwt = await sign(subscribe(['news']), { expSec: exp })
  const auth = { authorization: `Bearer ${jwt}` }
  const streams = []
  for (let i = 0; i < 3; i++) streams.push(await openStream(port, '/events?topics=news', { headers: auth }))
  for (const s of streams) assert.equal(s.status, 200)
  assert.equal(listener.stats().tokenCacheHits, 2, 'the first verified, the next two from the cache')
  // A hit is matched against the claim like a verified token.
  const r = await refusal(port, '/events?topics=other', `Authorization: Bearer ${jwt}\r\n`)
  assert.equal(r.status, 403)
  assert.equal(listener.stats().tokenCacheHits, 3)
  // A forged token sharing the good one's header and claims is verified, and refused.
  const forged = jwt.slice(0, jwt.lastIndexOf('.') + 1) + 'A'.repeat(43)
  assert.equal((await refusal(port, '/events?topics=news', `Authorization: Bearer ${forged}\r\n`)).status, 401)
  assert.equal(listener.stats().tokenCacheHits, 3)
  await waitFor(() => hub.stats().connections === 3, 5000, 'the streams counted')
  hub.publish('news', 'to all three')
  for (const s of streams) await s.waitEvents(1)
  // At exp the kept token no longer answers: it is verified again and refused.
  await sleep(Math.max(0, exp * 1000 - Date.now()) + 50)
  const late = await refusal(port, '/events?topics=news', `Authorization: Bearer ${jwt}\r\n`)
  assert.equal(late.status, 401)
  assert.match(late.headers['www-authenticate'], /token expired/)
  assert.equal(listener.stats().tokenCacheHits, 3)
  for (const s of streams) s.close()

  const off = await startListener(t, { threads: 1 }, { token: { algorithm: 'HS256', key: SECRET, cache: 0 } })
  const lasting = await sign(subscribe(['news']))
  for (let i = 0; i < 2; i++) {
    const s = await openStream(off.port, '/events?topics=news', { headers: { authorization: `Bearer ${lasting}` } })
    assert.equal(s.status, 200)
    s.close()
  }
  assert.equal(off.listener.stats().tokenCacheHits, 0)
  assert.equal(off.listener.stats().streams, 2)
})

test('token: options are checked; authorize and token exclude each other', async (t) => {
  const hub = new Hub({ threads: 1 })
  t.after(() => hub.close())
  const bad = [
    [{ token: { algorithm: 'HS384', key: SECRET } }, /HS256, RS256, ES256.*native listener verifies those three/],
    [{ token: { algorithm: 'HS256', key: SECRET }, authorize: () => null }, /exclude each other/],
    [{ token: { algorithm: 'HS256', key: '' } }, /secret is empty/],
    [{ token: { algorithm: 'HS256', key: rsa.publicKey.export({ type: 'spki', format: 'pem' }) } }, /PEM key was given/],
    [{ token: { algorithm: 'RS256', key: ec.publicKey } }, /needs an RSA key/],
    [{ token: { algorithm: 'ES256', key: crypto.generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).publicKey } }, /prime256v1/],
    [{ token: { keys: [] } }, /options\.token\.keys/],
    [{ token: { keys: Array(9).fill({ algorithm: 'HS256', key: SECRET }) } }, /1 to 8 keys/],
    [{ token: { algorithm: 'HS256', key: SECRET, claim: 'a..b' } }, /options\.token\.claim/],
    [{ token: { algorithm: 'HS256', key: SECRET, cookie: 'bad name' } }, /options\.token\.cookie/],
    [{ token: { algorithm: 'HS256', key: SECRET, clockToleranceSec: -1 } }, /clockToleranceSec/],
    [{ token: { algorithm: 'HS256', key: SECRET, kid: 5 } }, /options\.token\.kid/],
    [{ token: { algorithm: 'HS256', key: SECRET, cache: -1 } }, /options\.token\.cache/],
    [{ token: { algorithm: 'HS256', key: SECRET, cache: 65537 } }, /options\.token\.cache/],
    [{ token: 'secret' }, /options\.token/]
  ]
  for (const [options, message] of bad) {
    await assert.rejects(hub.listen(options), (err) => {
      assert.equal(err.code, 'ERR_SSE_INVALID_ARGUMENT')
      assert.match(err.message, message)
      assert.ok(!err.message.includes(SECRET), 'never quotes a key')
      return true
    })
  }
  // A tolerance lets a just-expired token in.
  const listener = await hub.listen({ port: 0, token: { algorithm: 'HS256', key: SECRET, clockToleranceSec: 60 } })
  t.after(() => listener.close())
  const jwt = await sign(subscribe(['a']), { expSec: Math.floor(Date.now() / 1000) - 5 })
  const s = await openStream(listener.port, '/events?topics=a', { headers: { authorization: `Bearer ${jwt}` } })
  assert.equal(s.status, 200)
  s.close()
})
