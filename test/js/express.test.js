'use strict'
// sse-fanout/express: the sseFanout middleware in a real Express 5 app (on
// http.createServer(app), clients in a separate process) and closeWithServer.
//   1. 1000 clients through the middleware get exactly their events, in order
//      (topics and user from functions of req, one of them async).
//   2. Earlier middleware's headers reach the stream; an auth middleware's own
//      401; throwing/rejecting topics functions and invalid topics go to the
//      app's error handler with the response untouched; no stream registered.
//   3. server.close() with closeWithServer ends 1000 streams, calls back
//      promptly once the hub has closed, and gives every fd back.
//   4. Private messages ({ users }) reach only their user's connections while
//      other users' messages flow.
//   5. An app beside the hub's native listener: one publish reaches both, and
//      closeWithServer closes the listener with the hub.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const net = require('node:net')
const express = require('express')
const { Hub, SseError } = require('../..')
const sseExpress = require('sse-fanout/express')
const { sse, closeWithServer } = sseExpress
const { Clients } = require('../helpers/clients')
const { openStream } = require('../helpers/compressed')
const { startHub } = require('../helpers/fixture')
const { pathsFor, runScenario } = require('../helpers/scenario')
const { within, waitFor, fdCount, sleep, cleanup } = require('../helpers/wait')

const range = (first, n) => Array.from({ length: n }, (_, k) => first + k)

/** Listens on 127.0.0.1 (a server of the test's own; startHub's are closed after the test). */
async function listen (app) {
  const server = http.createServer(app)
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0, backlog: 2048 }, resolve)
  })
  return server
}

/** The app's error handler: records the error and answers with its code. */
function errorHandler (errors) {
  return (err, req, res, next) => {
    errors.push({ path: req.path, err, headersSent: res.headersSent, type: res.getHeader('content-type') })
    const status = err.status || (err instanceof SseError ? (err.code === 'ERR_SSE_CLOSED' ? 503 : 400) : 500)
    res.status(status).type('text/plain').send(String(err.code))
  }
}

test('the module: exports, factory-time validation, a named middleware', async () => {
  assert.equal(typeof sseExpress, 'function')
  assert.equal(sseExpress.sse, sseExpress)
  assert.equal(sse, sseExpress)
  assert.equal(typeof closeWithServer, 'function')
  assert.equal(require('../../lib/express'), sseExpress, 'the ./express export is lib/express.js')

  const hub = new Hub({ threads: 1 })
  try {
    const mw = sse(hub, { topics: ['a', 'room/*'], user: 'u1', retry: 0 })
    assert.equal(mw.name, 'sseFanout')
    assert.equal(mw.length, 3)
    assert.equal(sse(hub).name, 'sseFanout')
    assert.equal(sseExpress(hub, { topics: () => [], user: async () => undefined }).name, 'sseFanout')

    const bad = (fn, code, message) => assert.throws(fn, (err) => {
      assert.ok(err instanceof SseError, `${err} is an SseError`)
      assert.equal(err.code, code)
      if (message) assert.match(err.message, message)
      return true
    })
    bad(() => sse(), 'ERR_SSE_INVALID_ARGUMENT', /for hub but received undefined/)
    bad(() => sse({}), 'ERR_SSE_INVALID_ARGUMENT', /Expected a Hub for hub/)
    bad(() => sse(null), 'ERR_SSE_INVALID_ARGUMENT')
    bad(() => sse(hub, null), 'ERR_SSE_INVALID_ARGUMENT', /an options object for options/)
    bad(() => sse(hub, 'a'), 'ERR_SSE_INVALID_ARGUMENT')
    bad(() => sse(hub, { topic: 'a' }), 'ERR_SSE_INVALID_ARGUMENT', /"topic"/)
    bad(() => sse(hub, { topics: 5 }), 'ERR_SSE_INVALID_ARGUMENT', /options\.topics/)
    bad(() => sse(hub, { topics: ['a', ''] }), 'ERR_SSE_INVALID_TOPIC', /options\.topics\[1\]/)
    bad(() => sse(hub, { topics: ['a', 7] }), 'ERR_SSE_INVALID_TOPIC', /options\.topics\[1\]/)
    bad(() => sse(hub, { topics: 'a\nb' }), 'ERR_SSE_INVALID_TOPIC')
    bad(() => sse(hub, { topics: 'x'.repeat(1025) }), 'ERR_SSE_INVALID_TOPIC')
    bad(() => sse(hub, { user: '' }), 'ERR_SSE_INVALID_ARGUMENT', /options\.user/)
    bad(() => sse(hub, { user: 42 }), 'ERR_SSE_INVALID_ARGUMENT', /options\.user/)
    bad(() => sse(hub, { user: 'é'.repeat(513) }), 'ERR_SSE_INVALID_ARGUMENT', /options\.user/)
    assert.throws(() => hub.accept({ headers: {} }, { writeHead () {} }, { user: 'é'.repeat(513) }), { code: 'ERR_SSE_INVALID_ARGUMENT' },
      'the same limit as hub.accept()')
    bad(() => sse(hub, { retry: -1 }), 'ERR_SSE_INVALID_RETRY', /options\.retry/)
    bad(() => sse(hub, { retry: 1.5 }), 'ERR_SSE_INVALID_RETRY')
    bad(() => sse(hub, { retry: '1000' }), 'ERR_SSE_INVALID_RETRY')

    const server = http.createServer()
    bad(() => closeWithServer({}, server), 'ERR_SSE_INVALID_ARGUMENT', /for hub/)
    bad(() => closeWithServer(hub, {}), 'ERR_SSE_INVALID_ARGUMENT', /for server/)
    bad(() => closeWithServer(hub), 'ERR_SSE_INVALID_ARGUMENT', /for server/)
  } finally {
    await within(hub.close(), 5000, 'hub.close()')
  }
})

