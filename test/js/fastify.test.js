'use strict'
// sse-fanout/fastify: the plugin in a real Fastify 5 app on a real port, with
// the clients in their own process (test/helpers/sse-clients.js).
//  1. 1000 clients through reply.sse() get exactly their events, in order.
//  2. Headers from @fastify/cors and from hooks reach the SSE response; an
//     auth hook that rejects answers with its own 401 and registers nothing.
//  3. app.close() with 1000 open streams ends every stream, resolves quickly
//     and gives every fd back.
//  4. Private messages (publish with users) reach only their user's
//     connections, under other users' traffic; the user comes from an auth hook.
//  5. reply.sse() errors (invalid topic or retry, HEAD, maxConnections) are
//     answered by Fastify's error handler and register no stream.
//  Plus the plugin options (hub, decorator), exports and debug logging.

const { test, before } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { setImmediate: nextTurn } = require('node:timers/promises')
const Fastify = require('fastify')
const cors = require('@fastify/cors')
// By the package's own name: the "./fastify" entry of package.json's exports.
const sseFanout = require('sse-fanout/fastify')
const { Hub } = require('sse-fanout')
const { Clients } = require('../helpers/clients')
const { ssePath } = require('../helpers/server')
const { pathsFor, runScenario } = require('../helpers/scenario')
const { within, waitFor, fdCount, cleanup } = require('../helpers/wait')

before(() => {
  // The first child process this process starts sets up libuv's signal pipe
  // for SIGCHLD (two fds kept for good): start one now so fd counts compare.
  spawnSync(process.execPath, ['-e', ''])
})

/** A pino destination that keeps every line, parsed. */
function logCapture () {
  const lines = []
  return { lines, stream: { write: (line) => lines.push(JSON.parse(line)) } }
}

/** Log lines at warn level or above. */
function warnings (lines) {
  return lines.filter((l) => l.level >= 40).map((l) => `${l.msg} ${l.err ? l.err.message : ''}`)
}

/**
 * A Fastify app with the plugin on 127.0.0.1:0. GET /sse takes what
 * test/helpers/server.js takes (tag, t repeated, user, retry) and records, per
 * tag, the Connection reply.sse() returned or the error it threw, so
 * scenario.js can drive it like the plain node:http server.
 * @param {object} [o]
 * @param {object} [o.plugin] plugin options
 * @param {(app) => Promise<void> | void} [o.setup] runs before the route is added
 * @param {'sync' | 'async'} [o.handler] sync handler with a block body, or an
 *   async one that returns the Connection
 * @param {object | false} [o.logger] Fastify's logger option
 */
async function startApp (o = {}) {
  const app = Fastify({ logger: o.logger || false })
  await app.register(sseFanout, o.plugin || {})
  if (o.setup) await o.setup(app)
  const conns = new Map()
  const errors = []
  const sse = (request, reply) => {
    const q = request.query
    const tag = Number(q.tag)
    const options = { topics: q.t === undefined ? [] : [].concat(q.t) }
    const user = request.user !== undefined ? request.user : q.user
    if (user !== undefined) options.user = user
    if (q.retry !== undefined) options.retry = Number(q.retry)
    try {
      const conn = reply.sse(options)
      conns.set(tag, conn)
      return conn
    } catch (error) {
      errors.push({ tag, error })
      throw error
    }
  }
  if (o.handler === 'async') {
    app.get('/sse', async (request, reply) => {
      await nextTurn() // really asynchronous: reply.sse() runs in a later turn
      return sse(request, reply)
    })
  } else {
    app.get('/sse', (request, reply) => { sse(request, reply) })
  }
  // 1000 clients connect at once: keep the accept queue deep enough.
  await app.listen({ host: '127.0.0.1', port: 0, backlog: 2048 })
  return {
    app,
    hub: app.sse,
    port: app.server.address().port,
    conns,
    errors,
    conn (tag) {
      const c = conns.get(tag)
      if (!c) throw new Error(`no connection accepted for tag ${tag}`)
      return c
    }
  }
}

