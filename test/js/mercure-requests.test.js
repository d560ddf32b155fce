'use strict'
// The request side of sse-fanout/mercure without a hub: the publish form
// (Go's url.ParseQuery rules, the body bound), the update rules shared by the
// POST and publish() (lib/mercure/update.js), CORS (lib/mercure/cors.js), the
// options (lib/mercure/options.js) and mercureLink(). The protocol over
// sockets is in mercure-*.test.js beside this one.

const { test, describe } = require('node:test')
const assert = require('node:assert/strict')
const { PassThrough } = require('node:stream')
const { HttpError, parseForm, formFromObject, readBody, isForm } = require('../../lib/mercure/form')
const { checkUpdate, updateFromForm, RESERVED_TOPIC } = require('../../lib/mercure/update')
const { readCorsOptions, corsHeaders, isPreflight, answerPreflight } = require('../../lib/mercure/cors')
const { readOptions, DEFAULTS } = require('../../lib/mercure/options')
const { mercureLink } = require('../../lib/mercure/discovery')
const { MAX_TOPIC_BYTES } = require('../../lib/validate')

const form = (text) => parseForm(Buffer.from(text, 'latin1'))
const httpError = (status, pattern) => (err) => err instanceof HttpError && err.status === status && pattern.test(err.message)

/** A response double with the header methods the hub uses. */
function response () {
  const headers = {}
  return {
    headers,
    statusCode: 200,
    ended: false,
    setHeader (name, value) { headers[name.toLowerCase()] = value },
    getHeader (name) { return headers[name.toLowerCase()] },
    end () { this.ended = true }
  }
}

describe('publish form parsing (Go url.ParseQuery)', () => {
  test('names repeat in order, + is a space, escapes are UTF-8, empty pairs are skipped', () => {
    const fields = form('topic=https%3A%2F%2Fexample.com%2Fbooks%2F1&&topic=b+c&data=%C3%A9t%C3%A9&private&id=')
    assert.deepEqual(fields.get('topic'), ['https://example.com/books/1', 'b c'])
    assert.deepEqual(fields.get('data'), ['été'])
    assert.deepEqual(fields.get('private'), [''])
    assert.deepEqual(fields.get('id'), [''])
    assert.equal(form('').size, 0)
  })

  test('raw UTF-8 bytes in the body are read as UTF-8', () => {
    const fields = parseForm(Buffer.from('data=日本&topic=x', 'utf8'))
    assert.deepEqual(fields.get('data'), ['日本'])
  })

  test('a bad escape, a ; separator or bytes that are not UTF-8 make the whole form malformed', () => {
    assert.throws(() => form('topic=a&data=%zz'), httpError(400, /two hexadecimal digits/))
    assert.throws(() => form('topic=a&data=%4'), httpError(400, /two hexadecimal digits/))
    assert.throws(() => form('topic=a;data=b'), httpError(400, /";" is not a separator/))
    assert.throws(() => form('topic=a&data=%ff%fe'), httpError(400, /not UTF-8/))
  })

  test('a body parsed by express.urlencoded() gives the same fields; nested values are refused', () => {
    const fields = formFromObject({ topic: ['a', 'b'], data: 'x', private: '' })
    assert.deepEqual(fields.get('topic'), ['a', 'b'])
    assert.deepEqual(fields.get('data'), ['x'])
    assert.throws(() => formFromObject({ topic: { a: 'b' } }), httpError(400, /not a plain field/))
    assert.throws(() => formFromObject(null), httpError(400, /malformed/))
  })

  test('the media type is read without its parameters', () => {
    assert.equal(isForm({ headers: { 'content-type': 'Application/X-WWW-Form-Urlencoded; charset=utf-8' } }), true)
    assert.equal(isForm({ headers: { 'content-type': 'multipart/form-data; boundary=x' } }), false)
    assert.equal(isForm({ headers: {} }), false)
  })

  test('readBody: a declared or streamed body past the limit is a 413 that closes the connection', async () => {
    const declared = new PassThrough()
    declared.headers = { 'content-length': '11' }
    await assert.rejects(readBody(declared, 10), (err) => err.status === 413 && err.headers.connection === 'close')
    const streamed = new PassThrough()
    streamed.headers = {}
    const reading = readBody(streamed, 10)
    streamed.write('123456')
    streamed.write('789012')
    await assert.rejects(reading, (err) => err.status === 413)
    const fits = new PassThrough()
    fits.headers = {}
    const read = readBody(fits, 10)
    fits.end('1234567890')
    assert.equal((await read).toString(), '1234567890')
  })
})