test('1000 clients through the middleware receive exactly their events, in order', async (t) => {
  const N = 1000
  const defer = cleanup(t)
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')
  const locals = new Map() // tag -> res.locals
  const errors = []
  let afterSse = 0
  const { hub, port } = await startHub(t, {
    defer,
    hub: { threads: 2, maxConnectionsPerIp: 0 }, // every client from 127.0.0.1
    handler: (hub) => {
      const app = express()
      app.get('/sse',
        (req, res, next) => { locals.set(Number(req.query.tag), res.locals); next() },
        // ?t=a -> 'a', ?t=a&t=room%2F* -> ['a', 'room/*'], no t -> undefined (none)
        sse(hub, { topics: (req) => req.query.t, user: async (req) => req.query.user }),
        (req, res) => { afterSse++; res.status(500).end('the middleware called next()') })
      app.use(errorHandler(errors))
      return app
    }
  })

  const connects = new Map()
  hub.on('connect', (conn) => connects.set(conn.id, conn))
  const opened = await clients.open({ n: N, port, paths: pathsFor(0, N), timeoutMs: 30000 })
  assert.deepEqual(opened.indices, range(0, N))

  // The scenario's view of the server: tag -> the Connection on res.locals.sse.
  const conns = new Map()
  for (const [tag, l] of locals) conns.set(tag, l.sse)
  const view = {
    conns,
    errors: errors.map((e) => ({ tag: null, error: e.err })),
    conn (tag) {
      const c = conns.get(tag)
      if (!c) throw new Error(`no res.locals.sse for tag ${tag}`)
      return c
    }
  }
  for (const [tag, conn] of conns) {
    assert.ok(conn && connects.get(conn.id) === conn, `tag ${tag}: res.locals.sse is the accepted Connection`)
  }
  await runScenario({ hub, server: view, clients, n: N, transport: 'native' })
  assert.equal(afterSse, 0, 'the middleware does not call next() on success')
  assert.deepEqual(errors, [])
  const [c] = await clients.report({ indices: [N - 1] })
  assert.equal(c.status, 200)
  assert.equal(c.headers['content-type'], 'text/event-stream')
  assert.equal(c.headers['x-powered-by'], 'Express', "Express's own header is kept")
})

