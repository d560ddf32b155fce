'use strict'
// An adversarial review of compressed streams (issue 16): each test holds the
// hub to a promise docs/compression.md or the API makes, on a case the other
// compression tests leave out. Real sockets on loopback; compressed bodies go
// through zlib's streaming decoders chunk by chunk, as a browser decodes them.
//  1. An event publish() accepts (it fits maxQueueBytes, "so a client can
//     receive it") reaches gzip and deflate streams as it reaches identity
//     ones: its stored coding (5 bytes per 65,535) must not push it past the
//     queue bound and get every compressed stream closed as slow.
//  2. The same for a Last-Event-ID replay that fits an identity stream.
//  3. The catch-up answer of a hub with compression keeps the Vary the app
//     set (CORS's `Vary: Origin`): "Headers the app set before are kept".
//  4. Events that no compressed stream receives are not compressed: one gzip
//     stream on the hub does not make the JS thread compress (and the history
//     keep a coded copy of) every event of every topic.
//  5. Catch-up answers keep the security section's promises: a compress:
//     false event is not compressed, and no window spans two events.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const zlib = require('node:zlib')
const { Hub } = require('../..')
const { SseParser } = require('../helpers/sse-parser')
const { listenLoopback } = require('../helpers/listen')
const { cleanup, waitFor } = require('../helpers/wait')

const MIB = 1024 * 1024
const CODINGS = [undefined, 'gzip', 'deflate'] // undefined: identity

async function listen (t, handler) {
  return listenLoopback(cleanup(t), http.createServer(handler))
}

/** A hub closed after the test. */
function startHub (t, options) {
  const hub = new Hub({ threads: 1, heartbeatMs: 0, ...options })
  cleanup(t)(() => hub.close(), 'hub.close()')
  return hub
}

/**
 * GET `path` with that Accept-Encoding; resolves at the response head with
 * { coding, events, decodedBytes, aborted, decodeError }: the body is decoded
 * as it comes (zlib's streaming decoder for the Content-Encoding) and parsed
 * as SSE (unless `parse` is false: megabytes of events, only counted).
 */
function openStream (t, port, path, acceptEncoding, headers = {}, parse = true) {
  return new Promise((resolve) => {
    const h = { accept: 'text/event-stream', ...headers }
    if (acceptEncoding !== undefined) h['accept-encoding'] = acceptEncoding
    const req = http.get({ host: '127.0.0.1', port, path, headers: h, agent: false }, (res) => {
      const coding = res.headers['content-encoding'] || null
      const s = { coding, status: res.statusCode, events: [], decodedBytes: 0, aborted: false, ended: false, decodeError: null }
      const sse = new SseParser((ev) => s.events.push(ev))
      const parser = { push: (b) => { s.decodedBytes += b.length; if (parse) sse.push(b) } }
      const decoder = coding === 'gzip' ? zlib.createGunzip() : coding === 'deflate' ? zlib.createInflate() : null
      if (decoder) {
        decoder.on('data', (b) => parser.push(b))
        decoder.on('error', (err) => { s.decodeError = err })
      }
      res.on('data', (chunk) => (decoder ? decoder.write(chunk) : parser.push(chunk)))
      res.on('end', () => { s.ended = true })
      res.on('aborted', () => { s.aborted = true })
      res.on('error', () => { s.aborted = true })
      res.on('close', () => { if (!s.ended) s.aborted = true })
      resolve(s)
    })
    // A connection reset before the head (a stream closed at once as slow):
    // a stream that got nothing, rather than a rejection.
    req.on('error', (error) => resolve({ coding: acceptEncoding, events: [], decodedBytes: 0, aborted: true, decodeError: null, error }))
    cleanup(t)(() => req.destroy(), `close ${path}`)
  })
}

function label (coding) { return coding || 'identity' }

