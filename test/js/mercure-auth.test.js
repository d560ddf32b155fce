'use strict'
// Mercure authorization (lib/mercure/auth.js, keys.js, token-cache.js),
// without a server: requests are plain objects shaped like node:http's
// IncomingMessage (method, url, headers, rawHeaders). Keys are made with
// node:crypto, tokens signed with jose.
//
// The selector matcher given to the context matches `*` and identical strings
// only: URI templates are the native matcher's (src/mercure), tested there.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const {
  AUTH_DEFAULTS, MAX_TOKEN_BYTES, MercureAuthError, createAuthContext, readAuthOptions, resolveKeys,
  loadJose, tokenOf, verify, authorizePublish, authorizeSubscribe
} = require('../../lib/mercure/auth')
const { VerifiedTokenCache } = require('../../lib/mercure/token-cache')

const SECRET = '!ChangeThisMercureHubJWTSecretKey!'
const RSA = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 })
const EC = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' })
const EC384 = crypto.generateKeyPairSync('ec', { namedCurve: 'P-384' })
const ED = crypto.generateKeyPairSync('ed25519')
const spki = (pair) => pair.publicKey.export({ type: 'spki', format: 'pem' })
const pkcs8 = (pair) => pair.privateKey.export({ type: 'pkcs8', format: 'pem' })
const NOW_S = () => Math.floor(Date.now() / 1000)

/** `*` and identical strings: the test stand-in for the native selector matcher. */
const exactOrStar = (selector, topic) => selector === '*' || selector === topic

/** A compact JWS over claims; header overrides (alg, typ...) and key as the algorithm needs. */
async function sign (claims, { alg = 'HS256', key = SECRET } = {}) {
  const { SignJWT } = await loadJose()
  const signingKey = typeof key === 'string' ? new TextEncoder().encode(key) : key
  return new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(signingKey)
}

const b64url = (value) => Buffer.from(JSON.stringify(value)).toString('base64url')
/** An unsecured JWT (alg none, empty signature), as an attacker would send it. */
const unsecured = (claims) => `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(claims)}.`

/** A request as node:http gives it: headers is a list of [name, value] pairs (duplicates kept). */
function request ({ method = 'GET', url = '/.well-known/mercure?topic=a', headers = [] } = {}) {
  const rawHeaders = headers.flat()
  const byName = {}
  for (const [name, value] of headers) {
    const lower = name.toLowerCase()
    if (byName[lower] === undefined) byName[lower] = value
    else if (lower === 'cookie') byName[lower] += '; ' + value
  }
  return { method, url, headers: byName, rawHeaders }
}
const bearer = (token) => request({ headers: [['Authorization', `Bearer ${token}`]] })

/** A context with HS256 keys for both roles (unless options say otherwise) and a counting jwtVerify. */
async function context (options = {}, { env = {}, now } = {}) {
  const { jwtVerify } = await loadJose()
  const calls = { count: 0 }
  const counting = (...args) => { calls.count++; return jwtVerify(...args) }
  const ctx = createAuthContext({ publisherJwt: { key: SECRET }, subscriberJwt: { key: SECRET }, ...options },
    { env, selectorMatches: exactOrStar, jwtVerify: counting, now })
  return { ctx, calls }
}