for (const transport of ['auto', 'js']) {
  test(`[${transport}] earlier middleware's headers, auth rejections and errors go through Express`, async (t) => {
    const defer = cleanup(t)
    const clients = await Clients.start()
    defer(() => clients.stop(), 'clients.stop()')

    const tokens = { 'tok-ann': { id: 'ann' }, 'tok-bob': { id: 'bob' } }
    const auth = (req, res, next) => {
      const user = tokens[req.query.token]
      if (!user) {
        res.status(401).json({ error: 'unauthorized' })
        return
      }
      req.user = user
      next()
    }
    const errors = []
    let afterSse = 0
    const after = (req, res) => { afterSse++; res.status(500).end('next() was called') }
    const fail = (message, props) => Object.assign(new Error(message), props)

    // /slow: a client that leaves while the topics function waits.
    let release
    const released = new Promise((resolve) => { release = resolve })
    const slow = { called: false, closed: false }
    const { hub, port } = await startHub(t, {
      defer,
      hub: { threads: 1, transport },
      handler: (hub) => {
        const app = express()
        app.use((req, res, next) => {
          res.set('x-custom', 'custom value')
          res.set('Access-Control-Allow-Origin', 'https://app.example')
          res.set('Access-Control-Allow-Credentials', 'true')
          next()
        })
        app.get('/events', auth,
          sse(hub, { topics: (req) => ['news', `inbox/${req.user.id}`], user: (req) => req.user.id, retry: 1500 }), after)
        app.get('/async', auth,
          sse(hub, { topics: async (req) => { await sleep(5); return req.query.t }, user: (req) => Promise.resolve(req.user.id) }), after)
        app.get('/throws', sse(hub, { topics: () => { throw fail('no topics for you', { status: 422, code: 'E_TOPICS' }) } }), after)
        app.get('/rejects', sse(hub, { topics: async () => { await sleep(5); throw fail('lookup failed', { code: 'E_LOOKUP' }) } }), after)
        app.get('/user-throws', sse(hub, { topics: 'news', user: () => { throw fail('who?', { status: 403, code: 'E_WHO' }) } }), after)
        app.get('/invalid', sse(hub, { topics: (req) => ['news', `bad\n${req.query.t}`] }), after)
        app.get('/invalid-async', sse(hub, { topics: async () => ['news', ''] }), after)
        // A client that leaves while the topics function waits: nothing to do.
        app.get('/slow',
          (req, res, next) => { res.once('close', () => { slow.closed = true }); next() },
          sse(hub, { topics: async () => { slow.called = true; await released; return 'news' } }), after)
        app.use(errorHandler(errors))
        return app
      }
    })
    const connects = []
    hub.on('connect', (conn) => connects.push(conn))

    // Streams: headers from the middleware before, user and topics from req.
    const ann = (await clients.open({ n: 1, port, path: '/events?token=tok-ann' })).indices[0]
    const bob = (await clients.open({ n: 1, port, path: '/async?token=tok-bob&t=news' })).indices[0]
    // Refused: by auth, by a throwing / rejecting function, by an invalid topic.
    const refused = {}
    for (const path of ['/events', '/events?token=nope', '/throws', '/rejects', '/user-throws', '/invalid?t=x', '/invalid-async']) {
      refused[path] = (await clients.open({ n: 1, port, path })).indices[0]
    }
    // Express routes HEAD to GET handlers; accept() refuses HEAD (no body to stream).
    refused.HEAD = (await clients.open({ n: 1, port, path: '/events?token=tok-ann', method: 'HEAD' })).indices[0]
    assert.equal(hub.stats().connections, 2, 'only the two streams are registered')
    assert.deepEqual(connects.map((c) => [c.user, c.transport]), [['ann', transport === 'auto' ? 'native' : 'js'], ['bob', transport === 'auto' ? 'native' : 'js']])
    assert.deepEqual(hub.subscriptions(connects[0].id), ['inbox/ann', 'news'])
    assert.deepEqual(hub.subscriptions(connects[1].id), ['news'])

    hub.publish('news', 'for everyone', { event: 'news', id: '1' })
    hub.publish('inbox/ann', { text: 'for ann' })
    hub.publish('news', 'only bob', { users: ['bob'] })
    await clients.waitCounts([ann, bob], 2)
    const [a, b] = await clients.report({ indices: [ann, bob], events: true })
    for (const c of [a, b]) {
      assert.equal(c.status, 200)
      assert.equal(c.headers['content-type'], 'text/event-stream')
      assert.equal(c.headers['cache-control'], 'no-cache')
      assert.equal(c.headers['x-custom'], 'custom value', 'a header set by earlier middleware')
      assert.equal(c.headers['access-control-allow-origin'], 'https://app.example')
      assert.equal(c.headers['access-control-allow-credentials'], 'true')
      assert.equal(c.headers['content-length'], undefined)
      assert.equal(c.chunked, true)
      assert.equal(c.error, null)
      assert.equal(c.framingError, null)
    }
    assert.equal(a.retry, 1500)
    assert.deepEqual(a.events, [
      { event: 'news', data: 'for everyone', lastEventId: '1' },
      { event: 'message', data: '{"text":"for ann"}', lastEventId: '1' }
    ])
    assert.deepEqual(b.events, [
      { event: 'news', data: 'for everyone', lastEventId: '1' },
      { event: 'message', data: 'only bob', lastEventId: '1' }
    ])

    // The refused requests got the app's answers, never a stream.
    const report = await clients.report({ indices: Object.values(refused), raw: true })
    const answer = (path) => report.find((c) => c.i === refused[path])
    for (const path of ['/events', '/events?token=nope']) {
      const c = answer(path)
      assert.equal(c.status, 401, path)
      assert.match(c.headers['content-type'], /^application\/json/, path)
      assert.equal(c.raw, '{"error":"unauthorized"}', path)
      assert.equal(c.headers['x-custom'], 'custom value', path)
    }
    const expected = {
      '/throws': [422, 'E_TOPICS'],
      '/rejects': [500, 'E_LOOKUP'],
      '/user-throws': [403, 'E_WHO'],
      '/invalid?t=x': [400, 'ERR_SSE_INVALID_TOPIC'],
      '/invalid-async': [400, 'ERR_SSE_INVALID_TOPIC'],
      HEAD: [400, '']
    }
    for (const [path, [status, code]] of Object.entries(expected)) {
      const c = answer(path)
      assert.equal(c.status, status, path)
      assert.match(c.headers['content-type'], /^text\/plain/, path)
      assert.equal(c.raw, code, path)
    }
    assert.deepEqual(errors.map((e) => [e.path, e.err.code]), [
      ['/throws', 'E_TOPICS'], ['/rejects', 'E_LOOKUP'], ['/user-throws', 'E_WHO'],
      ['/invalid', 'ERR_SSE_INVALID_TOPIC'], ['/invalid-async', 'ERR_SSE_INVALID_TOPIC'],
      ['/events', 'ERR_SSE_INVALID_ARGUMENT'] // the HEAD request
    ])
    for (const e of errors) {
      assert.equal(e.headersSent, false, `${e.path}: the response was untouched`)
      assert.equal(e.type, undefined, `${e.path}: no SSE content-type set`)
    }
    const invalid = errors.find((e) => e.path === '/invalid').err
    assert.ok(invalid instanceof SseError)
    assert.match(invalid.message, /options\.topics\[1\]/)
    assert.equal(afterSse, 0, 'next() is called with an error or not at all')
    assert.equal(hub.stats().connections, 2)
    assert.equal(connects.length, 2, 'no stream was registered for a refused request')

    const gone = (await clients.open({ n: 1, port, path: '/slow', stall: true })).indices
    await waitFor(() => slow.called, 5000, 'the /slow topics function to be called')
    await clients.close({ indices: gone })
    await waitFor(() => slow.closed, 5000, 'the /slow response to close')
    release()
    await sleep(50)
    assert.equal(errors.length, 6, 'a client that left is no error')
    assert.equal(connects.length, 2, 'and gets no stream')
    assert.equal(afterSse, 0)

    // A closed hub: ERR_SSE_CLOSED through next(err) too.
    await within(hub.close(), 5000, 'hub.close()')
    const late = (await clients.open({ n: 1, port, path: '/events?token=tok-ann' })).indices[0]
    const [l] = await clients.report({ indices: [late], raw: true })
    assert.equal(l.status, 503)
    assert.equal(l.raw, 'ERR_SSE_CLOSED')
    assert.equal(errors.at(-1).err.code, 'ERR_SSE_CLOSED')
    assert.equal(errors.at(-1).headersSent, false)
  })
}