test('1000 clients through reply.sse() each receive exactly their events, in order', async (t) => {
  const defer = cleanup(t)
  const log = logCapture()
  const server = await startApp({ plugin: { threads: 2, maxConnectionsPerIp: 0 }, logger: { level: 'warn', stream: log.stream } })
  const { app, hub } = server
  defer(() => app.close(), 'app.close()')
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')

  assert.ok(hub instanceof Hub, 'fastify.sse is the Hub')
  assert.equal(hub.options.threads, 2, 'Hub options come from the plugin options')
  const N = 1000
  const opened = await clients.open({ n: N, port: server.port, paths: pathsFor(0, N), timeoutMs: 30000 })
  assert.equal(opened.ready, N)
  await runScenario({ hub, server, clients, n: N, transport: 'native' })

  const heads = await clients.report({ indices: [0, 1, N - 1] })
  for (const c of heads) {
    assert.equal(c.status, 200)
    assert.equal(c.headers['content-type'], 'text/event-stream')
    assert.equal(c.chunked, true)
  }
  assert.deepEqual(warnings(log.lines), [], 'Fastify logged no warning (nothing wrote to a hijacked reply)')
})

for (const transport of ['auto', 'js']) {
  test(`[${transport}] @fastify/cors and hook headers reach the stream; a rejecting auth hook registers nothing`, async (t) => {
    const defer = cleanup(t)
    const log = logCapture()
    const server = await startApp({
      plugin: { threads: 1, transport },
      handler: 'async',
      logger: { level: 'warn', stream: log.stream },
      setup: async (app) => {
        await app.register(cors, { origin: ['https://app.example'], credentials: true, exposedHeaders: ['x-request-tag'] })
        app.addHook('onRequest', async (request, reply) => {
          reply.header('x-request-tag', `tag-${request.query.tag}`)
          reply.header('set-cookie', ['a=1; Path=/', 'b=2; HttpOnly'])
        })
        app.addHook('preHandler', async (request, reply) => {
          if (request.headers.authorization !== 'Bearer good') {
            reply.code(401).send({ error: 'unauthorized' })
            return reply
          }
          request.user = 'alice'
          // Framing and type are the hub's: these must not reach the stream.
          reply.header('content-type', 'text/html')
          reply.header('content-length', '12')
        })
      }
    })
    const { app, hub } = server
    defer(() => app.close(), 'app.close()')
    const clients = await Clients.start()
    defer(() => clients.stop(), 'clients.stop()')
    let connects = 0
    hub.on('connect', () => connects++)
    const origin = 'https://app.example'

    // Rejected: a wrong token, no token at all.
    const rejected = [
      ...(await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 0, topics: ['t'] }), headers: { origin, authorization: 'Bearer bad' } })).indices,
      ...(await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 1, topics: ['t'] }) })).indices
    ]
    const [badToken, noToken] = await clients.report({ indices: rejected, raw: true })
    for (const c of [badToken, noToken]) {
      assert.equal(c.status, 401)
      assert.match(c.headers['content-type'], /^application\/json/)
      assert.deepEqual(JSON.parse(c.raw), { error: 'unauthorized' })
    }
    assert.equal(badToken.headers['access-control-allow-origin'], origin, 'the 401 carries the CORS headers too')
    assert.equal(noToken.headers['access-control-allow-origin'], undefined, 'no Origin, no CORS headers')
    assert.equal(hub.stats().connections, 0, 'no stream registered for a rejected request')
    assert.equal(connects, 0)
    assert.equal(server.conns.size, 0)

    // Accepted.
    const [ok] = (await clients.open({
      n: 1, port: server.port, path: ssePath({ tag: 2, topics: ['t'], retry: 1500 }), headers: { origin, authorization: 'Bearer good' }
    })).indices
    assert.equal(hub.stats().connections, 1)
    assert.equal(server.conn(2).user, 'alice', 'the user comes from the auth hook')
    assert.equal(server.conn(2).transport, transport === 'auto' ? 'native' : 'js')
    hub.publish('t', 'hello', { event: 'greeting', id: '1' })
    await clients.waitCounts([ok], 1)
    const [c] = await clients.report({ indices: [ok], events: true })
    assert.equal(c.status, 200)
    assert.equal(c.headers['content-type'], 'text/event-stream', "the hub's content-type replaces the hook's")
    assert.equal(c.headers['content-length'], undefined, 'no content-length on a stream')
    assert.equal(c.headers['cache-control'], 'no-cache')
    assert.equal(c.chunked, true)
    assert.equal(c.headers['access-control-allow-origin'], origin)
    assert.equal(c.headers['access-control-allow-credentials'], 'true')
    assert.equal(c.headers['access-control-expose-headers'], 'x-request-tag')
    assert.match(String(c.headers.vary), /origin/i)
    assert.equal(c.headers['x-request-tag'], 'tag-2')
    assert.deepEqual(c.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly'])
    assert.equal(c.retry, 1500)
    assert.deepEqual(c.events, [{ event: 'greeting', data: 'hello', lastEventId: '1' }])

    // A request from an origin CORS does not allow still streams, without the CORS headers.
    const [other] = (await clients.open({
      n: 1, port: server.port, path: ssePath({ tag: 3, topics: ['t'] }), headers: { origin: 'https://evil.example', authorization: 'Bearer good' }
    })).indices
    const [o] = await clients.report({ indices: [other] })
    assert.equal(o.status, 200)
    assert.equal(o.headers['access-control-allow-origin'], undefined)
    assert.equal(o.headers['x-request-tag'], 'tag-3')
    assert.equal(hub.stats().connections, 2)
    assert.deepEqual(warnings(log.lines), [], 'Fastify logged no warning (nothing wrote to a hijacked reply)')
  })
}

