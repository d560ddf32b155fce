'use strict'
// The Redis bus (sse-fanout/redis) in the framework integrations, against one
// real redis-server: a Fastify app with the plugin's `bus` option and an
// Express app with `new Hub({ history: true, bus })` and the middleware, in
// this process, each on its own port, are one hub:
//   - a stream on either gets the events published on both, once, in one
//     order, with the ids bus.publish() resolved with (<redis epoch>-<seq>);
//   - reply.ssePoll() and poll() answer (and a long-poll waits for) events
//     published on the other app;
//   - a client moving from one app to the other with Last-Event-ID gets
//     exactly the events it missed;
//   - fastify.close() and server.close() (closeWithServer) leave the bus
//     'closed' and no connection to Redis open in this process.
// Plus the plugin's bus option errors: a bus without history, a bus with
// options.hub, a bus already attached, a closed bus.
// Skipped (with the reason) only where redis-server is missing.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const express = require('express')
const Fastify = require('fastify')
const { Hub } = require('../..')
const sseFastify = require('sse-fanout/fastify')
const { sse, poll, closeWithServer } = require('sse-fanout/express')
const { RedisBus } = require('sse-fanout/redis')
const { redisMissing, startRedis } = require('../helpers/redis')
const { openStream } = require('../helpers/bus-instance')
const { waitFor, within, cleanup } = require('../helpers/wait')

const missing = redisMissing()
const OPTIONS = { skip: missing || false, timeout: 45000 }
const FAST = { pingIntervalMs: 200, timeoutMs: 1000, blockMs: 500, minReconnectMs: 50, maxReconnectMs: 300 }
const ID = /^[A-Za-z0-9]{9}-\d+$/ // a Redis epoch has 9 characters, a local one 8

let redis = null
before(async () => {
  if (!missing) redis = await startRedis(null)
})
after(() => redis?.close())

const topicsOf = (query) => String(query.topics || '').split(',').filter(Boolean)

/** Sockets of this process connected to the test's redis-server. */
function redisSockets () {
  return process._getActiveHandles().filter((h) => h && h.remotePort === redis.port && !h.destroyed)
}

/** Connections redis-server holds, without the redis-cli that asks. */
async function serverClients () {
  return (await redis.cli('CLIENT', 'LIST')).split('\n').filter((l) => l.trim() !== '').length - 1
}

/**
 * The Fastify app: the plugin with { history: true, bus }, GET /events and
 * GET /poll (?topics=a,b), its logs in `logs`.
 */
async function startFastify (t, prefix) {
  const bus = new RedisBus({ url: redis.url, prefix, instanceId: 'fastify', ...FAST })
  const logs = []
  const app = Fastify({ logger: { level: 'info', stream: { write: (line) => logs.push(JSON.parse(line)) } } })
  cleanup(t)(() => app.close(), 'fastify.close()')
  await app.register(sseFastify, { history: true, bus, threads: 1, heartbeatMs: 0 })
  app.get('/events', (request, reply) => { reply.sse({ topics: topicsOf(request.query) }) })
  app.get('/poll', (request, reply) => reply.ssePoll({ topics: topicsOf(request.query) }))
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { app, bus, hub: app.sse, logs, port: app.server.address().port }
}

/** The Express app: its own Hub({ history: true, bus }), sse() and poll(), closeWithServer. */
async function startExpress (t, prefix) {
  const bus = new RedisBus({ url: redis.url, prefix, instanceId: 'express', ...FAST })
  const hub = new Hub({ history: true, bus, threads: 1, heartbeatMs: 0 })
  const app = express()
  app.get('/events', sse(hub, { topics: (req) => topicsOf(req.query) }))
  app.get('/poll', poll(hub, { topics: (req) => topicsOf(req.query) }))
  const server = http.createServer(app)
  closeWithServer(hub, server)
  const close = () => new Promise((resolve, reject) => server.close((err) => err && err.code !== 'ERR_SERVER_NOT_RUNNING' ? reject(err) : resolve()))
  cleanup(t)(() => hub.closed ? undefined : close(), 'server.close()')
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  return { app, bus, hub, server, close, port: server.address().port }
}

async function startBoth (t, prefix) {
  const [f, e] = await Promise.all([startFastify(t, prefix), startExpress(t, prefix)])
  await within(Promise.all([f.bus.ready(), e.bus.ready()]), 10000, 'both buses up')
  return { f, e }
}