test('server.close() with closeWithServer ends 1000 streams, calls back once the hub has closed, frees every fd', async (t) => {
  const N = 1000
  const defer = cleanup(t)
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')
  const baseline = fdCount() // before the hub's threads and the listener

  const { hub, server } = await startHub(t, {
    defer,
    hub: { threads: 2, maxConnectionsPerIp: 0 }, // every client from 127.0.0.1
    handler: (hub) => {
      const app = express()
      app.get('/sse', sse(hub, { topics: (req) => req.query.t }))
      return app
    }
  })
  const disconnects = []
  hub.on('disconnect', (ev) => disconnects.push(ev.reason))
  const undo = closeWithServer(hub, server)
  defer(undo, 'undo closeWithServer')
  assert.ok(Object.hasOwn(server, 'close'), 'server.close is wrapped on the instance')

  const opened = await clients.open({ n: N, port: server.address().port, path: '/sse?t=news', timeoutMs: 30000 })
  assert.equal(opened.indices.length, N)
  assert.equal(hub.stats().native, N)
  assert.ok(fdCount() >= baseline + N, 'each stream holds an fd')
  for (let k = 0; k < 3; k++) hub.publish('news', `event ${k}`)

  let hubClosedAt = 0
  const started = Date.now()
  const called = new Promise((resolve) => {
    server.close((err) => resolve({ err, at: Date.now(), hubClosed: hubClosedAt !== 0 }))
  })
  assert.equal(hub.closed, true, 'hub.close() started within server.close()')
  hub.close().then(() => { hubClosedAt = Date.now() })
  assert.throws(() => hub.publish('news', 'late'), { code: 'ERR_SSE_CLOSED' })

  const { err, at, hubClosed } = await within(called, 5000, 'the server.close() callback')
  assert.equal(err, undefined)
  assert.ok(at - started < 2000, `server.close() called back after ${at - started} ms`)
  assert.equal(hubClosed, true, 'the callback comes after hub.close() has resolved')
  assert.equal(server.listening, false)
  assert.equal(hub.stats().connections, 0)
  assert.equal(disconnects.length, N)
  assert.ok(disconnects.every((r) => r === 'shutdown'))

  // Every client saw its stream end properly, after the events published before.
  await clients.waitSummary((s) => s.length === N && s.every((c) => c.closed), 10000, 'every client to see its stream end')
  const report = await clients.report({ events: true, headers: false })
  let bad = 0
  for (const c of report) {
    const ok = c.ended && c.eof && c.eofAfterEnd && c.error === null && c.framingError === null &&
      c.events.map((e) => e.data).join('|') === 'event 0|event 1|event 2'
    if (!ok) bad++
  }
  assert.equal(bad, 0, `${bad} of ${N} clients did not get their events and a clean end`)
  await waitFor(() => fdCount() === baseline, 5000, () => `fd count ${fdCount()}, want the baseline ${baseline}`)
})