for (const [transport, N] of [['auto', 1000], ['js', 100]]) {
  test(`[${transport}] app.close() with ${N} open streams ends them all, promptly, and frees every fd`, async (t) => {
    const defer = cleanup(t)
    const clients = await Clients.start()
    defer(() => clients.stop(), 'clients.stop()')
    const baseline = fdCount() // before the app: its hub, listener and sockets all go
    const closeTimeoutMs = 10000
    const server = await startApp({ plugin: { threads: 2, transport, closeTimeoutMs, maxConnectionsPerIp: 0 } }) // N from 127.0.0.1
    const { app, hub } = server
    defer(() => app.close(), 'app.close()')
    const disconnects = []
    hub.on('disconnect', (ev) => disconnects.push(ev))

    const path = ssePath({ tag: 'X', topics: ['t'] }).replace('tag=X', 'tag={i}')
    const all = (await clients.open({ n: N, port: server.port, path, timeoutMs: 30000 })).indices
    assert.equal(hub.stats().connections, N)
    assert.ok(fdCount() >= baseline + N, 'each stream holds an fd of this process')

    // Published right before the close: still delivered, then the end.
    const expected = ['one', 'two', 'x'.repeat(4096)]
    for (const data of expected) hub.publish('t', data)
    const started = Date.now()
    await within(app.close(), closeTimeoutMs, 'app.close()')
    const elapsed = Date.now() - started
    t.diagnostic(`app.close() took ${elapsed} ms with ${N} streams`)
    assert.ok(elapsed < closeTimeoutMs / 4, `app.close() took ${elapsed} ms (closeTimeoutMs ${closeTimeoutMs})`)
    assert.equal(hub.closed, true, 'the plugin closed the hub it created')
    assert.equal(hub.stats().connections, 0)
    assert.equal(disconnects.length, N)
    assert.ok(disconnects.every((ev) => ev.reason === 'shutdown'))

    await clients.waitSummary((s) => all.every((i) => s[i].eof), 10000, 'every client to see its stream end')
    const report = await clients.report({ events: true, headers: false })
    let bad = 0
    let first = null
    for (const c of report) {
      try {
        assert.deepEqual(c.events.map((e) => e.data), expected)
        assert.equal(c.ended, true, 'the last chunk arrived')
        assert.equal(c.eofAfterEnd, true, 'then the FIN')
        assert.equal(c.error, null)
        assert.equal(c.framingError, null)
      } catch (err) {
        bad++
        first ??= `client ${c.i}: ${err.message}`
      }
    }
    assert.equal(bad, 0, `${bad} of ${N} clients did not see a proper end; first: ${first}`)
    await waitFor(() => fdCount() === baseline, 5000, () => `fd count ${fdCount()}, want the baseline ${baseline}`)
  })
}

