'use strict'
// The native listener (hub.listen, issue 17) over real sockets: the request
// parser at the edges (split at every byte, pipelined, oversized, bad
// methods, HTTP/1.0), the budgets (header timeout, per-address limit, accept
// rate), CORS preflight, HEAD, resume on accept, compression, close.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Hub, SseError } = require('../..')
const { openStream, decodeWhole } = require('../helpers/compressed')
const { rawConnect } = require('../helpers/raw-http')
const { startListener, GET } = require('../helpers/native-listener')
const { waitFor, sleep } = require('../helpers/wait')

const start = startListener

test('a GET on the path is an SSE stream of the hub: events of its topics, counted as a native connection', async (t) => {
  const { hub, port } = await start(t)
  const connects = []
  hub.on('connect', (c) => connects.push(c))
  const s = await openStream(port, '/events?topics=a,b')
  assert.equal(s.status, 200)
  assert.equal(s.headers['content-type'], 'text/event-stream')
  assert.equal(s.headers['cache-control'], 'no-cache')
  assert.equal(s.headers['transfer-encoding'], 'chunked')
  assert.ok(s.headers.date, 'a Date header')
  await waitFor(() => hub.stats().connections === 1, 5000, 'the stream counted')
  hub.publish('a', 'one')
  hub.publish('c', 'not mine')
  hub.publish('b', 'two')
  await s.waitEvents(2)
  assert.deepEqual(s.events.map((e) => e.data), ['one', 'two'])
  assert.equal(connects.length, 1)
  assert.equal(connects[0].transport, 'native')
  assert.deepEqual(hub.subscriptions(connects[0].id), ['a', 'b'])
  const disconnected = new Promise((resolve) => hub.once('disconnect', resolve))
  s.close()
  const d = await disconnected
  assert.equal(d.id, connects[0].id)
  assert.equal(d.reason, 'client')
  await waitFor(() => hub.stats().connections === 0, 5000, 'the stream gone')
})

test('a request split at every byte opens the same stream', async (t) => {
  const { hub, port } = await start(t)
  const request = GET('/events?topics=split%2Fone&topics=two', 'Accept: text/event-stream\r\nLast-Event-ID: \r\n')
  const c = await rawConnect(port)
  t.after(() => c.close())
  await c.send(request, { split: 1 })
  await c.waitHeads(1)
  assert.equal(c.heads()[0].status, 200)
  await waitFor(() => hub.stats().connections === 1, 5000, 'the stream counted')
  hub.publish('split/one', 'x')
  hub.publish('two', 'y')
  await c.waitText(/data: y/)
  assert.match(c.text(), /data: x[\s\S]*data: y/)
})

test('pipelined OPTIONS then GET: the preflight is answered, then the stream opens on the same connection', async (t) => {
  const { hub, port } = await start(t, {}, { cors: { origin: ['https://app.example'] } })
  const c = await rawConnect(port)
  t.after(() => c.close())
  await c.send(
    'OPTIONS /events HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: last-event-id\r\n\r\n' +
    GET('/events?topics=p', 'Origin: https://app.example\r\n'))
  await c.waitHeads(2)
  const [pre, stream] = c.heads()
  assert.equal(pre.status, 204)
  assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example')
  assert.match(pre.headers['access-control-allow-methods'], /GET/)
  assert.equal(pre.headers['access-control-allow-headers'], 'last-event-id')
  assert.match(pre.headers.vary, /origin/)
  assert.equal(stream.status, 200)
  assert.equal(stream.headers['access-control-allow-origin'], 'https://app.example')
  await waitFor(() => hub.stats().connections === 1, 5000, 'the stream counted')
})

test('CORS: an origin not in the list gets no grant; cors off sends no CORS header', async (t) => {
  const { port } = await start(t, {}, { cors: { origin: 'https://app.example' } })
  const c = await rawConnect(port)
  t.after(() => c.close())
  await c.send('OPTIONS /events HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: GET\r\n\r\n')
  await c.waitHeads(1)
  assert.equal(c.heads()[0].status, 204)
  assert.equal(c.heads()[0].headers['access-control-allow-origin'], undefined)
  const s = await openStream(port, '/events?topics=a', { headers: { origin: 'https://evil.example' } })
  assert.equal(s.headers['access-control-allow-origin'], undefined)
  s.close()

  const other = await start(t, {}, {})
  const s2 = await openStream(other.port, '/events?topics=a', { headers: { origin: 'https://app.example' } })
  assert.equal(s2.headers['access-control-allow-origin'], undefined)
  s2.close()
})