test('[js transport] server.close() with closeWithServer does not wait for keepAliveTimeout; undo restores server.close', async (t) => {
  const defer = cleanup(t)
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')
  const { hub, server } = await startHub(t, {
    defer,
    hub: { threads: 1, transport: 'js' },
    handler: (hub) => {
      const app = express()
      app.get('/sse', sse(hub, { topics: 'news' }))
      return app
    }
  })
  const undo = closeWithServer(hub, server)
  assert.ok(server.keepAliveTimeout >= 5000, 'without closeWithServer the idle connections would wait this long')

  const n = 50
  const { indices } = await clients.open({ n, port: server.address().port, path: '/sse' })
  assert.equal(hub.stats().js, n)
  hub.publish('news', 'bye')
  const started = Date.now()
  const elapsed = await within(new Promise((resolve) => server.close(() => resolve(Date.now() - started))),
    4000, 'server.close() with JS-transport streams')
  assert.ok(elapsed < 1500, `server.close() called back after ${elapsed} ms`)
  assert.equal(hub.closed, true)
  await clients.waitSummary((s) => indices.every((i) => s[i].closed && s[i].ended && s[i].count === 1), 5000,
    'every JS-transport stream to end after its event')

  // undo(): the server's own close again, and its 'close' no longer closes a hub.
  undo()
  undo()
  assert.equal(Object.hasOwn(server, 'close'), false)
  assert.equal(server.close, http.Server.prototype.close)
  const other = new Hub({ threads: 1 })
  defer(() => other.close(), 'other.close()')
  const server2 = await listen(express())
  const undo2 = closeWithServer(other, server2)
  undo2()
  await within(new Promise((resolve) => server2.close(resolve)), 2000, 'server2.close()')
  assert.equal(other.closed, false, 'an undone closeWithServer leaves the hub open')

  // A server closed some other way than server.close: the 'close' event closes the hub.
  const server3 = await listen(express())
  closeWithServer(other, server3)
  await within(new Promise((resolve) => require('node:net').Server.prototype.close.call(server3, resolve)), 2000, 'net close')
  assert.equal(other.closed, true, "the 'close' event closes the hub")
})