// maxQueueBytes: 1 MiB (the default). publish() refuses an event that
// "encodes to more than maxQueueBytes, so no client could receive it"
// (kQueueFraming: 32 bytes of chunk framing). One of 1 MiB - 40 bytes is
// accepted and goes to an identity stream in one chunk (5 hex digits + CRLFs:
// 1 MiB - 31 bytes). Its stored coding adds 17 block headers (85 bytes): past
// the bound, so Shard::enqueue closes every compressed stream as slow,
// whatever its client, on every such event. (An event deflate cannot
// shrink is stored the same way; compress: false makes one for sure.)
test('a compress: false event that publish() accepts (within maxQueueBytes) reaches gzip and deflate streams as it reaches an identity one', async (t) => {
  const hub = startHub(t, { compression: true })
  const port = await listen(t, (req, res) => hub.accept(req, res, { topics: ['t'] }))
  const streams = []
  for (const coding of CODINGS) streams.push(await openStream(t, port, '/sse', coding))
  assert.deepEqual(streams.map((s) => s.coding), [null, 'gzip', 'deflate'])
  const data = 'x'.repeat(MIB - 40 - 8) // "data: " + data + "\n\n": 1 MiB - 40 bytes
  hub.publish('t', data, { compress: false }) // accepted: it fits maxQueueBytes
  hub.publish('t', 'after')
  for (const s of streams) {
    await waitFor(() => s.events.length >= 2 || s.aborted, 5000, `2 events on ${label(s.coding)}`)
    assert.equal(s.aborted, false, `the ${label(s.coding)} stream was cut (closed as a slow consumer)`)
    assert.equal(s.decodeError, null)
    assert.equal(s.events[0].data, data, label(s.coding))
    assert.equal(s.events[1].data, 'after')
  }
  assert.equal(hub.stats().slow, 0, 'no stream closed as slow')
})

test('a Last-Event-ID replay that fits an identity stream is replayed to gzip and deflate streams too', async (t) => {
  // Dispatcher::resume selects what fits maxQueueBytes with 32 bytes of
  // framing per frame (kQueueFraming); stored blocks add 5 bytes per 65,535
  // more, which no budget holds: 4 stored events of 4 MiB overrun it by
  // ~1 KiB, and the compressed stream is closed as slow at every reconnect.
  const size = 4 * MIB
  const count = 4
  const data = 'y'.repeat(size - 8) // "data: " + data + "\n\n": size bytes
  const maxQueueBytes = count * (size + 32) + 384 + 600 // + the head (under 600 bytes)
  const hub = startHub(t, { compression: true, maxQueueBytes, history: { maxBytes: 64 * MIB } })
  const port = await listen(t, (req, res) => hub.accept(req, res, { topics: ['t'] }))
  const first = hub.publish('t', 'first')
  for (let k = 0; k < count; k++) hub.publish('t', data, { compress: false })
  let identityBytes = 0
  for (const coding of CODINGS) {
    const s = await openStream(t, port, '/sse', coding, { 'last-event-id': first }, false)
    const want = coding === undefined ? count * size : identityBytes
    await waitFor(() => s.decodedBytes >= want || s.aborted, 10000, () => `the replay on ${label(s.coding)} (${s.decodedBytes} of ${want} bytes)`)
    assert.equal(s.aborted, false, `the ${label(s.coding)} stream was cut during its replay (closed as a slow consumer)`)
    assert.equal(s.decodeError, null)
    if (coding === undefined) identityBytes = s.decodedBytes
    else assert.equal(s.decodedBytes, identityBytes, `${label(s.coding)}: the identity stream's bytes`)
  }
  assert.equal(hub.stats().slow, 0, 'no stream closed as slow')
})

test("the catch-up answer of a hub with compression keeps the app's own Vary (CORS: Vary: Origin)", async (t) => {
  for (const compression of [false, true]) {
    const hub = startHub(t, { history: true, compression })
    const first = hub.publish('news', { n: 0 })
    for (let n = 1; n <= 20; n++) hub.publish('news', { n, body: 'words in a post body, '.repeat(20) })
    const port = await listen(t, (req, res) => {
      res.setHeader('access-control-allow-origin', 'https://app.example')
      res.setHeader('vary', 'Origin')
      hub.poll(req, res, { topics: ['news'] })
    })
    for (const acceptEncoding of [undefined, 'gzip']) {
      const res = await new Promise((resolve, reject) => {
        const headers = acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding }
        http.get({ host: '127.0.0.1', port, path: `/poll?since=${encodeURIComponent(first)}`, headers, agent: false }, (r) => {
          r.resume()
          r.on('end', () => resolve(r))
        }).on('error', reject)
      })
      const what = `compression ${compression}, accept-encoding ${acceptEncoding}`
      assert.equal(res.statusCode, 200, what)
      const vary = String(res.headers.vary || '').toLowerCase().split(/\s*,\s*/)
      assert.ok(vary.includes('origin'), `${what}: Vary ${JSON.stringify(res.headers.vary)} lost the app's "Origin"`)
      if (compression) assert.ok(vary.includes('accept-encoding'), `${what}: Vary ${JSON.stringify(res.headers.vary)}`)
    }
  }
})