test('private messages reach only their user\'s connections, under other users\' traffic', async (t) => {
  const defer = cleanup(t)
  const N = 500
  const USERS = 10
  // The auth hook's token table: every 11th client is anonymous.
  const userOf = (i) => (i % 11 === 10 ? null : `u${i % USERS}`)
  const tokens = new Map(Array.from({ length: N }, (_, i) => [`tok-${i}`, userOf(i)]))
  const log = logCapture()
  const server = await startApp({
    plugin: { threads: 2, maxConnectionsPerIp: 0 }, // every client from 127.0.0.1
    handler: 'async',
    logger: { level: 'warn', stream: log.stream },
    setup: (app) => {
      app.addHook('onRequest', async (request, reply) => {
        const token = String(request.headers.authorization || '').replace(/^Bearer /, '')
        if (!tokens.has(token)) {
          reply.code(401).send({ error: 'unauthorized' })
          return reply
        }
        const user = tokens.get(token)
        if (user !== null) request.user = user
      })
    }
  })
  const { app, hub } = server
  defer(() => app.close(), 'app.close()')
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')

  const path = ssePath({ tag: 'X', topics: ['inbox', 'room/lobby'] }).replace('tag=X', 'tag={i}')
  await clients.open({ n: N, port: server.port, path, headers: { authorization: 'Bearer tok-{i}' }, timeoutMs: 30000 })
  assert.equal(server.errors.length, 0)
  for (let i = 0; i < N; i++) assert.equal(server.conn(i).user, userOf(i) ?? undefined, `client ${i} user`)
  assert.equal(hub.stats().users, USERS)

  // Rounds of traffic: a private message for every user (and for a user
  // nobody is), a public one, one for a pair of users; in several turns.
  const ROUNDS = 200
  const steps = [] // { users: string[] | null, event, data }
  const user = (k) => `u${k % USERS}`
  for (let r = 0; r < ROUNDS; r++) {
    for (let k = 0; k < USERS; k++) {
      const data = JSON.stringify({ to: user(k), r })
      hub.publish('inbox', data, { users: [user(k)], event: 'private' })
      steps.push({ users: [user(k)], event: 'private', data })
    }
    hub.publish('inbox', 'for nobody here', { users: ['ghost'], event: 'private' })
    steps.push({ users: ['ghost'], event: 'private', data: 'for nobody here' })
    hub.publish('room/lobby', `public ${r}`)
    steps.push({ users: null, event: 'message', data: `public ${r}` })
    const pair = [user(r), user(r + 3)]
    hub.broadcast(`pair ${r}`, { users: pair, event: 'pair' })
    steps.push({ users: pair, event: 'pair', data: `pair ${r}` })
    if (r % 20 === 19) await nextTurn()
  }

  const expected = []
  for (let i = 0; i < N; i++) {
    const u = userOf(i)
    expected.push(steps.filter((s) => s.users === null || (u !== null && s.users.includes(u)))
      .map((s) => ({ event: s.event, data: s.data, lastEventId: '' })))
  }
  const all = Array.from({ length: N }, (_, i) => i)
  await clients.waitCounts(all, expected.map((e) => e.length), 30000)
  const report = await clients.report({ events: true, headers: false })
  let bad = 0
  let first = null
  for (let i = 0; i < N; i++) {
    try {
      assert.deepEqual(report[i].events, expected[i])
    } catch (err) {
      bad++
      first ??= `client ${i} (user ${userOf(i)}): ${err.message}`
    }
  }
  assert.equal(bad, 0, `${bad} of ${N} clients got the wrong events; first: ${first}`)
  assert.deepEqual(warnings(log.lines), [])
  // Anonymous clients get the public events only; every user as many again
  // (its private ones) plus its share of the pair events.
  assert.deepEqual([...new Set(expected.map((e) => e.length))].sort((x, y) => x - y), [ROUNDS, 2 * ROUNDS + 2 * ROUNDS / USERS])
})

