'use strict'
// The catch-up endpoint on a hub with compression (docs/compression.md, "What
// is compressed"): hub.poll() and the Express poll() middleware answer JSON,
// gzip-compressed per answer when the request's Accept-Encoding takes gzip
// (deflate-only clients get identity) and it is at least minBytes, each event
// between full flushes; Vary: accept-encoding on every answer of such a hub;
// a hub without compression answers as before. Real HTTP over loopback; the
// body is decoded by zlib's one-shot decoders, which check the trailer.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const zlib = require('node:zlib')
const { Hub } = require('../..')
const { poll } = require('../../lib/express')
const { listenLoopback } = require('../helpers/listen')
const { cleanup } = require('../helpers/wait')

async function listen (t, handler) {
  return listenLoopback(cleanup(t), http.createServer(handler))
}

function get (port, path, acceptEncoding) {
  return new Promise((resolve, reject) => {
    const headers = acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding }
    http.get({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, raw: Buffer.concat(chunks) }))
      res.on('error', reject)
    }).on('error', reject)
  })
}

function decode (res) {
  const coding = res.headers['content-encoding']
  if (coding === 'gzip') return zlib.gunzipSync(res.raw)
  if (coding === 'deflate') return zlib.inflateSync(res.raw)
  assert.equal(coding, undefined)
  return res.raw
}

const RECORD = { id: 'r1', title: 'Compression of the catch-up', body: 'a post body with words in it, '.repeat(30) }

function hubWithEvents (t, options) {
  const hub = new Hub({ threads: 1, heartbeatMs: 0, history: true, ...options })
  cleanup(t)(() => hub.close(), 'hub.close()')
  const first = hub.publish('news', { n: 0 })
  for (let n = 1; n <= 20; n++) hub.publish('news', { n, ...RECORD })
  return { hub, first }
}

test('hub.poll() on a hub with compression: gzip or identity as Accept-Encoding says; the JSON is the same', async (t) => {
  const { hub, first } = hubWithEvents(t, { compression: true })
  const port = await listen(t, (req, res) => hub.poll(req, res, { topics: ['news'] }))
  const path = `/poll?since=${encodeURIComponent(first)}`
  const plain = await get(port, path)
  assert.equal(plain.status, 200)
  assert.equal(plain.headers['content-encoding'], undefined)
  assert.equal(plain.headers.vary?.toLowerCase(), 'accept-encoding')
  const body = JSON.parse(plain.raw)
  assert.equal(body.events.length, 20)
  assert.deepEqual(JSON.parse(body.events[19].data), { n: 20, ...RECORD })
  for (const [acceptEncoding, coding] of [['gzip', 'gzip'], ['deflate', undefined], ['gzip;q=0.5, deflate', 'gzip'], ['br', undefined], ['gzip;q=0', undefined]]) {
    const res = await get(port, path, acceptEncoding)
    assert.equal(res.status, 200, acceptEncoding)
    assert.equal(res.headers['content-encoding'], coding, acceptEncoding)
    assert.equal(res.headers.vary?.toLowerCase(), 'accept-encoding', acceptEncoding)
    assert.equal(Number(res.headers['content-length']), res.raw.length, `${acceptEncoding}: content-length is the bytes sent`)
    assert.deepEqual(decode(res), plain.raw, `${acceptEncoding}: the same JSON`)
    if (coding !== undefined) assert.ok(res.raw.length * 3 < plain.raw.length, `${acceptEncoding}: ${res.raw.length} of ${plain.raw.length} bytes`)
  }
})

test('hub.poll(): an answer under minBytes and a 204 are not compressed; a hub without compression answers as before', async (t) => {
  const { hub, first } = hubWithEvents(t, { compression: { minBytes: 1 << 20 } })
  const port = await listen(t, (req, res) => hub.poll(req, res, { topics: ['news'] }))
  const small = await get(port, `/poll?since=${encodeURIComponent(first)}`, 'gzip')
  assert.equal(small.status, 200)
  assert.equal(small.headers['content-encoding'], undefined, 'under minBytes: identity')
  assert.equal(small.headers.vary?.toLowerCase(), 'accept-encoding')
  assert.equal(JSON.parse(small.raw).events.length, 20)
  const latest = JSON.parse(small.raw).cursor
  const none = await get(port, `/poll?since=${encodeURIComponent(latest)}`, 'gzip')
  assert.equal(none.status, 204)
  assert.equal(none.headers['content-encoding'], undefined)
  assert.equal(none.raw.length, 0)

  const { hub: plainHub, first: plainFirst } = hubWithEvents(t, {})
  const plainPort = await listen(t, (req, res) => plainHub.poll(req, res, { topics: ['news'] }))
  const res = await get(plainPort, `/poll?since=${encodeURIComponent(plainFirst)}`, 'gzip')
  assert.equal(res.status, 200)
  assert.equal(res.headers['content-encoding'], undefined)
  assert.equal(res.headers.vary, undefined)
  assert.equal(JSON.parse(res.raw).events.length, 20)
})

test('the Express poll() middleware compresses its answer as hub.poll() does', async (t) => {
  const express = require('express')
  const { hub, first } = hubWithEvents(t, { compression: true })
  const app = express()
  app.get('/poll', poll(hub, { topics: ['news'] }))
  const port = await listen(t, app)
  const res = await get(port, `/poll?since=${encodeURIComponent(first)}`, 'gzip')
  assert.equal(res.status, 200)
  assert.equal(res.headers['content-encoding'], 'gzip')
  assert.equal(res.headers.vary?.toLowerCase(), 'accept-encoding')
  const body = JSON.parse(decode(res))
  assert.equal(body.events.length, 20)
  assert.deepEqual(JSON.parse(body.events[0].data), { n: 1, ...RECORD })
})