/** GET on a fresh connection: { status, body } (the JSON body, or null when empty). */
function get (port, path) {
  return within(new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { text += c })
      res.on('end', () => resolve({ status: res.statusCode, body: text === '' ? null : JSON.parse(text) }))
      res.on('error', reject)
    }).on('error', reject)
  }), 15000, `GET ${path} on port ${port}`)
}
const messages = (stream) => stream.events.map((e) => ({ id: e.id, data: e.data }))

test('one hub across Fastify and Express: streams, ids, polls and a moved Last-Event-ID', OPTIONS, async (t) => {
  const { f, e } = await startBoth(t, 'fw:{one}')
  assert.equal(f.hub.stats().bus.instanceId, 'fastify', 'the plugin built its hub with options.bus')
  assert.equal(e.hub.stats().bus.instanceId, 'express')
  assert.ok(f.logs.some((l) => l.sseBus === 'up' && l.previous === 'connecting' && l.level === 30), 'the plugin logs the bus going up')

  const onF = await openStream(f.port, '/events?topics=orders')
  const onE = await openStream(e.port, '/events?topics=orders')
  t.after(() => { onF.close(); onE.close() })
  assert.deepEqual([onF.status, onE.status], [200, 200])
  await waitFor(() => f.hub.stats().connections === 1 && e.hub.stats().connections === 1, 5000, 'one stream on each app')

  // Alternating publishers; each bus.publish() resolves once Redis gave the id.
  const published = []
  for (let i = 0; i < 6; i++) {
    const [name, bus] = i % 2 === 0 ? ['express', e.bus] : ['fastify', f.bus]
    const data = `${name} ${i}`
    published.push({ id: await bus.publish('orders', data), data })
  }
  assert.equal(f.app.sse.publish('other', 'not for the streams'), null, 'fastify.sse.publish() returns null while the bus is up')
  const epoch = published[0].id.split('-')[0]
  assert.deepEqual(published.map((p) => p.id), [1, 2, 3, 4, 5, 6].map((s) => `${epoch}-${s}`), 'dense Redis ids in publish order')
  assert.match(published[0].id, ID)
  await waitFor(() => onF.events.length >= 6 && onE.events.length >= 6, 10000, 'both streams to get 6 events')
  assert.deepEqual(messages(onF), published, 'the Fastify stream: every event, once, in order, the Redis ids')
  assert.deepEqual(messages(onE), published, 'the Express stream: the same')
  await waitFor(() => f.hub.stats().bus.seq === 7 && e.hub.stats().bus.seq === 7, 5000, 'both to read the 7th entry')
  assert.equal(onF.events.length + onE.events.length, 12, 'nothing else reached the streams')

  // Polls answer what the other app published.
  const fromF = await get(f.port, `/poll?topics=orders&since=${published[0].id}`)
  assert.equal(fromF.status, 200)
  assert.deepEqual(fromF.body.events.map((ev) => ({ id: ev.id, data: ev.data })), published.slice(1), 'reply.ssePoll(): the rest')
  assert.equal(fromF.body.cursor, `${epoch}-7`)
  const fromE = await get(e.port, `/poll?topics=orders,other&since=${published[4].id}`)
  assert.equal(fromE.status, 200)
  assert.deepEqual(fromE.body.events.map((ev) => [ev.id, ev.topic, ev.data]), [
    [`${epoch}-6`, 'orders', 'fastify 5'],
    [`${epoch}-7`, 'other', 'not for the streams']
  ], 'poll(): the rest, the event published through fastify.sse.publish() too')
  assert.equal((await get(e.port, `/poll?topics=orders&since=${epoch}-7`)).status, 204, 'nothing new: 204')
  // A long-poll on Express wakes for an event published on Fastify, and the reverse.
  for (const [waiting, publisher, data] of [[e, f, 'long-poll 1'], [f, e, 'long-poll 2']]) {
    const { seq } = waiting.hub.stats().bus
    const polls = waiting.hub.stats().history.polls
    let answered = false
    const answer = get(waiting.port, `/poll?topics=orders&since=${epoch}-${seq}&wait=10`).finally(() => { answered = true })
    await waitFor(() => waiting.hub.stats().history.polls > polls, 5000, 'the long-poll to reach the hub')
    await new Promise((resolve) => setTimeout(resolve, 100))
    assert.equal(answered, false, 'the long-poll waits')
    const id = await publisher.bus.publish('orders', data)
    const res = await answer
    assert.equal(res.status, 200)
    assert.deepEqual(res.body.events.map((ev) => [ev.id, ev.data]), [[id, data]], `the long-poll gets ${data}`)
    published.push({ id, data })
  }

  // Moving from Fastify to Express with Last-Event-ID: exactly the missed events.
  await waitFor(() => onF.events.length === 8, 5000, 'the long-polled events on the Fastify stream')
  onF.close()
  const lastId = onF.events.at(-1).id
  const missed = []
  for (const [bus, data] of [[f.bus, 'missed 0'], [e.bus, 'missed 1'], [f.bus, 'missed 2']]) {
    missed.push({ id: await bus.publish('orders', data), data })
  }
  await e.bus.publish('other', 'not for the client')
  const moved = await openStream(e.port, '/events?topics=orders', { 'last-event-id': lastId })
  t.after(() => moved.close())
  await waitFor(() => moved.events.length >= 3, 10000, 'the moved client to get the missed events')
  const live = { id: await f.bus.publish('orders', 'live'), data: 'live' }
  await waitFor(() => moved.events.length >= 4, 10000, 'the live event on the moved client')
  assert.deepEqual(messages(moved), [...missed, live], 'the missed events, then the live one, no reset')
  assert.deepEqual(messages(onE), [...published, ...missed, live].slice(0, onE.events.length))
  await waitFor(() => onE.events.length === published.length + missed.length + 1, 5000, 'the Express stream to get every event')
  assert.deepEqual(messages(onE), [...published, ...missed, live], 'the Express stream, every event once in order')
})