test('reply.sse() errors are answered by Fastify with 400/405/503 and register no stream', async (t) => {
  const defer = cleanup(t)
  const server = await startApp({ plugin: { threads: 1, maxConnections: 2 } })
  const { app, hub } = server
  defer(() => app.close(), 'app.close()')
  const server2 = await startApp({ plugin: { threads: 1 }, handler: 'async' })
  defer(() => server2.app.close(), 'app.close() (async handler)')
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')
  let connects = 0
  hub.on('connect', () => connects++)
  server2.hub.on('connect', () => connects++)

  const bodyOf = async (index) => {
    const [c] = await clients.report({ indices: [index], raw: true })
    return { status: c.status, headers: c.headers, body: c.raw === '' ? null : JSON.parse(c.raw) }
  }
  const one = async (s, path, options = {}) => (await clients.open({ n: 1, port: s.port, path, ...options })).indices[0]

  // Invalid topics, from a sync and from an async handler.
  for (const [s, path, code] of [
    [server, ssePath({ tag: 0, topics: ['ok', 'bad\ntopic'] }), 'ERR_SSE_INVALID_TOPIC'],
    [server, ssePath({ tag: 1, topics: [''] }), 'ERR_SSE_INVALID_TOPIC'],
    [server2, ssePath({ tag: 2, topics: ['bad\r'] }), 'ERR_SSE_INVALID_TOPIC'],
    [server2, ssePath({ tag: 3, topics: ['ok'], retry: -5 }), 'ERR_SSE_INVALID_RETRY']
  ]) {
    const r = await bodyOf(await one(s, path))
    assert.equal(r.status, 400, path)
    assert.match(r.headers['content-type'], /^application\/json/)
    assert.equal(r.body.code, code, path)
    assert.equal(r.body.statusCode, 400)
    assert.match(r.body.message, /^Expected /)
  }
  // HEAD (every GET route has its HEAD twin): no stream, 405 with Allow.
  const head = await bodyOf(await one(server, ssePath({ tag: 4, topics: ['ok'] }), { method: 'HEAD' }))
  assert.equal(head.status, 405)
  assert.equal(head.headers.allow, 'GET')
  assert.equal(head.body, null, 'no body on a HEAD response')
  assert.equal(connects, 0, 'no stream was registered')
  assert.equal(hub.stats().connections + server2.hub.stats().connections, 0)
  assert.equal(server.errors.length + server2.errors.length, 5)

  // maxConnections: the third is refused with 503, the two streams still work.
  const a = await one(server, ssePath({ tag: 10, topics: ['ok'] }))
  const b = await one(server, ssePath({ tag: 11, topics: ['ok'] }))
  const full = await bodyOf(await one(server, ssePath({ tag: 12, topics: ['ok'] })))
  assert.equal(full.status, 503)
  assert.equal(full.body.code, 'ERR_SSE_TOO_MANY_CONNECTIONS')
  assert.equal(hub.stats().connections, 2)
  hub.publish('ok', 'still fine')
  await clients.waitCounts([a, b], 1)

  // A closed hub (here behind the app's back) refuses with 503 too.
  await hub.close()
  const closed = await bodyOf(await one(server, ssePath({ tag: 13, topics: ['ok'] })))
  assert.equal(closed.status, 503)
  assert.equal(closed.body.code, 'ERR_SSE_CLOSED')
})