/** A self-signed certificate for the EC key (PEM), made by openssl; null without openssl. */
let certificatePem
function certificate () {
  if (certificatePem === undefined) {
    // A file, not stdin: openssl cannot open /dev/stdin when it is the socket node:child_process gives.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mercure-auth-'))
    try {
      fs.writeFileSync(path.join(dir, 'key.pem'), pkcs8(EC), { mode: 0o600 })
      const run = spawnSync('openssl', ['req', '-x509', '-key', path.join(dir, 'key.pem'), '-subj', '/CN=mercure-test', '-days', '1'],
        { encoding: 'utf8', timeout: 10000 })
      certificatePem = run.status === 0 && run.stdout.includes('BEGIN CERTIFICATE') ? run.stdout : null
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  return certificatePem
}

/** Asserts that fn throws an ERR_SSE_INVALID_ARGUMENT whose message matches and never quotes the secret text. */
function assertKeyError (fn, pattern, secretText) {
  assert.throws(fn, (error) => {
    assert.equal(error.code, 'ERR_SSE_INVALID_ARGUMENT')
    assert.match(error.message, pattern)
    if (secretText) assert.ok(!error.message.includes(secretText), `the message quotes the key: ${error.message}`)
    return true
  })
}

describe('resolveKeys: options, then the MERCURE_* environment', () => {
  test('options: HS256 by default, RS/PS (SPKI and PKCS#1), ES256, EdDSA, a public KeyObject', () => {
    const pkcs1 = RSA.publicKey.export({ type: 'pkcs1', format: 'pem' })
    const cases = [
      [{ key: SECRET }, 'HS256'], [{ key: SECRET, alg: 'HS512' }, 'HS512'], [{ key: spki(RSA), alg: 'RS256' }, 'RS256'],
      [{ key: pkcs1, alg: 'RS384' }, 'RS384'], [{ key: spki(RSA), alg: 'PS256' }, 'PS256'], [{ key: spki(EC), alg: 'ES256' }, 'ES256'],
      [{ key: spki(ED), alg: 'EdDSA' }, 'EdDSA'], [{ key: EC384.publicKey, alg: 'ES384' }, 'ES384']
    ]
    for (const [publisherJwt, alg] of cases) {
      const keys = resolveKeys({ publisherJwt, anonymous: true }, {})
      assert.equal(keys.publisher.alg, alg)
      assert.equal(keys.publisher.source, 'options.publisherJwt.key')
      assert.equal(keys.subscriber, null)
    }
  })

  test('env: HS256 (empty ALG), RS256, ES256 and EdDSA keys, each role its own; options win per role', () => {
    const env = {
      MERCURE_PUBLISHER_JWT_KEY: SECRET,
      MERCURE_PUBLISHER_JWT_ALG: '',
      MERCURE_SUBSCRIBER_JWT_KEY: spki(RSA),
      MERCURE_SUBSCRIBER_JWT_ALG: 'RS256'
    }
    const keys = resolveKeys({}, env)
    assert.deepEqual([keys.publisher.alg, keys.publisher.source], ['HS256', 'MERCURE_PUBLISHER_JWT_KEY'])
    assert.deepEqual([keys.subscriber.alg, keys.subscriber.source], ['RS256', 'MERCURE_SUBSCRIBER_JWT_KEY'])
    for (const [pair, alg] of [[EC, 'ES256'], [ED, 'EdDSA']]) {
      const k = resolveKeys({}, { ...env, MERCURE_SUBSCRIBER_JWT_KEY: spki(pair), MERCURE_SUBSCRIBER_JWT_ALG: alg })
      assert.equal(k.subscriber.alg, alg)
    }
    const mixed = resolveKeys({ subscriberJwt: { key: 'other secret' } }, env)
    assert.deepEqual([mixed.publisher.source, mixed.subscriber.source], ['MERCURE_PUBLISHER_JWT_KEY', 'options.subscriberJwt.key'])
  })

  test('env: a PEM on one line with literal \\n escapes (env files) is read', () => {
    const oneLine = spki(EC).trim().replace(/\n/g, '\\n')
    const keys = resolveKeys({ anonymous: true }, { MERCURE_PUBLISHER_JWT_KEY: oneLine, MERCURE_PUBLISHER_JWT_ALG: 'ES256' })
    assert.equal(keys.publisher.key.asymmetricKeyType, 'ec')
  })

  test('a key that does not fit its algorithm fails at creation, naming the variable, never quoting the key', () => {
    const env = (key, alg) => ({ MERCURE_PUBLISHER_JWT_KEY: key, MERCURE_PUBLISHER_JWT_ALG: alg })
    const body = (pem) => pem.split('\n')[1] // a line of the key material
    const small = crypto.generateKeyPairSync('rsa', { modulusLength: 1024 })
    const cases = [
      [spki(RSA), 'ES256', /MERCURE_PUBLISHER_JWT_KEY: ES256 needs an EC key on prime256v1, but an rsa key/],
      [spki(EC), 'RS256', /MERCURE_PUBLISHER_JWT_KEY: RS256 needs an RSA key, but an ec key/],
      [spki(EC384), 'ES256', /ES256 needs an EC key on prime256v1, but the key is on secp384r1/],
      [spki(EC), 'EdDSA', /EdDSA needs an Ed25519 key, but an ec key/],
      [spki(crypto.generateKeyPairSync('rsa-pss', { modulusLength: 2048 })), 'PS256', /RSA-PSS-only keys are not supported/],
      [spki(small), 'RS256', /at least 2048 bits, but it has 1024/],
      [spki(RSA), 'HS256', /HS256 takes a shared secret, but a PEM key was given/],
      [SECRET, 'RS256', /RS256 takes a PEM public key .* but the value is not PEM/],
      [pkcs8(RSA), 'RS256', /a private key \(PRIVATE KEY\) was given; .* needs only the public key/],
      [RSA.privateKey.export({ type: 'pkcs1', format: 'pem' }), 'RS256', /a private key \(RSA PRIVATE KEY\) was given/],
      [pkcs8(EC), 'ES256', /a private key/],
      ['-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n', 'ES256', /the PUBLIC KEY PEM does not parse/]
    ]
    for (const [key, alg, pattern] of cases) {
      assertKeyError(() => resolveKeys({ anonymous: true }, env(key, alg)), pattern, key.includes('\n') ? body(key) : key)
    }
    assertKeyError(() => resolveKeys({ anonymous: true }, env(SECRET, 'HS257')), /one of HS256, .*EdDSA for MERCURE_PUBLISHER_JWT_ALG but received "HS257"/, SECRET)
    assertKeyError(() => resolveKeys({ anonymous: true }, env(SECRET, 'none')), /MERCURE_PUBLISHER_JWT_ALG but received "none"/)
    assertKeyError(() => resolveKeys({ anonymous: true }, { MERCURE_PUBLISHER_JWT_ALG: 'RS256' }), /MERCURE_PUBLISHER_JWT_ALG is set but MERCURE_PUBLISHER_JWT_KEY is not/)
    assertKeyError(() => resolveKeys({ anonymous: true, publisherJwt: { key: RSA.privateKey, alg: 'RS256' } }, {}),
      /options\.publisherJwt\.key: RS256 takes a public key, but a private KeyObject/)
    assertKeyError(() => resolveKeys({ anonymous: true, publisherJwt: { key: '' } }, {}), /options\.publisherJwt\.key: the HS256 secret is empty/)
    assertKeyError(() => resolveKeys({ anonymous: true, publisherJwt: { key: 42 } }, {}), /a string, a Buffer or a KeyObject for options\.publisherJwt\.key but received a value of type number/)
  })

  test('no publisher key, or no subscriber key without anonymous: a start-up error saying what to set', () => {
    assertKeyError(() => resolveKeys({ anonymous: true }, {}), /No publisher key: set MERCURE_PUBLISHER_JWT_KEY/)
    assertKeyError(() => resolveKeys({}, { MERCURE_PUBLISHER_JWT_KEY: SECRET }), /No subscriber key: set MERCURE_SUBSCRIBER_JWT_KEY .*\(options\.anonymous: true\)/)
    assertKeyError(() => resolveKeys({ subscriberJwt: null }, { MERCURE_PUBLISHER_JWT_KEY: SECRET }), /options\.subscriberJwt is null/)
    const keys = resolveKeys({ publisherJwt: null, anonymous: true }, { MERCURE_PUBLISHER_JWT_KEY: SECRET })
    assert.equal(keys.publisher, null, 'null: no publisher key, the environment not read')
  })
})

describe('tokenOf: sources, precedence, sizes, the cookie and its origin', () => {
  const options = readAuthOptions({ publishOrigins: ['https://app.example.com', 'https://*.example.org'] })

  test('the header beats the query, the query beats the cookie', () => {
    const all = request({ url: '/.well-known/mercure?topic=a&authorization=QUERY', headers: [['Authorization', 'Bearer HEADER'], ['Cookie', 'mercureAuthorization=COOKIE']] })
    assert.deepEqual(tokenOf(all, 'subscriber', options), { token: 'HEADER', source: 'header' })
    const noHeader = request({ url: '/.well-known/mercure?topic=a&authorization=QUERY', headers: [['Cookie', 'mercureAuthorization=COOKIE']] })
    assert.deepEqual(tokenOf(noHeader, 'subscriber', options), { token: 'QUERY', source: 'query' })
    const cookieOnly = request({ headers: [['Cookie', 'a=1; mercureAuthorization=COOKIE; b=2']] })
    assert.deepEqual(tokenOf(cookieOnly, 'subscriber', options), { token: 'COOKIE', source: 'cookie' })
    assert.equal(tokenOf(request(), 'subscriber', options), null)
    assert.deepEqual(tokenOf({ raw: cookieOnly }, 'subscriber', options).source, 'cookie', 'a Fastify request (request.raw)')
  })

  test('a bad header is refused, not skipped for the query or cookie; the scheme is case-insensitive', () => {
    const refused = (req, pattern) => assert.throws(() => tokenOf(req, 'subscriber', options),
      (e) => e instanceof MercureAuthError && e.status === 401 && pattern.test(e.reason))
    assert.equal(tokenOf(request({ headers: [['authorization', 'bearer T']] }), 'subscriber', options).token, 'T')
    refused(request({ url: '/?authorization=Q', headers: [['Authorization', 'Basic dXNlcjpwYXNz']] }), /not Bearer/)
    refused(request({ headers: [['Authorization', 'Bearer ']] }), /not Bearer/)
    refused(request({ headers: [['Authorization', 'Bearer A'], ['Authorization', 'Bearer B']] }), /more than one Authorization header/)
    refused(request({ url: '/?authorization=A&authorization=B' }), /more than one authorization query parameter/)
    const off = readAuthOptions({ allowQueryToken: false })
    assert.throws(() => tokenOf(request({ url: '/?topic=a&authorization=Q' }), 'subscriber', off), /tokens in the query are not accepted/)
    assert.equal(tokenOf(request({ url: '/?topic=a&authorization=Q' }), 'subscriber', readAuthOptions({})).token, 'Q', 'on by default')
    assert.equal(tokenOf(request({ url: '/?topic=%2F&%61uthorization=Q', headers: [['Cookie', 'mercureAuthorization=C']] }), 'subscriber', options).token, 'Q', 'a percent-encoded name counts')
  })

  test(`a token over ${MAX_TOKEN_BYTES} bytes is refused in each place; one of exactly that size passes`, () => {
    const big = 'a'.repeat(MAX_TOKEN_BYTES + 1)
    const exact = 'a'.repeat(MAX_TOKEN_BYTES)
    for (const make of [
      (t) => request({ headers: [['Authorization', `Bearer ${t}`]] }),
      (t) => request({ url: `/?authorization=${t}` }),
      (t) => request({ headers: [['Cookie', `mercureAuthorization=${t}`]] })
    ]) {
      assert.throws(() => tokenOf(make(big), 'subscriber', options), { reason: 'token too large', status: 401 })
      assert.equal(tokenOf(make(exact), 'subscriber', options).token.length, MAX_TOKEN_BYTES)
    }
    assert.throws(() => tokenOf(request({ headers: [['Authorization', 'Bearer ' + 'a'.repeat(1 << 20)]] }), 'subscriber', options), { reason: 'token too large' })
  })

  test('cookie: its name is an option, quotes are removed, an empty one is no token', () => {
    const named = readAuthOptions({ cookieName: 'hubToken' })
    assert.equal(tokenOf(request({ headers: [['Cookie', 'mercureAuthorization=A; hubToken=B']] }), 'subscriber', named).token, 'B')
    assert.equal(tokenOf(request({ headers: [['Cookie', 'mercureAuthorization="Q"']] }), 'subscriber', options).token, 'Q')
    assert.equal(tokenOf(request({ headers: [['Cookie', 'mercureAuthorization=']] }), 'subscriber', options), null)
    assert.equal(tokenOf(request({ headers: [['Cookie', 'xmercureAuthorization=A']] }), 'subscriber', options), null)
    assert.throws(() => readAuthOptions({ cookieName: 'a b' }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  })

  test('a publisher cookie needs an Origin (or Referer) in publishOrigins; a subscriber GET does not', () => {
    const post = (headers) => request({ method: 'POST', headers: [['Cookie', 'mercureAuthorization=C'], ...headers] })
    const refused = (req, opts, pattern) => assert.throws(() => tokenOf(req, 'publisher', opts),
      (e) => e.status === 401 && pattern.test(e.reason))
    refused(post([]), options, /needs an Origin or Referer/)
    refused(post([['Origin', 'https://evil.example']]), options, /origin not allowed/)
    refused(post([['Origin', 'https://app.example.com']]), readAuthOptions({}), /origin not allowed/) // empty list by default
    refused(post([['Referer', 'not a url']]), options, /Referer is not a URL/)
    refused(post([['Origin', 'https://example.org']]), options, /origin not allowed/) // the wildcard needs its dot
    assert.equal(tokenOf(post([['Origin', 'https://app.example.com']]), 'publisher', options).source, 'cookie')
    assert.equal(tokenOf(post([['Origin', 'HTTPS://APP.EXAMPLE.COM']]), 'publisher', options).source, 'cookie', 'case-insensitive')
    assert.equal(tokenOf(post([['Referer', 'https://app.example.com/page?x=1']]), 'publisher', options).source, 'cookie')
    assert.equal(tokenOf(post([['Referer', 'https://app.example.com:443/page']]), 'publisher', options).source, 'cookie', 'the default port is dropped')
    refused(post([['Origin', 'https://evil.example'], ['Referer', 'https://app.example.com/']]), options, /origin not allowed/) // Origin first
    assert.equal(tokenOf(post([['Origin', 'https://a.b.example.org']]), 'publisher', options).source, 'cookie', 'wildcard')
    assert.equal(tokenOf(post([['Origin', 'null']]), 'publisher', readAuthOptions({ publishOrigins: ['*'] })).source, 'cookie', '*')
    // a subscriber's GET: no CSRF concern; any unsafe method: checked
    assert.equal(tokenOf(request({ headers: [['Cookie', 'mercureAuthorization=C']] }), 'subscriber', options).source, 'cookie')
    assert.throws(() => tokenOf(post([]), 'subscriber', options), { status: 401 })
    // header tokens are not the browser's doing: no origin check
    assert.equal(tokenOf(request({ method: 'POST', headers: [['Authorization', 'Bearer T']] }), 'publisher', options).token, 'T')
    assert.throws(() => readAuthOptions({ publishOrigins: ['https://*.*.example.com'] }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
    assert.throws(() => readAuthOptions({ publishOrigins: 'https://a.example' }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  })
})

describe('verify: jose with exactly the role\'s algorithm', () => {
  test('HS256, RS256, ES256 and EdDSA tokens verify and give their mercure claims', async () => {
    const claims = { mercure: { publish: ['a'], subscribe: ['b', '*'], payload: { user: 'u1' } }, exp: NOW_S() + 60 }
    for (const [alg, verifyKey, signKey] of [
      ['HS256', SECRET, SECRET], ['RS256', spki(RSA), RSA.privateKey], ['ES256', spki(EC), EC.privateKey], ['EdDSA', spki(ED), ED.privateKey],
      ['PS256', spki(RSA), RSA.privateKey]
    ]) {
      const keys = resolveKeys({ publisherJwt: { key: verifyKey, alg }, anonymous: true }, {})
      const got = await verify(await sign(claims, { alg, key: signKey }), keys.publisher)
      assert.deepEqual(got, { publish: ['a'], subscribe: ['b', '*'], payload: { user: 'u1' }, exp: claims.exp }, alg)
      assert.ok(Object.isFrozen(got) && Object.isFrozen(got.subscribe) && Object.isFrozen(got.payload))
    }
  })

  test('a CERTIFICATE PEM gives its public key', { skip: certificate() ? false : 'openssl is not available' }, async () => {
    const keys = resolveKeys({ publisherJwt: { key: certificate(), alg: 'ES256' }, anonymous: true }, {})
    assert.deepEqual(await verify(await sign({ mercure: { publish: ['a'] } }, { alg: 'ES256', key: EC.privateKey }), keys.publisher), { publish: ['a'] })
  })

  test('none, wrong algorithm, bad signature, expired, not yet valid, malformed: 401 with a short reason', async () => {
    const keys = resolveKeys({ publisherJwt: { key: SECRET }, subscriberJwt: { key: spki(RSA), alg: 'RS256' } }, {})
    const rights = { mercure: { publish: ['*'] } }
    const cases = [
      [unsecured(rights), keys.publisher, 'token algorithm not accepted'],
      [await sign(rights, { alg: 'HS384' }), keys.publisher, 'token algorithm not accepted'],
      // the RS/HS confusion: HS256 signed with the public key's PEM as the secret
      [await sign(rights, { key: spki(RSA) }), keys.subscriber, 'token algorithm not accepted'],
      [await sign(rights, { key: 'another secret' }), keys.publisher, 'bad token signature'],
      [await sign({ ...rights, exp: NOW_S() - 1 }), keys.publisher, 'token expired'],
      [await sign({ ...rights, nbf: NOW_S() + 60 }), keys.publisher, 'token not yet valid'],
      [await sign({ ...rights, exp: 'tomorrow' }), keys.publisher, 'invalid token claims'],
      ['abc', keys.publisher, 'malformed token'],
      ['a.b', keys.publisher, 'malformed token'],
      ['a.b.c', keys.publisher, 'malformed token'],
      [`${b64url({ alg: 'HS256' })}.${Buffer.from('[1]').toString('base64url')}.AAAA`, keys.publisher, 'bad token signature'],
      ['', keys.publisher, 'empty token'],
      ['a'.repeat(MAX_TOKEN_BYTES + 1), keys.publisher, 'token too large']
    ]
    for (const [token, roleKey, reason] of cases) {
      await assert.rejects(verify(token, roleKey), (e) => {
        assert.ok(e instanceof MercureAuthError)
        assert.deepEqual([e.status, e.reason], [401, reason], `${reason}: got ${e.reason}`)
        assert.ok(!e.challenge.includes(token) || token === '', 'no token in the challenge')
        return true
      })
    }
  })

  test('clockToleranceSec lets a just-expired token through', async () => {
    const token = await sign({ exp: NOW_S() - 5 })
    const { ctx } = await context({ clockToleranceSec: 30 })
    assert.equal((await verify(token, ctx.keys.publisher, ctx)).exp, NOW_S() - 5)
    const strict = await context()
    await assert.rejects(verify(token, strict.ctx.keys.publisher, strict.ctx), { reason: 'token expired' })
  })

  test('the mercure claim: arrays of strings, at most 1000 of at most 1024 bytes; the namespaced claim replaces it', async () => {
    const { publisher } = resolveKeys({ publisherJwt: { key: SECRET }, anonymous: true }, {})
    const ok = (claim) => sign({ mercure: claim }).then((t) => verify(t, publisher))
    const bad = async (claim, pattern) => assert.rejects(ok(claim), (e) => e.status === 401 && pattern.test(e.reason))
    await bad({ publish: 'a' }, /publish claim is not an array/)
    await bad({ subscribe: [1] }, /selector of the subscribe claim is not a string/)
    await bad({ publish: new Array(1001).fill('a') }, /at most 1000/)
    await bad({ publish: ['é'.repeat(513)] }, /at most 1024 bytes/) // 1026 bytes in 513 characters
    await assert.rejects(sign({ mercure: 'x' }).then((t) => verify(t, publisher)), { reason: 'the mercure claim is not an object' })
    assert.equal((await ok({ publish: new Array(1000).fill('a') })).publish.length, 1000)
    assert.equal((await ok({ publish: ['é'.repeat(512)] })).publish[0].length, 512)
    assert.deepEqual(await ok({ publish: null, subscribe: [] }), { subscribe: [] })
    assert.deepEqual(await verify(await sign({ sub: 'x' }), publisher), {}, 'no mercure claim: valid, no right')
    // The deepest payload an 8 KiB token holds, signed by hand (JSON.stringify would recurse too deep)
    const input = `${b64url({ alg: 'HS256' })}.${Buffer.from(`{"mercure":{"payload":${'['.repeat(2500)}${']'.repeat(2500)}}}`).toString('base64url')}`
    const deepToken = `${input}.${crypto.createHmac('sha256', SECRET).update(input).digest('base64url')}`
    const deep = await verify(deepToken, publisher)
    assert.ok(Object.isFrozen(deep.payload[0][0][0]), 'a deep payload is frozen, without recursion')
    const both = await sign({ mercure: { publish: ['short'] }, 'https://mercure.rocks/': { publish: ['namespaced'] } })
    assert.deepEqual(await verify(both, publisher), { publish: ['namespaced'] }, 'as v0.24.2: the namespaced claim wins when present')
    const nullNs = await sign({ mercure: { publish: ['short'] }, 'https://mercure.rocks/': null })
    assert.deepEqual(await verify(nullNs, publisher), { publish: ['short'] })
  })
})

describe('authorizePublish and authorizeSubscribe: 401 vs 403', () => {
  const topics = ['foo', 'bar']

  test('publish: no token 401 (Bearer), a bad token 401 (invalid_token), rights missing, empty or short 403 (insufficient_scope)', async () => {
    const { ctx } = await context({ anonymous: true })
    const answer = async (req) => authorizePublish(req, topics, ctx)
    assert.deepEqual(await answer(request({ method: 'POST' })),
      { ok: false, status: 401, reason: 'no token', headers: { 'www-authenticate': 'Bearer' } })
    const expired = await answer(bearer(await sign({ mercure: { publish: ['*'] }, exp: NOW_S() - 1 })))
    assert.deepEqual(expired.headers, { 'www-authenticate': 'Bearer error="invalid_token", error_description="token expired"' })
    assert.equal((await answer(bearer(unsecured({ mercure: { publish: ['*'] } })))).status, 401)
    // the reference hub's table for topics [foo, bar]
    for (const [publish, status] of [[undefined, 403], [[], 403], [['foo'], 403], [['bar', 'foo'], 200], [['*'], 200], [['nope', '*'], 200]]) {
      const result = await answer(bearer(await sign({ mercure: { publish } })))
      assert.equal(result.ok ? 200 : result.status, status, `publish ${JSON.stringify(publish)}`)
      if (!result.ok) {
        assert.equal(result.headers['www-authenticate'], 'Bearer error="insufficient_scope", error_description="the token may not publish on these topics"')
        assert.ok(!result.reason.includes('foo') && !result.reason.includes('bar'), 'no topic named')
      }
    }
    const ok = await answer(bearer(await sign({ mercure: { publish: ['*'], payload: 1 } })))
    assert.deepEqual(ok, { ok: true, claims: { publish: ['*'], payload: 1 }, source: 'header' })
  })

  test('publish: the injected selector matcher decides non-identical selectors, for every topic', async () => {
    const seen = []
    const { jwtVerify } = await loadJose()
    const ctx = createAuthContext({ publisherJwt: { key: SECRET }, anonymous: true }, {
      env: {}, jwtVerify, selectorMatches: (selector, topic) => { seen.push([selector, topic]); return selector === 'any-' + topic[0] }
    })
    const token = await sign({ mercure: { publish: ['any-f', 'foo-exact'] } })
    assert.equal((await authorizePublish(bearer(token), ['foo-exact', 'fizz'], ctx)).ok, true)
    assert.deepEqual(seen, [['any-f', 'fizz']], 'an identical selector needs no matcher call')
    assert.equal((await authorizePublish(bearer(token), ['fizz', 'buzz'], ctx)).status, 403)
    seen.length = 0
    assert.equal((await authorizePublish(bearer(await sign({ mercure: { publish: ['x', '*'] } })), ['fizz'], ctx)).ok, true)
    assert.deepEqual(seen, [], '* allows every topic without asking the matcher')
  })

  test('publish: a cookie from an unlisted origin is 401; from a listed one it is verified; publisherJwt null is 403', async () => {
    const token = await sign({ mercure: { publish: ['*'] } })
    const cookie = (origin) => request({ method: 'POST', headers: [['Cookie', `mercureAuthorization=${token}`], ...(origin ? [['Origin', origin]] : [])] })
    const { ctx } = await context({ publishOrigins: ['https://app.example.com'] })
    assert.equal((await authorizePublish(cookie(), topics, ctx)).status, 401)
    assert.equal((await authorizePublish(cookie('https://evil.example'), topics, ctx)).status, 401)
    assert.deepEqual(await authorizePublish(cookie('https://app.example.com'), topics, ctx), { ok: true, claims: { publish: ['*'] }, source: 'cookie' })
    const off = await context({ publisherJwt: null })
    assert.deepEqual(await authorizePublish(bearer(token), topics, off.ctx), { ok: false, status: 403, reason: 'publishing over HTTP is off', headers: {} })
  })

  test('subscribe: anonymous off needs a token; anonymous on admits no token, never a bad one', async () => {
    const good = await sign({ mercure: { subscribe: ['a'] } })
    const expired = await sign({ exp: NOW_S() - 1 })
    for (const anonymous of [false, true]) {
      const { ctx } = await context({ anonymous })
      const none = await authorizeSubscribe(request(), ctx)
      if (anonymous) assert.deepEqual(none, { ok: true, claims: null, source: null })
      else assert.deepEqual(none, { ok: false, status: 401, reason: 'no token', headers: { 'www-authenticate': 'Bearer' } })
      for (const bad of [expired, unsecured({}), await sign({}, { key: 'other' }), 'x'.repeat(MAX_TOKEN_BYTES + 1)]) {
        const result = await authorizeSubscribe(bearer(bad), ctx)
        assert.equal(result.status, 401, `anonymous ${anonymous}`)
        assert.match(result.headers['www-authenticate'], /^Bearer error="invalid_token"/)
      }
      assert.deepEqual(await authorizeSubscribe(bearer(good), ctx), { ok: true, claims: { subscribe: ['a'] }, source: 'header' })
      const query = await authorizeSubscribe(request({ url: `/.well-known/mercure?topic=a&authorization=${good}` }), ctx)
      assert.equal(query.source, 'query', 'the layer adds Cache-Control: private for it')
    }
  })

  test('subscribe with no subscriber key: tokens are not read, everyone is anonymous', async () => {
    const { ctx, calls } = await context({ subscriberJwt: null, anonymous: true })
    assert.deepEqual(await authorizeSubscribe(bearer('garbage'), ctx), { ok: true, claims: null, source: null })
    assert.equal(calls.count, 0)
  })

  test('each role verifies with its own key', async () => {
    const { ctx } = await context({ subscriberJwt: { key: 'the subscriber secret' } })
    const publisherToken = await sign({ mercure: { publish: ['*'], subscribe: ['*'] } })
    assert.equal((await authorizePublish(bearer(publisherToken), ['a'], ctx)).ok, true)
    assert.equal((await authorizeSubscribe(bearer(publisherToken), ctx)).status, 401)
  })

  test('no reason holds a quote (it goes into the challenge) or the token', async () => {
    const { ctx } = await context({ allowQueryToken: false })
    const token = await sign({ exp: NOW_S() - 1 })
    const reqs = [bearer(token), request({ headers: [['Authorization', 'Basic x']] }), request({ url: `/?authorization=${token}` }),
      request({ method: 'POST', headers: [['Cookie', `mercureAuthorization=${token}`]] }), request({ headers: [['Authorization', 'Bearer a'], ['Authorization', 'Bearer b']] })]
    for (const req of reqs) {
      for (const result of [await authorizeSubscribe(req, ctx), await authorizePublish(req, ['a'], ctx)]) {
        assert.equal(result.ok, false)
        assert.ok(!result.reason.includes('"') && !result.reason.includes(token), result.reason)
      }
    }
  })
})

describe('the cache of verified tokens', () => {
  test('a connect storm with one token verifies it once', async () => {
    const { ctx, calls } = await context()
    const token = await sign({ mercure: { subscribe: ['*'] }, exp: NOW_S() + 60 })
    const storm = await Promise.all(Array.from({ length: 500 }, () => authorizeSubscribe(bearer(token), ctx)))
    assert.ok(storm.every((r) => r.ok && r.claims.subscribe[0] === '*'))
    assert.equal(calls.count, 1, 'concurrent requests share the verification under way')
    for (let i = 0; i < 100; i++) await authorizeSubscribe(bearer(token), ctx)
    assert.equal(calls.count, 1, 'later ones hit the cache')
    assert.equal(storm[0].claims, storm[499].claims, 'the same frozen claims')
    await authorizePublish(bearer(token), ['a'], ctx)
    assert.equal(calls.count, 2, 'the publisher role is cached apart')
    await authorizeSubscribe(bearer(await sign({ other: 1 })), ctx)
    assert.equal(calls.count, 3)
  })

  test('failures are not cached; an entry leaves at the token\'s exp, which then fails', async () => {
    let now = Date.now()
    const { ctx, calls } = await context({}, { now: () => now })
    const bad = await sign({}, { key: 'other' })
    await authorizeSubscribe(bearer(bad), ctx)
    await authorizeSubscribe(bearer(bad), ctx)
    assert.equal(calls.count, 2)
    const exp = Math.floor(now / 1000) + 10
    const token = await sign({ exp })
    assert.equal((await authorizeSubscribe(bearer(token), ctx)).ok, true)
    now = exp * 1000 - 1
    assert.equal((await authorizeSubscribe(bearer(token), ctx)).ok, true)
    assert.equal(calls.count, 3, 'cached until exp')
    now = exp * 1000
    assert.deepEqual(await authorizeSubscribe(bearer(token), ctx), {
      ok: false, status: 401, reason: 'token expired', headers: { 'www-authenticate': 'Bearer error="invalid_token", error_description="token expired"' }
    })
    assert.equal(calls.count, 4, 'verified again at exp, and refused by jose')
  })

  test('bounded: maxCachedTokens entries, least recently used out first; 0 keeps none', async () => {
    const { ctx, calls } = await context({ maxCachedTokens: 2 })
    const [a, b, c] = await Promise.all([1, 2, 3].map((n) => sign({ n })))
    for (const token of [a, b, a, c]) await authorizeSubscribe(bearer(token), ctx) // b is the least recently used when c comes
    assert.equal(calls.count, 3)
    assert.equal(ctx.cache.size, 2)
    await authorizeSubscribe(bearer(a), ctx)
    assert.equal(calls.count, 3, 'a was kept')
    await authorizeSubscribe(bearer(b), ctx)
    assert.equal(calls.count, 4, 'b was evicted')
    const none = await context({ maxCachedTokens: 0 })
    await authorizeSubscribe(bearer(a), none.ctx)
    await authorizeSubscribe(bearer(a), none.ctx)
    assert.equal(none.calls.count, 2)
    assert.equal(AUTH_DEFAULTS.maxCachedTokens, 10000)
  })

  test('VerifiedTokenCache: the byte bound and the exp of each entry', () => {
    let now = 0
    const cache = new VerifiedTokenCache({ maxEntries: 100, maxBytes: 3 * 1000 + 256 + 10, now: () => now })
    cache.set('x'.repeat(1000), 'big', Infinity)
    assert.equal(cache.get('x'.repeat(1000)), 'big')
    cache.set('y', 'small', Infinity)
    assert.equal(cache.get('x'.repeat(1000)), undefined, 'the byte bound evicted the oldest')
    assert.equal(cache.get('y'), 'small')
    cache.set('z', 'soon', 10)
    now = 10
    assert.equal(cache.get('z'), undefined)
    cache.set('w', 'past', 5)
    assert.equal(cache.size, 1, 'an entry already expired is not kept')
  })
})

test('Python (standard library only) signs an HS256 token that verifies', { skip: pythonMissing() }, async () => {
  const script = `
import base64, hashlib, hmac, json, sys, time
def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
payload = b64(json.dumps({"mercure": {"publish": ["*"], "subscribe": ["https://example.com/books/{id}"]}, "exp": int(time.time()) + 60}).encode())
signing_input = header + "." + payload
signature = b64(hmac.new(sys.argv[1].encode(), signing_input.encode(), hashlib.sha256).digest())
print(signing_input + "." + signature)
`
  const run = spawnSync('python3', ['-c', script, SECRET], { encoding: 'utf8', timeout: 10000 })
  assert.equal(run.status, 0, run.stderr)
  const token = run.stdout.trim()
  const { ctx } = await context()
  const result = await authorizePublish(bearer(token), ['https://example.com/books/1'], ctx)
  assert.equal(result.ok, true)
  assert.deepEqual(result.claims.subscribe, ['https://example.com/books/{id}'])
  const tampered = token.slice(0, -2) + (token.endsWith('AA') ? 'BB' : 'AA')
  assert.equal((await authorizePublish(bearer(tampered), ['a'], ctx)).status, 401)
})

function pythonMissing () {
  const probe = spawnSync('python3', ['-c', 'import hmac, hashlib, base64, json'], { encoding: 'utf8' })
  return probe.status === 0 ? false : 'python3 (with hmac, hashlib, base64, json) is not available'
}