test('fastify.close() and server.close() with closeWithServer close the bus: no Redis connection left', OPTIONS, async (t) => {
  // Only this process connects to this redis-server (the last test's buses have closed).
  await waitFor(async () => (await serverClients()) === 0, 5000, 'no client on redis-server')
  const { f, e } = await startBoth(t, 'fw:{close}')
  assert.equal(await serverClients(), 4, 'two connections per bus')
  assert.ok(redisSockets().length >= 4, 'this process holds them')
  const onF = await openStream(f.port, '/events?topics=t')
  const onE = await openStream(e.port, '/events?topics=t')
  t.after(() => { onF.close(); onE.close() })
  await e.bus.publish('t', 'before close')
  await waitFor(() => onF.events.length === 1 && onE.events.length === 1, 5000, 'the event on both')

  await within(f.app.close(), 10000, 'fastify.close()')
  assert.equal(f.hub.closed, true)
  assert.equal(f.bus.state, 'closed', 'the plugin closed the bus with its hub')
  assert.ok(f.logs.some((l) => l.sseBus === 'closed' && l.previous === 'up'), 'the close is logged')
  await within(e.close(), 10000, 'server.close()')
  assert.equal(e.hub.closed, true)
  assert.equal(e.bus.state, 'closed', 'closeWithServer closed the hub, hence the bus')
  await waitFor(async () => redisSockets().length === 0 && (await serverClients()) === 0, 5000,
    () => `no socket to Redis (${redisSockets().length} left in this process)`)
  await assert.rejects(f.bus.ready(), { code: 'ERR_SSE_CLOSED' })
  await assert.rejects(e.bus.publish('t', 'x'), { code: 'ERR_SSE_CLOSED' })
})

test('the plugin\'s bus option: needs history, not with options.hub, a bus of its own, not closed', { timeout: 20000 }, async (t) => {
  // Nothing listens on port 1: a bus that is never attached never connects.
  const url = 'redis://127.0.0.1:1'
  const register = async (options) => {
    const app = Fastify()
    app.register(sseFastify, options)
    try {
      await app.ready()
    } finally {
      await app.close()
    }
  }
  const bus = new RedisBus({ url })
  await assert.rejects(register({ bus }), (err) => err.code === 'ERR_SSE_INVALID_ARGUMENT' && /history/.test(err.message))
  await assert.rejects(register({ bus, history: false }), /history/)
  await assert.rejects(register({ bus, history: { maxEvents: 0 } }), /history/)
  const hub = new Hub({ threads: 1, history: true })
  t.after(() => hub.close())
  await assert.rejects(register({ hub, bus }), {
    code: 'ERR_SSE_INVALID_ARGUMENT',
    message: 'Expected either options.hub or Hub options but received both (options.hub and options.bus)'
  })
  assert.equal(bus.state, 'connecting', 'a refused bus was never attached')
  assert.equal(hub.stats().bus, undefined)

  // Attached to a hub already (by an earlier registration): refused.
  const app = Fastify()
  await app.register(sseFastify, { bus, history: true, threads: 1 })
  await app.ready()
  await assert.rejects(register({ bus, history: true }), /already attached/)
  await app.close()
  assert.equal(bus.state, 'closed')
  await assert.rejects(register({ bus, history: true }), { code: 'ERR_SSE_CLOSED' })
  await assert.rejects(register({ bus: {}, history: true }), /options\.bus/)
})