test('an Express app beside hub.listen(): one publish reaches both kinds of streams; closeWithServer closes the listener with the hub', async (t) => {
  const defer = cleanup(t)
  const hub = new Hub()
  defer(() => hub.close(), 'hub.close()')
  const app = express()
  app.get('/sse', sse(hub, { topics: (req) => req.query.t }))
  const server = await listen(app)
  defer(() => new Promise((resolve) => server.close(() => resolve())), 'server.close()')
  const listener = await hub.listen({ port: 0, host: '127.0.0.1', path: '/events', topicsParam: 't' })
  closeWithServer(hub, server)

  const viaExpress = await openStream(server.address().port, '/sse?t=news')
  const viaListener = await openStream(listener.port, '/events?t=news')
  assert.equal(viaExpress.status, 200)
  assert.equal(viaListener.status, 200)
  await waitFor(() => hub.stats().connections === 2, 5000, 'both streams counted')
  hub.publish('news', 'to both')
  await viaExpress.waitEvents(1)
  await viaListener.waitEvents(1)
  assert.equal(viaExpress.events[0].data, 'to both')
  assert.equal(viaListener.events[0].data, 'to both')

  const listenerClosed = new Promise((resolve) => listener.once('close', resolve))
  await within(new Promise((resolve) => server.close(() => resolve())), 5000, 'the server.close() callback')
  await within(listenerClosed, 5000, "the listener's close event")
  await viaExpress.waitEnd()
  await viaListener.waitEnd()
  // The listener's port is closed: a new connection is refused.
  const refused = await new Promise((resolve) => {
    const s = net.connect(listener.port, '127.0.0.1')
    s.once('connect', () => { s.destroy(); resolve(false) })
    s.once('error', (err) => resolve(err.code === 'ECONNREFUSED'))
  })
  assert.equal(refused, true, 'the listener still accepts after server.close()')
})

