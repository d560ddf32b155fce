'use strict'
// Fault test: limits, and nothing partially applied. After every refusal the
// state is checked (the client's subscriptions, the native index counts, the
// hub's connection and subscription counts) and, over a real stream, that the
// refused request had no effect: an event for what it tried to add does not
// arrive, while an event for what was there before does (events on one stream
// arrive in order, so the second proves the first would have been seen).
//   - PocketBase POST /api/realtime (node:http handler, Fastify plugin,
//     Express middleware): 413 past maxBodyBytes (with content-length, and
//     chunked without one); 400 for more than 1000 subscriptions (JSON and
//     form), a subscription longer than 2500 characters, a CR/LF/NUL, bad JSON,
//     another content type; 404 for an unknown client; the limits themselves
//     accepted; the hub's maxSubscriptions below 1000 gives 400 as well.
//   - Hub maxSubscriptions: accept() (Fastify: 400), subscribe() all or nothing.
//   - Topics longer than 1024 bytes (ASCII and multi-byte) refused in
//     publish, subscribe and accept; 1024 bytes accepted.
//   - maxConnectionsPerIp under concurrency: exactly the limit accepted, the
//     rest 429, and the count comes back as streams end.
//   - Data larger than maxQueueBytes: refused, nothing sent, not counted.
// Scale: full = 2000 concurrent attempts for 500 slots; ci = 200 for 50.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const net = require('node:net')
const Fastify = require('fastify')
const express = require('express')
const sseFanout = require('../../lib/fastify')
const { Realtime, fastifyRealtime, expressRealtime } = require('../../lib/pocketbase')
const { SseParser } = require('../helpers/sse-parser')
const { cleanup, waitFor } = require('../helpers/wait')
const { SCALE, scaled, Dechunker, record, fig } = require('../helpers/stress-common')

const KiB = 1024
const MAX_BODY = 64 * KiB
const POSTS = { name: 'posts', id: 'pbc_posts', listRule: '', viewRule: '' }