test('one gzip stream does not make the hub compress events that no compressed stream receives', async (t) => {
  // Dispatcher::precode makes a frame's coded variant at publish, on the JS
  // thread, as soon as any I/O thread has a compressed stream, whatever the
  // topic: every browser's EventSource asks for gzip, so one subscriber of
  // 'watched' costs a level-6 compression of every event of every topic, and
  // the history keeps each coded copy (outside its maxBytes). Frames are
  // counted by hub.stats().frames (Frame::liveCount: a variant is a frame).
  const hub = startHub(t, { compression: true, history: true })
  const port = await listen(t, (req, res) => hub.accept(req, res, { topics: ['watched'] }))
  const s = await openStream(t, port, '/sse', 'gzip')
  assert.equal(s.coding, 'gzip')
  await waitFor(() => hub.stats().compression.connections === 1, 5000, 'the gzip stream counted')
  const before = hub.stats().frames
  const n = 50
  for (let k = 0; k < n; k++) hub.publish('unwatched', { k, body: 'a record nobody compressed receives, '.repeat(30) })
  // The history holds the n frames; a coded variant each would double them.
  await waitFor(() => hub.stats().frames - before <= n + 1, 2000,
    () => `${hub.stats().frames - before} frames for ${n} events on a topic without a compressed subscriber`)
})

/** GET the catch-up endpoint: { status, headers, raw, json } (the body decoded for its JSON). */
function getPoll (port, path, acceptEncoding) {
  return new Promise((resolve, reject) => {
    const headers = acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding }
    http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => {
        const raw = Buffer.concat(chunks)
        const coding = res.headers['content-encoding']
        const plain = coding === 'gzip' ? zlib.gunzipSync(raw) : coding === 'deflate' ? zlib.inflateSync(raw) : raw
        resolve({ status: res.statusCode, headers: res.headers, raw, json: JSON.parse(plain) })
      })
      res.on('error', reject)
    }).on('error', reject)
  })
}

// docs/compression.md, "Security": publish({ compress: false }) sends the
// event "stored, byte for byte", and "no compressor window spans two events",
// so that an attacker who publishes beside a victim's secret events learns
// nothing from the sizes. The catch-up answer (hub.poll(), Express poll())
// is JSON compressed per answer by zlib.gzip/deflate: one window over every
// event of the answer, compress: false ones included.
test('catch-up answers: an event published with compress: false is not compressed (its bytes go as they are)', async (t) => {
  const hub = startHub(t, { history: true, compression: true })
  const first = hub.publish('account', 'start')
  const secret = 'tok_' + require('node:crypto').randomBytes(24).toString('hex')
  hub.publish('account', JSON.stringify({ token: secret, title: 'a title the user wrote '.repeat(8) }), { compress: false })
  const port = await listen(t, (req, res) => hub.poll(req, res, { topics: ['account'] }))
  for (const acceptEncoding of ['gzip', 'deflate']) {
    const res = await getPoll(port, `/poll?since=${encodeURIComponent(first)}`, acceptEncoding)
    assert.equal(res.status, 200)
    assert.equal(res.json.events.length, 1)
    assert.ok(res.raw.includes(secret),
      `${acceptEncoding}: the compress: false event was compressed (content-encoding ${res.headers['content-encoding']}, the token not in the bytes sent)`)
  }
})

test('catch-up answers: no compressor window spans two events (an event repeated is not a back-reference)', async (t) => {
  // Two events with the same 4 KiB of random text: compressed each on its
  // own, an answer with both costs about twice one with either; in one
  // window the second is a back-reference to the first, almost free (that
  // is what lets CRIME/BREACH read a secret event through a chosen one).
  const hub = startHub(t, { history: true, compression: true })
  const text = require('node:crypto').randomBytes(3 * 1024).toString('base64')
  const first = hub.publish('room', 'start')
  const one = hub.publish('room', text)
  hub.publish('room', text)
  const port = await listen(t, (req, res) => hub.poll(req, res, { topics: ['room'] }))
  // (A catch-up answer is offered gzip only: a deflate-only client gets identity.)
  for (const acceptEncoding of ['gzip']) {
    const both = await getPoll(port, `/poll?since=${encodeURIComponent(first)}`, acceptEncoding)
    const last = await getPoll(port, `/poll?since=${encodeURIComponent(one)}`, acceptEncoding)
    assert.equal(both.json.events.length, 2)
    assert.equal(last.json.events.length, 1)
    assert.equal(both.headers['content-encoding'], acceptEncoding)
    assert.ok(both.raw.length > 1.6 * last.raw.length,
      `${acceptEncoding}: ${both.raw.length} bytes for both events, ${last.raw.length} for one: the second event was compressed against the first`)
  }
})