test('bad requests are answered with their status and closed: method, path, version, size, syntax', async (t) => {
  const { listener, port } = await start(t, {}, { maxHeaderBytes: 2048 })
  const cases = [
    ['POST /events HTTP/1.1\r\nHost: x\r\n\r\n', 405],
    ['DELETE /events HTTP/1.1\r\nHost: x\r\n\r\n', 405],
    [GET('/elsewhere'), 404],
    ['GET /events HTTP/2.0\r\nHost: x\r\n\r\n', 505],
    ['GET /events HTTP/1.1\r\n\r\n', 400], // no Host
    ['GET /events HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n', 400],
    ['GET /events HTTP/1.1\nHost: x\n\n', 400], // bare LF
    ['GET /events HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n', 400],
    ['GET http://x/events HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ['GET /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n', null],
    [GET('/events', `X-Big: ${'a'.repeat(3000)}\r\n`), 431],
    [`GET /events?${'t'.repeat(5000)} HTTP/1.1\r\nHost: x\r\n\r\n`, null], // 414 or 431: past the limits either way
    ['PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', null]
  ]
  for (const [request, status] of cases) {
    const c = await rawConnect(port)
    await c.send(request)
    await c.waitClosed()
    const heads = c.heads()
    assert.equal(heads.length, 1, `one answer to ${JSON.stringify(request.slice(0, 60))}: ${JSON.stringify(c.text().slice(0, 200))}`)
    if (status !== null) assert.equal(heads[0].status, status, JSON.stringify(request.slice(0, 60)))
    else assert.ok(heads[0].status >= 400, `${heads[0].status} for ${JSON.stringify(request.slice(0, 60))}`)
    assert.equal(heads[0].headers.connection, 'close')
    const body = JSON.parse(heads[0].body)
    assert.match(body.error, /^ERR_SSE_/)
    if (status === 405) assert.equal(heads[0].headers.allow, 'GET, HEAD, OPTIONS')
  }
  assert.equal(listener.stats().badRequests, cases.length)
  assert.equal(listener.stats().streams, 0)
})

test('HTTP/1.0: the stream is close-delimited, not chunked', async (t) => {
  const { hub, port } = await start(t)
  const s = await openStream(port, '/events?topics=old', { http10: true })
  assert.equal(s.status, 200)
  assert.equal(s.headers['transfer-encoding'], undefined)
  assert.equal(s.headers.connection, 'close')
  await waitFor(() => hub.stats().connections === 1, 5000, 'the stream counted')
  hub.publish('old', 'hello')
  await s.waitEvents(1)
  assert.equal(s.events[0].data, 'hello')
  s.close()
})

test('HEAD gets the stream head and no body, and the connection stays usable', async (t) => {
  const { hub, port } = await start(t)
  const c = await rawConnect(port)
  t.after(() => c.close())
  await c.send('HEAD /events?topics=a HTTP/1.1\r\nHost: x\r\n\r\n')
  await c.waitText(/\r\n\r\n/)
  assert.match(c.text(), /^HTTP\/1\.1 200 OK\r\n/)
  assert.match(c.text(), /content-type: text\/event-stream/)
  await sleep(100)
  assert.equal(hub.stats().connections, 0, 'HEAD opens no stream')
  await c.send(GET('/events?topics=a'))
  await waitFor(() => hub.stats().connections === 1, 5000, 'the GET after it opened a stream')
})

test('slow-loris: a head not complete within headerTimeoutMs is closed', async (t) => {
  const { listener, port } = await start(t, {}, { headerTimeoutMs: 300 })
  const c = await rawConnect(port)
  t.after(() => c.close())
  await c.send('GET /events?topics=a HTTP/1.1\r\nHost: x\r\n')
  const started = Date.now()
  const trickle = setInterval(() => { if (!c.closed) c.socket.write('X-A: b\r\n') }, 50)
  t.after(() => clearInterval(trickle))
  await c.waitClosed(5000)
  clearInterval(trickle)
  const took = Date.now() - started
  assert.ok(took >= 250 && took < 3000, `closed after ${took} ms`)
  assert.equal(listener.stats().headerTimeouts, 1)
  assert.equal(listener.stats().streams, 0)
})

test('maxConnectionsPerIp: past the limit a connection gets 429 before it sends a byte; the count comes back on close', async (t) => {
  const { hub, listener, port } = await start(t, {}, { maxConnectionsPerIp: 2 })
  const a = await openStream(port, '/events?topics=a')
  const b = await rawConnect(port) // being read counts too
  t.after(() => b.close())
  await waitFor(() => listener.stats().accepted === 2, 5000, 'two accepted')
  const c = await rawConnect(port)
  t.after(() => c.close())
  await c.waitClosed()
  assert.equal(c.heads()[0].status, 429)
  assert.equal(JSON.parse(c.heads()[0].body).error, 'ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP')
  assert.equal(listener.stats().refusedPerIp, 1)
  a.close()
  b.close()
  await waitFor(() => listener.stats().addresses === 0, 5000, 'the address released')
  const d = await openStream(port, '/events?topics=a')
  assert.equal(d.status, 200)
  await waitFor(() => hub.stats().connections === 1, 5000, 'one stream')
  d.close()
})

test('acceptRate: connections past the rate wait in the backlog, then are served', async (t) => {
  const { listener, port } = await start(t, {}, { acceptRate: 10 })
  const streams = []
  t.after(() => { for (const s of streams) s.close() })
  const opening = []
  for (let i = 0; i < 25; i++) opening.push(openStream(port, '/events?topics=a', { timeoutMs: 10000 }).then((s) => streams.push(s)))
  await sleep(500)
  const early = listener.stats().accepted
  assert.ok(early <= 17, `at most the burst (10) and half a second's tokens (5) by 0.5 s, got ${early}`)
  await Promise.all(opening)
  assert.equal(listener.stats().accepted, 25)
})

test('resume on accept: Last-Event-ID (or ?lastEventId=) replays what was missed', async (t) => {
  const { hub, port } = await start(t, { history: true })
  const ids = ['one', 'two', 'three'].map((d) => hub.publish('r', d))
  const s = await openStream(port, '/events?topics=r', { headers: { 'last-event-id': ids[0] } })
  await s.waitEvents(2)
  assert.deepEqual(s.events.map((e) => e.data), ['two', 'three'])
  const q = await openStream(port, `/events?topics=r&lastEventId=${encodeURIComponent(ids[1])}`)
  await q.waitEvents(1)
  assert.deepEqual(q.events.map((e) => e.data), ['three'])
  hub.publish('r', 'four')
  await s.waitEvents(3)
  await q.waitEvents(2)
  assert.equal(s.events[2].data, 'four')
  s.close()
  q.close()
})

test('compression: Accept-Encoding gzip gets a gzip stream that inflates to the events', async (t) => {
  const { hub, port } = await start(t, { compression: true })
  const s = await openStream(port, '/events?topics=z', { acceptEncoding: 'gzip' })
  assert.equal(s.headers['content-encoding'], 'gzip')
  assert.match(s.headers.vary, /accept-encoding/)
  await waitFor(() => hub.stats().connections === 1, 5000, 'the stream counted')
  for (let i = 0; i < 5; i++) hub.publish('z', { i, text: 'x'.repeat(300) })
  await s.waitEvents(5)
  assert.deepEqual(s.events.map((e) => JSON.parse(e.data).i), [0, 1, 2, 3, 4])
  const plain = await openStream(port, '/events?topics=z')
  assert.equal(plain.headers['content-encoding'], undefined)
  plain.close()
  await hub.close()
  await s.waitEnd()
  assert.equal(decodeWhole('gzip', s.body()).toString().includes('"i":4'), true)
})

test('invalid topics in the query are refused with 400 and the code', async (t) => {
  const { port } = await start(t)
  const c = await rawConnect(port)
  await c.send(GET(`/events?topics=${'x'.repeat(1100)}`))
  await c.waitClosed()
  assert.equal(c.heads()[0].status, 400)
  assert.equal(JSON.parse(c.heads()[0].body).error, 'ERR_SSE_INVALID_TOPIC')
})

test('authorize: the hook sees a plain request; it grants topics and a user, or refuses with a status', async (t) => {
  const seen = []
  const { hub, port } = await start(t, {}, {
    async authorize (req) {
      seen.push(req)
      await sleep(5)
      if (req.headers.authorization !== 'Bearer good') return { status: 401, message: 'no token' }
      return { topics: ['private'], user: 'u1' }
    }
  })
  const c = await rawConnect(port)
  await c.send(GET('/events?topics=x', 'Authorization: Bearer bad\r\n__proto__: p\r\nX-Twice: 1\r\nX-Twice: 2\r\n'))
  await c.waitClosed()
  assert.equal(c.heads()[0].status, 401)
  assert.deepEqual(JSON.parse(c.heads()[0].body), { error: 'ERR_SSE_UNAUTHORIZED', message: 'no token' })
  const connects = []
  hub.on('connect', (conn) => connects.push(conn))
  const s = await openStream(port, '/events?topics=x', { headers: { authorization: 'Bearer good' } })
  await waitFor(() => connects.length === 1, 5000, 'the connect event')
  assert.equal(connects[0].user, 'u1')
  hub.publish('private', 'for u1', { users: ['u1'] })
  hub.publish('x', 'not granted')
  hub.publish('private', 'for u2', { users: ['u2'] })
  await s.waitEvents(1)
  await sleep(100)
  assert.deepEqual(s.events.map((e) => e.data), ['for u1'])
  assert.equal(seen[0].method, 'GET')
  assert.equal(seen[0].path, '/events')
  assert.equal(seen[0].query, 'topics=x')
  assert.equal(seen[0].remoteAddress, '127.0.0.1')
  assert.equal(typeof seen[0].remotePort, 'number')
  assert.equal(seen[0].headers.authorization, 'Bearer bad')
  assert.equal(Object.getPrototypeOf(seen[0].headers), null)
  assert.equal(seen[0].headers.__proto__, 'p') // eslint-disable-line no-proto
  assert.equal(seen[0].headers['x-twice'], '1, 2')
  s.close()
})

test('authorize: a hook that throws answers 500 (or the error\'s own 4xx); a falsy answer is 403', async (t) => {
  let mode = 'throw'
  const { port } = await start(t, {}, {
    authorize () {
      if (mode === 'throw') throw new Error('boom')
      if (mode === 'own') throw Object.assign(new Error('go away'), { statusCode: 418, code: 'TEAPOT' })
      return null
    }
  })
  for (const [m, status] of [['throw', 500], ['own', 418], ['null', 403]]) {
    mode = m
    const c = await rawConnect(port)
    await c.send(GET('/events'))
    await c.waitClosed()
    assert.equal(c.heads()[0].status, status, m)
  }
})

test('close(): the port stops accepting, open streams stay; hub.close() closes a listener too', async (t) => {
  const { hub, listener, port } = await start(t)
  const s = await openStream(port, '/events?topics=a')
  await waitFor(() => hub.stats().connections === 1, 5000, 'the stream counted')
  await listener.close()
  await assert.rejects(rawConnect(port), /ECONNREFUSED/)
  hub.publish('a', 'still here')
  await s.waitEvents(1)
  const second = await hub.listen({ port: 0 })
  const s2 = await openStream(second.port, '/events?topics=a')
  assert.equal(s2.status, 200)
  await hub.close()
  await assert.rejects(rawConnect(second.port), /ECONNREFUSED/)
  await s.waitEnd()
})

test('options are checked with the library\'s wording; a port in use is ERR_SSE_LISTEN', async (t) => {
  const { hub, port } = await start(t)
  await assert.rejects(hub.listen({ port: -1 }), (err) => err instanceof SseError && err.code === 'ERR_SSE_INVALID_ARGUMENT' && /options\.port/.test(err.message))
  await assert.rejects(hub.listen({ host: 'example.com' }), /options\.host/)
  await assert.rejects(hub.listen({ path: 'events' }), /options\.path/)
  await assert.rejects(hub.listen({ authorize: 1 }), /options\.authorize/)
  await assert.rejects(hub.listen({ cors: { origin: 'nope' } }), /options\.cors\.origin/)
  const other = new Hub({ threads: 1 })
  t.after(() => other.close())
  await assert.rejects(other.listen({ port }), (err) => err.code === 'ERR_SSE_LISTEN' && /in use/i.test(err.message))
  await hub.close()
  await assert.rejects(hub.listen({ port: 0 }), /closed/)
})

test('backlog: the listener opens as many SO_REUSEPORT sockets per thread as the kernel queue it asks for needs, and each serves', async (t) => {
  const fs = require('node:fs')
  let somaxconn = 4096
  try { somaxconn = Number(fs.readFileSync('/proc/sys/net/core/somaxconn', 'utf8')) || 4096 } catch {}
  // threads: 2 (startListener). One socket per thread when one holds it all;
  // three per thread for a queue of 5 sockets' worth; 8 at most.
  const one = await start(t, {}, { backlog: 1 })
  assert.equal(one.listener.stats().sockets, 2)
  const five = await start(t, { maxConnectionsPerIp: 0 }, { backlog: somaxconn * 5 })
  assert.equal(five.listener.stats().sockets, 6)
  const most = await start(t, {}, { backlog: 1 << 20 })
  assert.equal(most.listener.stats().sockets, Math.min(16, Math.max(2, 2 * Math.ceil((1 << 20) / (somaxconn * 2)))))
  // The kernel spreads connections over the six: 40 streams, all served.
  const streams = []
  for (let i = 0; i < 40; i++) streams.push(openStream(five.port, '/events?topics=spread'))
  const opened = await Promise.all(streams)
  t.after(() => { for (const s of opened) s.close() })
  await waitFor(() => five.hub.stats().connections === 40, 5000, '40 streams')
  five.hub.publish('spread', 'x')
  await Promise.all(opened.map((s) => s.waitEvents(1)))
  for (const s of opened) assert.deepEqual(s.events.map((e) => e.data), ['x'])
  assert.equal(five.listener.stats().streams, 40)
})