/** An SSE stream over a raw socket (HTTP/1.1, chunked): status, events. */
function stream (port, path, localAddress) {
  const c = { status: 0, events: [], ended: false, error: null, closed: false }
  const parser = new SseParser((ev) => c.events.push(ev))
  const socket = net.connect({ host: '127.0.0.1', port, localAddress })
  let head = Buffer.alloc(0)
  let dechunk = null
  socket.on('connect', () => socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`))
  socket.on('data', (buf) => {
    try {
      if (!c.status) {
        head = Buffer.concat([head, buf])
        const at = head.indexOf('\r\n\r\n')
        if (at < 0) return
        const text = head.toString('latin1', 0, at)
        c.status = Number(text.split(' ')[1])
        c.head = text
        dechunk = /\r\ntransfer-encoding: chunked/i.test(text) ? new Dechunker((b) => parser.push(b), () => { c.ended = true }) : null
        buf = head.subarray(at + 4)
      }
      if (dechunk) dechunk.push(buf)
      else parser.push(buf)
    } catch (err) {
      c.error = err.message
    }
  })
  socket.on('error', (err) => { c.error = err.code })
  socket.on('close', () => { c.closed = true })
  c.close = () => socket.destroy()
  return c
}

/** A request with a body; { status, body }. chunked: no content-length. */
function request (port, method, path, { body = '', type = 'application/json', chunked = false } = {}) {
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': type }
    if (!chunked) headers['content-length'] = Buffer.byteLength(body)
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { text += d })
      res.on('end', () => {
        let json = null
        try { json = text ? JSON.parse(text) : null } catch {}
        resolve({ status: res.statusCode, body: json, text })
      })
    })
    req.on('error', (err) => {
      // A server may answer 413 and close before the whole body is sent.
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') resolve({ status: -1, error: err.code })
      else reject(err)
    })
    if (chunked) {
      const b = Buffer.from(body)
      for (let i = 0; i < b.length; i += 16 * KiB) req.write(b.subarray(i, i + 16 * KiB))
      req.end()
    } else {
      req.end(body)
    }
  })
}

/**
 * PocketBase POST refusals against one mounted Realtime; checks state and the
 * live stream after each. Returns the number of refusals checked.
 */
async function pocketbaseRefusals (t, { port, realtime, path = '/api/realtime' }) {
  const s = stream(port, path)
  t.after(() => s.close())
  await waitFor(() => s.events.length > 0, 5000, 'PB_CONNECT')
  const clientId = JSON.parse(s.events[0].data).clientId
  const post = (body, options) => request(port, 'POST', path, { body: typeof body === 'string' ? body : JSON.stringify(body), ...options })
  assert.equal((await post({ clientId, subscriptions: ['posts/*', 'keep'] })).status, 204)
  const snapshot = () => ({ subscriptions: realtime.client(clientId).subscriptions, index: realtime.stats() })
  const before = snapshot()
  let marker = 0
  let checked = 0

  /** After a refusal: same state; 'sneaky' gets nothing, 'keep' and posts/* still do. */
  async function unchanged (what) {
    assert.deepEqual(snapshot(), before, `${what}: state unchanged`)
    const m = ++marker
    realtime.publish('sneaky', { m })
    realtime.publish('keep', { m })
    realtime.broadcastRecord(POSTS, 'create', { id: `r${m}`, m })
    await waitFor(() => s.events.some((e) => e.event === 'posts/*' && JSON.parse(e.data).record.m === m), 5000, `${what}: the live check`)
    const got = s.events.filter((e) => e.data.includes(`"m":${m}`)).map((e) => e.event)
    assert.deepEqual(got, ['keep', 'posts/*'], `${what}: only the old subscriptions receive`)
    checked++
  }

  // 413: past maxBodyBytes, declared or streamed.
  const big = JSON.stringify({ clientId, subscriptions: ['sneaky', 'x'.repeat(MAX_BODY)] })
  let r = await post(big)
  assert.equal(r.status, 413, 'content-length past maxBodyBytes')
  assert.deepEqual(r.body, { data: {}, message: 'Request entity too large', status: 413 })
  await unchanged('413 (content-length)')
  r = await post(big, { chunked: true })
  assert.ok(r.status === 413 || r.status === -1, `streamed past maxBodyBytes: ${r.status}`)
  await unchanged('413 (chunked)')
  // 400: PocketBase's form rules.
  const many = ['sneaky', ...Array.from({ length: 1000 }, (_, i) => `s${i}`)]
  r = await post({ clientId, subscriptions: many })
  assert.equal(r.status, 400)
  assert.equal(r.body.data.subscriptions.code, 'validation_length_too_long')
  await unchanged('1001 subscriptions')
  const form = new URLSearchParams([['clientId', clientId], ...many.map((x) => ['subscriptions', x])]).toString()
  r = await post(form, { type: 'application/x-www-form-urlencoded' })
  assert.equal(r.status, 400)
  await unchanged('1001 subscriptions (form)')
  r = await post({ clientId, subscriptions: ['sneaky', 'keep', 'y'.repeat(2501)] })
  assert.equal(r.status, 400)
  assert.equal(r.body.data.subscriptions['2'].code, 'validation_length_too_long')
  await unchanged('a subscription of 2501 characters')
  r = await post({ clientId, subscriptions: ['sneaky', 'a\r\nevent: x'] })
  assert.equal(r.status, 400)
  assert.equal(r.body.data.subscriptions['1'].code, 'validation_invalid_value')
  await unchanged('CR/LF in a subscription')
  r = await post(`{"clientId":"${clientId}","subscriptions":["sneaky",`)
  assert.equal(r.status, 400)
  await unchanged('truncated JSON')
  r = await post({ clientId, subscriptions: ['sneaky'] }, { type: 'text/plain' })
  assert.equal(r.status, 400)
  await unchanged('another content type')
  r = await post({ clientId, subscriptions: 'sneaky' })
  assert.equal(r.status, 400)
  await unchanged('subscriptions not a list')
  r = await post({ clientId: 'x'.repeat(40), subscriptions: ['sneaky'] })
  assert.equal(r.status, 404)
  await unchanged('unknown client id')

  // The limits themselves are accepted (then restored).
  const exact = JSON.stringify({ clientId, subscriptions: ['posts/*', 'keep', ''] })
  const pad = MAX_BODY - Buffer.byteLength(exact)
  const atLimit = exact.slice(0, -1) + ',"pad":"' + 'p'.repeat(pad - 9) + '"}'
  assert.equal(Buffer.byteLength(atLimit), MAX_BODY)
  assert.equal((await post(atLimit)).status, 204, 'a body of exactly maxBodyBytes')
  assert.equal((await post({ clientId, subscriptions: ['posts/*', 'keep', ...Array.from({ length: 998 }, (_, i) => `s${i}`)] })).status, 204, '1000 subscriptions')
  assert.equal(realtime.client(clientId).subscriptions.length, 1000)
  const long = 'z'.repeat(2500)
  assert.equal((await post({ clientId, subscriptions: ['posts/*', 'keep', long] })).status, 204, 'a subscription of 2500 characters')
  realtime.publish(long, 'to the long one')
  await waitFor(() => s.events.some((e) => e.event === long), 5000, 'the 2500-character subscription receives')
  assert.equal((await post({ clientId, subscriptions: ['posts/*', 'keep'] })).status, 204)
  await unchanged('after the accepted limits')
  return checked
}

test('limits: PocketBase POST 413 / 400 / 404 change nothing (node:http, Fastify, Express)', async (t) => {
  const defer = cleanup(t)
  let checked = 0
  // node:http
  {
    const realtime = new Realtime({ maxBodyBytes: MAX_BODY })
    defer(() => realtime.close(), 'realtime.close()')
    const server = http.createServer(realtime.handler)
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    defer(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }), 'server.close()')
    checked += await pocketbaseRefusals(t, { port: server.address().port, realtime })
  }
  // Fastify
  {
    const app = Fastify()
    await app.register(fastifyRealtime, { maxBodyBytes: MAX_BODY })
    await app.listen({ port: 0, host: '127.0.0.1' })
    defer(() => app.close(), 'app.close()')
    checked += await pocketbaseRefusals(t, { port: app.server.address().port, realtime: app.pocketbase })
  }
  // Express (no body parser before it: the middleware reads the body itself)
  {
    const realtime = new Realtime({ maxBodyBytes: MAX_BODY })
    defer(() => realtime.close(), 'realtime.close()')
    const app = express()
    app.use(expressRealtime(realtime))
    const server = app.listen(0, '127.0.0.1')
    await new Promise((resolve) => server.once('listening', resolve))
    defer(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }), 'server.close()')
    checked += await pocketbaseRefusals(t, { port: server.address().port, realtime })
  }
  record('limits', t.name, { refusalsChecked: checked, partiallyApplied: fig(0, 0) })
})

test('limits: PocketBase POST past the hub\'s maxSubscriptions gets 400 and changes nothing', async (t) => {
  const defer = cleanup(t)
  const realtime = new Realtime({ hubOptions: { maxSubscriptions: 10 } })
  defer(() => realtime.close(), 'realtime.close()')
  const server = http.createServer(realtime.handler)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  defer(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }), 'server.close()')
  const port = server.address().port
  const s = stream(port, '/api/realtime')
  defer(() => s.close(), 'stream')
  await waitFor(() => s.events.length > 0, 5000, 'PB_CONNECT')
  const clientId = JSON.parse(s.events[0].data).clientId
  const post = (subscriptions) => request(port, 'POST', '/api/realtime', { body: JSON.stringify({ clientId, subscriptions }) })
  const ten = Array.from({ length: 10 }, (_, i) => `k${i}`)
  assert.equal((await post(ten)).status, 204, 'exactly maxSubscriptions')
  const before = { subscriptions: realtime.client(clientId).subscriptions, index: realtime.stats() }
  const r = await post([...ten.slice(1), 'sneaky', 'sneaky2'])
  assert.equal(r.status, 400)
  assert.deepEqual(r.body.data.subscriptions, { code: 'validation_length_too_long', message: 'The length must be no more than 10.' })
  assert.deepEqual({ subscriptions: realtime.client(clientId).subscriptions, index: realtime.stats() }, before, 'nothing applied')
  realtime.publish('sneaky', 'no')
  realtime.publish('k0', 'yes')
  await waitFor(() => s.events.some((e) => e.event === 'k0'), 5000, 'k0 still subscribed')
  assert.ok(!s.events.some((e) => e.event === 'sneaky'), 'the refused set was not applied')
  record('limits', t.name, { maxSubscriptions: 10, partiallyApplied: fig(0, 0) })
})

test('limits: maxSubscriptions and oversized topics in accept / subscribe / publish are all or nothing', async (t) => {
  const defer = cleanup(t)
  const app = Fastify()
  await app.register(sseFanout, { maxSubscriptions: 8, heartbeatMs: 0, maxQueueBytes: 64 * KiB })
  app.get('/events', (request, reply) => { reply.sse({ topics: [].concat(request.query.t || []) }) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  defer(() => app.close(), 'app.close()')
  const hub = app.sse
  const port = app.server.address().port
  const connects = []
  hub.on('connect', (c) => connects.push(c))
  const q = (topics) => '/events?' + topics.map((x) => `t=${encodeURIComponent(x)}`).join('&')

  const T1024 = 't'.repeat(1024)
  const T1025 = 't'.repeat(1025)
  const EURO_OVER = '€'.repeat(342) // 342 characters, 1026 bytes
  const EURO_1024 = '€'.repeat(341) + 'a' // 1024 bytes
  let refusals = 0

  // accept(): too many topics, or one too long -> 400, nothing registered.
  for (const topics of [Array.from({ length: 9 }, (_, i) => `a${i}`), ['ok', T1025], ['ok', EURO_OVER]]) {
    const c = stream(port, q(topics))
    await waitFor(() => c.status > 0, 5000, 'the refusal')
    assert.equal(c.status, 400, `accept with ${topics.length} topics (${topics.map((x) => Buffer.byteLength(x)).join(',')} bytes)`)
    c.close()
    assert.equal(hub.stats().connections, 0)
    assert.equal(hub.stats().subscriptions, 0)
    assert.equal(connects.length, 0, 'no connect event')
    refusals++
  }

  // A stream at the limits: 6 topics, two of them 1024 bytes.
  const s = stream(port, q(['a', 'b', 'c', 'd', T1024, EURO_1024]))
  defer(() => s.close(), 'stream')
  await waitFor(() => connects.length === 1 && s.status === 200, 5000, 'the stream')
  const id = connects[0].id
  const subs = () => hub.subscriptions(id)
  const base = subs()
  assert.equal(base.length, 6)
  let marker = 0
  async function unchanged (what, sneaky) {
    assert.deepEqual(subs(), base, `${what}: subscriptions unchanged`)
    assert.equal(hub.stats().subscriptions, 6, `${what}: hub subscription count unchanged`)
    const m = `m${++marker}`
    for (const topic of sneaky) {
      try { hub.publish(topic, `${m} sneaky`) } catch {}
    }
    hub.publish('a', `${m} a`)
    await waitFor(() => s.events.some((e) => e.data === `${m} a`), 5000, `${what}: the live check`)
    assert.deepEqual(s.events.filter((e) => e.data.startsWith(`${m} `)).map((e) => e.data), [`${m} a`], `${what}: nothing for the refused topics`)
    refusals++
  }

  // subscribe(): past maxSubscriptions (new topics beyond 8), or one topic too long.
  assert.throws(() => hub.subscribe(id, ['n1', 'n2', 'n3']), { code: 'ERR_SSE_TOO_MANY_SUBSCRIPTIONS' })
  await unchanged('subscribe past maxSubscriptions', ['n1', 'n2', 'n3'])
  assert.throws(() => hub.subscribe(id, ['n1', T1025]), { code: 'ERR_SSE_INVALID_TOPIC' })
  await unchanged('subscribe with a 1025-byte topic', ['n1'])
  assert.throws(() => hub.subscribe(id, ['n1', EURO_OVER]), { code: 'ERR_SSE_INVALID_TOPIC' })
  await unchanged('subscribe with a 1026-byte multi-byte topic', ['n1'])
  assert.throws(() => hub.subscribe(id, ['n1', 'n2/*', '']), { code: 'ERR_SSE_INVALID_TOPIC' })
  await unchanged('subscribe with an empty topic', ['n1', 'n2/x'])
  // publish(): too long a topic, or data past maxQueueBytes: refused, not counted.
  const published = hub.stats().published
  assert.throws(() => hub.publish(T1025, 'x'), { code: 'ERR_SSE_INVALID_TOPIC' })
  assert.throws(() => hub.publish(EURO_OVER, 'x'), { code: 'ERR_SSE_INVALID_TOPIC' })
  assert.throws(() => hub.publish('a', 'x'.repeat(64 * KiB)), { code: 'ERR_SSE_DATA_TOO_LARGE' })
  assert.throws(() => hub.broadcast('x'.repeat(64 * KiB)), { code: 'ERR_SSE_DATA_TOO_LARGE' })
  assert.equal(hub.stats().published, published, 'refused publishes are not counted')
  await unchanged('oversized publishes', [])
  // Duplicates do not count: 6 + 2 new (+ 2 already there) = 8, allowed.
  hub.subscribe(id, ['a', 'b', 'n1', 'n2'])
  assert.equal(subs().length, 8)
  hub.publish(T1024, 'to 1024')
  hub.publish(EURO_1024, 'to euro')
  hub.publish('n2', 'to n2')
  await waitFor(() => s.events.some((e) => e.data === 'to n2'), 5000, 'the accepted subscriptions')
  assert.deepEqual(s.events.slice(-3).map((e) => e.data), ['to 1024', 'to euro', 'to n2'])
  record('limits', t.name, { refusalsChecked: refusals, partiallyApplied: fig(0, 0) })
})

test(`limits: maxConnectionsPerIp under concurrency, exactly the limit accepted (scale ${SCALE})`, async (t) => {
  const ATTEMPTS = scaled({ ci: 200, full: 2000 })
  const LIMIT = scaled({ ci: 50, full: 500 })
  const defer = cleanup(t)
  const app = Fastify()
  await app.register(sseFanout, { maxConnectionsPerIp: LIMIT, heartbeatMs: 0 })
  app.get('/events', (request, reply) => { reply.sse({ topics: ['t'] }) })
  await app.listen({ port: 0, host: '127.0.0.1', backlog: 4096 })
  defer(() => app.close(), 'app.close()')
  const port = app.server.address().port
  const hub = app.sse

  async function wave (n, localAddress) {
    const list = Array.from({ length: n }, () => stream(port, '/events', localAddress))
    await waitFor(() => list.every((c) => c.status > 0 || c.error), 30000, () => `answers (${list.filter((c) => c.status > 0).length} of ${n})`)
    return list
  }
  const first = await wave(ATTEMPTS, '127.0.0.1')
  defer(() => first.forEach((c) => c.close()), 'first wave')
  const ok = first.filter((c) => c.status === 200)
  const tooMany = first.filter((c) => c.status === 429)
  assert.equal(first.filter((c) => c.error).length, 0, 'no connection failed')
  assert.equal(ok.length, LIMIT, 'exactly maxConnectionsPerIp accepted')
  assert.equal(tooMany.length, ATTEMPTS - LIMIT, 'the rest 429')
  assert.equal(hub.stats().connections, LIMIT, 'the refused requests registered nothing')
  // Another address is not affected.
  const other = await wave(3, '127.0.0.2')
  defer(() => other.forEach((c) => c.close()), 'other address')
  assert.deepEqual(other.map((c) => c.status), [200, 200, 200])
  // Events reach exactly the accepted streams.
  hub.publish('t', 'hello')
  await waitFor(() => ok.every((c) => c.events.length === 1), 10000, 'the accepted streams receive')
  // The count comes back as streams end: close half, the same number fits again.
  const half = Math.floor(LIMIT / 2)
  ok.slice(0, half).forEach((c) => c.close())
  await waitFor(() => hub.stats().connections === LIMIT - half + 3, 10000, 'closed streams gone')
  const second = await wave(half + 10, '127.0.0.1')
  defer(() => second.forEach((c) => c.close()), 'second wave')
  assert.equal(second.filter((c) => c.status === 200).length, half, 'freed slots reused, no more')
  assert.equal(second.filter((c) => c.status === 429).length, 10)
  record('limits', t.name, { attempts: ATTEMPTS, limit: LIMIT, accepted: fig(ok.length, LIMIT), refused429: fig(tooMany.length, ATTEMPTS - LIMIT) })
})