test('private messages reach only their user\'s connections, under load from other users', async (t) => {
  const USERS = 50
  const PER_USER = 10
  const ANON = 50
  const defer = cleanup(t)
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')

  // Client k presents the token "tok<k>", which belongs to user u<k % USERS>.
  const tokens = new Map(range(0, USERS * PER_USER).map((k) => [`tok${k}`, { id: `u${k % USERS}` }]))
  const auth = (req, res, next) => {
    const m = /^Bearer (\S+)$/.exec(req.get('authorization') || '')
    const user = m && tokens.get(m[1])
    if (!user) return res.sendStatus(401)
    req.user = user
    next()
  }
  const errors = []
  const { hub, port } = await startHub(t, {
    defer,
    hub: { threads: 2, maxConnectionsPerIp: 0 }, // every client from 127.0.0.1
    handler: (hub) => {
      const app = express()
      const stream = sse(hub, { topics: ['inbox', 'load'], user: (req) => req.user && req.user.id })
      app.get('/me/events', auth, stream)
      app.get('/public/events', stream) // no user: never gets a private message
      app.use(errorHandler(errors))
      return app
    }
  })

  const userOf = [] // client index -> user id (undefined: anonymous)
  for (let k = 0; k < USERS * PER_USER; k++) userOf.push(`u${k % USERS}`)
  for (let k = 0; k < ANON; k++) userOf.push(undefined)
  const total = userOf.length
  const authed = await clients.open({
    n: USERS * PER_USER, port, path: '/me/events', headers: { authorization: 'Bearer tok{i}' }, timeoutMs: 30000
  })
  assert.deepEqual(authed.indices, range(0, USERS * PER_USER))
  const anon = await clients.open({ n: ANON, port, path: '/public/events' })
  const indices = [...authed.indices, ...anon.indices]
  assert.equal(indices.length, total)
  // A wrong token: auth's own 401, no stream.
  const refused = await clients.open({ n: 1, port, path: '/me/events', headers: { authorization: 'Bearer nope' } })
  const [r401] = await clients.report({ indices: refused.indices })
  assert.equal(r401.status, 401)
  assert.equal(hub.stats().connections, total)
  assert.equal(hub.stats().users, USERS)
  assert.deepEqual(errors, [])

  // The sequence: every round sends each user a private 'load' event (the
  // other users' traffic), a few private 'inbox' messages to one or two
  // users (and to one nobody has), and a broadcast; rounds are published in
  // separate event-loop turns so the I/O threads write while publishing goes on.
  const sent = [] // { users?, event, data }
  const filler = 'x'.repeat(200)
  const ROUNDS = 20
  for (let r = 0; r < ROUNDS; r++) {
    for (let u = 0; u < USERS; u++) {
      const ev = { users: [`u${(u + r) % USERS}`], event: 'load', data: `load ${r}/${u} ${filler}` }
      hub.publish('load', ev.data, { event: ev.event, users: ev.users })
      sent.push(ev)
    }
    const privates = [
      { users: [`u${(r * 7) % USERS}`], event: 'private', data: `secret ${r} for one` },
      { users: [`u${(r * 3 + 1) % USERS}`, `u${(r * 3 + 2) % USERS}`], event: 'private', data: `secret ${r} for two` },
      { users: ['ghost'], event: 'private', data: `secret ${r} for nobody` }
    ]
    for (const ev of privates) {
      hub.publish('inbox', ev.data, { event: ev.event, users: ev.users })
      sent.push(ev)
    }
    const tick = { event: 'tick', data: `tick ${r}` }
    hub.broadcast(tick.data, { event: tick.event })
    sent.push(tick)
    const dm = { users: [`u${r % USERS}`], event: 'dm', data: `broadcast dm ${r}` }
    hub.broadcast(dm.data, { event: dm.event, users: dm.users })
    sent.push(dm)
    await new Promise((resolve) => setImmediate(resolve))
  }
  const expected = userOf.map((user) => sent
    .filter((ev) => !ev.users || ev.users.includes(user))
    .map(({ event, data }) => ({ event, data, lastEventId: '' })))

  await clients.waitCounts(indices, expected.map((e) => e.length), 30000)
  const report = await clients.report({ events: true, headers: false })
  let bad = 0
  let firstBad = null
  for (const i of indices) {
    try {
      assert.deepEqual(report[i].events, expected[i])
    } catch (err) {
      bad++
      firstBad ??= `client ${i} (user ${userOf[i]}): ${err.message}`
    }
  }
  assert.equal(bad, 0, `${bad} of ${total} clients got the wrong events; first: ${firstBad}`)
  // The model really tells users apart.
  assert.equal(expected[total - 1].length, ROUNDS, 'anonymous clients get the plain broadcasts only')
  assert.ok(new Set(expected.slice(0, USERS).map((e) => e.map((x) => x.data).join())).size === USERS)
  assert.ok(!report.some((c) => c.events.some((e) => e.data.includes('for nobody'))))
})