describe('update rules', () => {
  const fields = (entries) => new Map(Object.entries(entries))

  test('a form update: first values, private when present at all, a urn:uuid id when none, retry 0 is none', () => {
    const u = updateFromForm(fields({ topic: ['a', 'b', 'a'], data: ['x', 'ignored'], private: [''], retry: ['0'] }), 10)
    assert.deepEqual(u.topics, ['a', 'b'])
    assert.equal(u.data, 'x')
    assert.equal(u.isPrivate, true)
    assert.match(u.id, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    assert.equal(u.retry, undefined)
    assert.equal(u.type, undefined)
    const v = updateFromForm(fields({ topic: ['a'], id: ['urn:x:1'], type: ['book'], retry: ['1500'] }), 10)
    assert.deepEqual([v.data, v.isPrivate, v.id, v.type, v.retry], ['', false, 'urn:x:1', 'book', 1500])
  })

  test('bad fields are 400 (reserved topics 403), with a reason naming the field', () => {
    const refused = (entries, status, pattern) => assert.throws(() => updateFromForm(fields({ topic: ['a'], ...entries }), 10),
      (err) => err.statusCode === status && pattern.test(err.message), JSON.stringify(entries))
    refused({ retry: ['-1'] }, 400, /Invalid "retry" parameter/)
    refused({ retry: ['1.5'] }, 400, /Invalid "retry" parameter/)
    refused({ retry: ['99999999999999999999'] }, 400, /Invalid "retry" parameter/)
    refused({ id: ['#1'] }, 400, /not starting with "#" for id/)
    refused({ id: ['a\nretry: 1'] }, 400, /for id/)
    refused({ id: ['x'.repeat(257)] }, 400, /at most 256 bytes/)
    refused({ type: ['a\rb'] }, 400, /for type/)
    refused({ topic: [''] }, 400, /topic\[0\]/)
    refused({ topic: ['a', 'b\u0007'] }, 400, /topic\[1\]/)
    refused({ topic: ['x'.repeat(MAX_TOPIC_BYTES + 1)] }, 400, /topic\[0\]/)
    refused({ topic: [`https://example.com${RESERVED_TOPIC}/subscriptions/x`] }, 403, /reserved/)
    assert.throws(() => updateFromForm(fields({ topic: ['a', 'b', 'c'] }), 2), /at most 2 topics/)
  })

  test('publish() updates: topic or topics, data JSON-encoded unless a string, plain SseErrors', () => {
    assert.deepEqual(checkUpdate({ topic: 'a', data: { n: 1 } }, 10).data, '{"n":1}')
    assert.deepEqual(checkUpdate({ topics: ['a', 'b'], private: true, id: 'i', retry: 10 }, 10),
      { topics: ['a', 'b'], data: '', isPrivate: true, id: 'i', type: undefined, retry: 10 })
    const code = (update, expected) => assert.throws(() => checkUpdate(update, 2), { code: expected }, JSON.stringify(update))
    code({ data: 'x' }, 'ERR_SSE_INVALID_ARGUMENT')
    code({ topic: 'a', topics: ['b'] }, 'ERR_SSE_INVALID_ARGUMENT')
    code({ topics: [] }, 'ERR_SSE_INVALID_TOPIC')
    code({ topics: ['a', 'b', 'c'] }, 'ERR_SSE_INVALID_ARGUMENT')
    code({ topic: 'a', private: 'yes' }, 'ERR_SSE_INVALID_ARGUMENT')
    code({ topic: 'a', id: '#x' }, 'ERR_SSE_INVALID_ID')
    code({ topic: 'a', type: 'a\nb' }, 'ERR_SSE_INVALID_EVENT')
    code({ topic: 'a', retry: -1 }, 'ERR_SSE_INVALID_RETRY')
    code({ topic: 'a', data: () => {} }, 'ERR_SSE_INVALID_DATA')
  })
})

describe('CORS', () => {
  const cors = readCorsOptions({ origins: ['https://app.example.com'] })
  const req = (method, headers) => ({ method, headers })

  test('an allowed origin gets the origin back, credentials and the exposed Last-Event-ID; another gets only Vary', () => {
    const ok = response()
    corsHeaders(req('GET', { origin: 'https://APP.example.com' }), ok, cors)
    assert.equal(ok.headers['access-control-allow-origin'], 'https://APP.example.com')
    assert.equal(ok.headers['access-control-allow-credentials'], 'true')
    assert.equal(ok.headers['access-control-expose-headers'], 'Last-Event-ID')
    assert.equal(ok.headers.vary, 'Origin')
    const other = response()
    corsHeaders(req('GET', { origin: 'https://evil.example' }), other, cors)
    assert.deepEqual(other.headers, { vary: 'Origin' })
    const off = response()
    corsHeaders(req('GET', { origin: 'https://app.example.com' }), off, readCorsOptions(undefined))
    assert.deepEqual(off.headers, {})
  })

  test('a preflight is 204; the CORS headers only when origin, method and headers are allowed', () => {
    const asked = req('OPTIONS', {
      origin: 'https://app.example.com',
      'access-control-request-method': 'GET',
      'access-control-request-headers': 'Authorization, Last-Event-ID'
    })
    assert.equal(isPreflight(asked), true)
    assert.equal(isPreflight(req('OPTIONS', {})), false)
    const ok = response()
    answerPreflight(asked, ok, cors)
    assert.equal(ok.statusCode, 204)
    assert.equal(ok.ended, true)
    assert.equal(ok.headers['access-control-allow-origin'], 'https://app.example.com')
    assert.equal(ok.headers['access-control-allow-methods'], 'GET')
    assert.equal(ok.headers['access-control-allow-headers'], 'authorization, last-event-id')
    assert.equal(ok.headers['access-control-allow-credentials'], 'true')
    for (const headers of [
      { ...asked.headers, origin: 'https://evil.example' },
      { ...asked.headers, 'access-control-request-method': 'DELETE' },
      { ...asked.headers, 'access-control-request-method': 'HEAD' }, // the hub answers HEAD 405
      { ...asked.headers, 'access-control-request-headers': 'x-custom' }
    ]) {
      const refused = response()
      answerPreflight(req('OPTIONS', headers), refused, cors)
      assert.equal(refused.statusCode, 204)
      assert.equal(refused.headers['access-control-allow-origin'], undefined, JSON.stringify(headers))
    }
  })

  test('"*" allows any origin without credentials (a listed one keeps them); malformed origins are refused', () => {
    // Echoing any origin with credentials would let every web site read a
    // signed-in user's private updates through the mercureAuthorization cookie.
    const cors = readCorsOptions({ origins: ['*', 'https://app.example.com'] })
    const any = response()
    corsHeaders(req('GET', { origin: 'https://x.example' }), any, cors)
    assert.equal(any.headers['access-control-allow-origin'], '*')
    assert.equal(any.headers['access-control-allow-credentials'], undefined)
    const preflight = response()
    answerPreflight(req('OPTIONS', { origin: 'https://x.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }), preflight, cors)
    assert.equal(preflight.headers['access-control-allow-origin'], '*')
    assert.equal(preflight.headers['access-control-allow-credentials'], undefined)
    assert.equal(preflight.headers['access-control-allow-headers'], 'authorization')
    const listed = response()
    corsHeaders(req('GET', { origin: 'https://app.example.com' }), listed, cors)
    assert.equal(listed.headers['access-control-allow-origin'], 'https://app.example.com')
    assert.equal(listed.headers['access-control-allow-credentials'], 'true')
    assert.throws(() => readCorsOptions({ origins: ['app.example.com'] }), /options\.cors\.origins\[0\]/)
    assert.throws(() => readCorsOptions(['https://a.example']), /options\.cors/)
  })
})

describe('options', () => {
  test('defaults, and each option checked with its name', () => {
    const { options, hubOptions } = readOptions({})
    assert.deepEqual(options, { ...DEFAULTS })
    assert.equal(hubOptions.history, true)
    assert.equal(readOptions({ hubOptions: { history: false } }).hubOptions.history, false)
    assert.throws(() => readOptions({ path: 'mercure' }), /options\.path/)
    assert.throws(() => readOptions({ path: '/a?b' }), /options\.path/)
    assert.throws(() => readOptions({ maxBodyBytes: 0 }), /options\.maxBodyBytes/)
    assert.throws(() => readOptions({ maxTopicsPerUpdate: 1.5 }), /options\.maxTopicsPerUpdate/)
    assert.throws(() => readOptions({ hub: {} }), /options\.hub/)
    assert.throws(() => readOptions({ hub: {}, hubOptions: {} }), /either options\.hub or options\.hubOptions/)
    assert.throws(() => readOptions(null), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  })
})

describe('mercureLink', () => {
  test('adds the Link header beside any other, on a node response or a Fastify-like reply', () => {
    const res = response()
    mercureLink(res, 'https://example.com/.well-known/mercure')
    assert.equal(res.headers.link, '<https://example.com/.well-known/mercure>; rel="mercure"')
    mercureLink(res, '/hub2')
    assert.deepEqual(res.headers.link, ['<https://example.com/.well-known/mercure>; rel="mercure"', '</hub2>; rel="mercure"'])
    const headers = { link: '</books/1>; rel="self"' }
    const reply = { header (n, v) { headers[n] = v; return this }, getHeader (n) { return headers[n] } }
    mercureLink(reply, '/.well-known/mercure')
    assert.deepEqual(headers.link, ['</books/1>; rel="self"', '</.well-known/mercure>; rel="mercure"'])
    assert.throws(() => mercureLink(res, 'a b'), { code: 'ERR_SSE_INVALID_ARGUMENT' })
    assert.throws(() => mercureLink({}, '/hub'), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  })
})