test('plugin options: an app-owned hub, decorator names, exports, registration errors', async (t) => {
  const defer = cleanup(t)
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')

  // Exports.
  assert.equal(typeof sseFanout, 'function')
  assert.equal(sseFanout.default, sseFanout)
  assert.equal(sseFanout.sseFanout, sseFanout)
  const meta = sseFanout[Symbol.for('plugin-meta')]
  assert.equal(meta.name, 'sse-fanout')
  assert.equal(meta.fastify, '5.x')

  // An app-owned hub: decorated as is, not closed by app.close().
  const hub = new Hub({ threads: 1 })
  defer(() => hub.close(), 'hub.close()')
  const listeners = hub.listenerCount('connect') + hub.listenerCount('disconnect')
  const owned = await startApp({ plugin: { hub } })
  defer(() => owned.app.close(), 'app.close() (owned hub)')
  assert.equal(owned.app.sse, hub)
  const [c] = (await clients.open({ n: 1, port: owned.port, path: ssePath({ tag: 0, topics: ['t'] }) })).indices
  assert.equal(hub.stats().connections, 1)
  await within(owned.app.close(), 5000, 'app.close() with an app-owned hub')
  assert.equal(hub.closed, false, 'the app owns its hub')
  assert.equal(hub.listenerCount('connect') + hub.listenerCount('disconnect'), listeners, 'the plugin removed its listeners')
  // The taken-over stream outlives the Fastify server; the hub ends it.
  hub.publish('t', 'after app.close()')
  await clients.waitCounts([c], 1)
  await hub.close()
  await clients.waitSummary((s) => s[c].ended && s[c].eof, 5000, 'the stream to end with hub.close()')

  // Two hubs in one app under their own decorator names.
  const app = Fastify()
  defer(() => app.close(), 'app.close() (two hubs)')
  await app.register(sseFanout, { threads: 1 })
  await app.register(sseFanout, { threads: 1, decorator: 'alerts' })
  app.get('/news', (request, reply) => { reply.sse({ topics: 'news' }) })
  app.get('/alerts', async (request, reply) => reply.alerts({ topics: 'alerts' }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  const port = app.server.address().port
  assert.ok(app.sse instanceof Hub)
  assert.ok(app.alerts instanceof Hub)
  assert.notEqual(app.sse, app.alerts)
  const [news] = (await clients.open({ n: 1, port, path: '/news' })).indices
  const [alerts] = (await clients.open({ n: 1, port, path: '/alerts' })).indices
  app.sse.publish('news', 'n1')
  app.alerts.publish('news', 'not on this hub')
  app.alerts.publish('alerts', 'a1')
  await clients.waitCounts([news, alerts], 1)
  const [rn, ra] = await clients.report({ indices: [news, alerts], events: true })
  assert.deepEqual(rn.events.map((e) => e.data), ['n1'])
  assert.deepEqual(ra.events.map((e) => e.data), ['a1'])
  await within(app.close(), 5000, 'app.close() with two hubs')
  assert.equal(app.sse.closed && app.alerts.closed, true)

  // Registration errors reach app.ready().
  for (const [options, code, what] of [
    [{ hub, threads: 2 }, 'ERR_SSE_INVALID_ARGUMENT', 'hub and Hub options'],
    [{ hub: {} }, 'ERR_SSE_INVALID_ARGUMENT', 'not a hub'],
    [{ hub }, 'ERR_SSE_CLOSED', 'a closed hub'],
    [{ threads: 0 }, 'ERR_SSE_INVALID_ARGUMENT', 'an invalid Hub option'],
    [{ decorator: '' }, 'ERR_SSE_INVALID_ARGUMENT', 'an empty decorator name'],
    [{ decorator: 'log' }, 'ERR_SSE_INVALID_ARGUMENT', 'a taken decorator name']
  ]) {
    const bad = Fastify()
    bad.register(sseFanout, options)
    await assert.rejects(bad.ready(), { code }, what)
    await bad.close()
  }
})

test('connection events go to the app logger at debug level; no onRequestAbort for taken-over streams', async (t) => {
  const defer = cleanup(t)
  const log = logCapture()
  let aborts = 0
  const server = await startApp({
    plugin: { threads: 1 },
    logger: { level: 'debug', stream: log.stream },
    setup: (app) => app.addHook('onRequestAbort', async (request) => { aborts++ })
  })
  const { app, hub } = server
  defer(() => app.close(), 'app.close()')
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')

  const [c] = (await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 0, topics: ['t'], user: 'u1' }) })).indices
  const id = server.conn(0).id
  const sseLines = () => log.lines.filter((l) => l.sseConnection !== undefined)
  assert.deepEqual(sseLines().map((l) => [l.level, l.msg, l.sseConnection, l.transport, l.user]),
    [[20, 'sse connect', id, 'native', 'u1']])
  await clients.close({ indices: [c] })
  await waitFor(() => sseLines().length === 2, 5000, 'the disconnect log line')
  assert.deepEqual(sseLines().map((l) => [l.level, l.msg, l.sseConnection, l.reason]).slice(1),
    [[20, 'sse disconnect', id, 'client']])
  assert.equal(aborts, 0, 'the taken-over socket closing is not a request abort')
  assert.equal(hub.stats().connections, 0)
  assert.deepEqual(warnings(log.lines), [])
})
