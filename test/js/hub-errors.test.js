'use strict'
// The Hub's errors: every public method validates its arguments and throws an
// SseError with a stable ERR_SSE_* code and a message naming the argument;
// injection attempts send nothing; every method throws ERR_SSE_CLOSED after
// close(); the native status table and the JS codes agree. (The constructor's
// options: hub-options.test.js.)

const { test } = require('node:test')
const assert = require('node:assert/strict')
const sseFanout = require('../..')
const { codes } = sseFanout
const nativeAddon = require('../../lib/native')
const { startHub } = require('../helpers/fixture')
const { ssePath } = require('../helpers/server')
const { throwsSse } = require('../helpers/sse-error')
const { waitFor } = require('../helpers/wait')

// A hub with one real client connected through the client process, so tests
// can check that refused calls sent nothing.
async function setupWithClient (t, hubOptions = {}, topics = ['t']) {
  const { hub, server, clients } = await startHub(t, { hub: { threads: 1, ...hubOptions }, clients: true })
  await clients.open({ n: 1, port: server.port, paths: [ssePath({ tag: 0, topics, user: 'alice' })] })
  return { hub, server, clients, id: server.conn(0).id }
}

/** Broadcasts a sentinel and returns every event client 0 received up to it. */
async function eventsUpToSentinel (hub, clients, label) {
  hub.broadcast(label, { event: 'sentinel' })
  let events
  await waitFor(async () => {
    ;[{ events }] = await clients.report({ events: true, indices: [0] })
    return events.some((e) => e.event === 'sentinel' && e.data === label)
  }, 5000, `sentinel ${label}`)
  return events
}

const BAD_LINES = [['CR', 'x\rdata: forged'], ['LF', 'x\ndata: forged'], ['CRLF', 'x\r\nevent: forged\r\ndata: forged'], ['NUL', 'x\0y']]

test('topics are validated everywhere they are taken (ERR_SSE_INVALID_TOPIC)', async (t) => {
  const { hub, clients, id } = await setupWithClient(t)
  const bad = [
    ['empty', ''],
    ['1025 bytes', 'a'.repeat(1025)],
    ['1026 UTF-8 bytes in 513 characters', 'é'.repeat(513)],
    ['CR', 'a\rb'],
    ['LF', 'a\nb'],
    ['CRLF', 'a\r\nb'],
    ['NUL', 'a\0b'],
    ['a number', 42]
  ]
  for (const [label, topic] of bad) {
    throwsSse(() => hub.publish(topic, 'x'), 'ERR_SSE_INVALID_TOPIC', /\btopic\b/, `publish(${label})`)
    throwsSse(() => hub.subscribe(id, ['ok', topic]), 'ERR_SSE_INVALID_TOPIC', /topics\[1\]/, `subscribe(${label})`)
    throwsSse(() => hub.unsubscribe(id, [topic]), 'ERR_SSE_INVALID_TOPIC', /topics\[0\]/, `unsubscribe(${label})`)
  }
  throwsSse(() => hub.subscribe(id, 42), 'ERR_SSE_INVALID_ARGUMENT', /topics/, 'subscribe(42)')
  throwsSse(() => hub.subscribe(id, { 0: 'a' }), 'ERR_SSE_INVALID_ARGUMENT', /topics/, 'subscribe(object)')
  // Nothing was subscribed by the failed calls (not even 'ok').
  assert.deepEqual(hub.subscriptions(id), ['t'])
  // The limits themselves are accepted: exactly 1024 bytes, any other bytes.
  hub.subscribe(id, ['b'.repeat(1024), 'ü'.repeat(512), 'tab\tand space'])
  assert.equal(hub.subscriptions(id).length, 4)
  hub.publish('b'.repeat(1024), 'long topic')
  hub.publish('tab\tand space', 'odd topic')
  const events = await eventsUpToSentinel(hub, clients, 'topics')
  assert.deepEqual(events.map((e) => e.data), ['long topic', 'odd topic', 'topics'])
})

test('accept() validates req, res and its options; a refused request stays with the app', async (t) => {
  const { hub, server, clients } = await startHub(t, { hub: { threads: 1 }, clients: true })
  const req = { headers: {} }
  const res = { writeHead () {} }
  throwsSse(() => hub.accept(null, res), 'ERR_SSE_INVALID_ARGUMENT', /\breq\b/, 'accept(null)')
  throwsSse(() => hub.accept({}, res), 'ERR_SSE_INVALID_ARGUMENT', /\breq\b/, 'accept({})')
  throwsSse(() => hub.accept(req, null), 'ERR_SSE_INVALID_ARGUMENT', /\bres\b/, 'accept(req, null)')
  throwsSse(() => hub.accept(req, {}), 'ERR_SSE_INVALID_ARGUMENT', /\bres\b/, 'accept(req, {})')
  throwsSse(() => hub.accept(req, res, null), 'ERR_SSE_INVALID_ARGUMENT', /options/, 'accept options null')
  throwsSse(() => hub.accept(req, res, { topics: [''] }), 'ERR_SSE_INVALID_TOPIC', /options\.topics\[0\]/, 'empty topic')
  throwsSse(() => hub.accept(req, res, { topics: 7 }), 'ERR_SSE_INVALID_ARGUMENT', /options\.topics/, 'topics 7')
  throwsSse(() => hub.accept(req, res, { user: '' }), 'ERR_SSE_INVALID_ARGUMENT', /options\.user/, 'empty user')
  throwsSse(() => hub.accept(req, res, { user: 'u'.repeat(1025) }), 'ERR_SSE_INVALID_ARGUMENT', /options\.user/, 'long user')
  throwsSse(() => hub.accept(req, res, { user: 5 }), 'ERR_SSE_INVALID_ARGUMENT', /options\.user/, 'user 5')
  throwsSse(() => hub.accept(req, res, { retry: -1 }), 'ERR_SSE_INVALID_RETRY', /options\.retry/, 'retry -1')
  throwsSse(() => hub.accept(req, res, { retry: 1.5 }), 'ERR_SSE_INVALID_RETRY', /options\.retry/, 'retry 1.5')
  throwsSse(() => hub.accept(req, res, { retry: '100' }), 'ERR_SSE_INVALID_RETRY', /options\.retry/, 'retry string')
  assert.equal(hub.stats().connections, 0)

  // Over a real connection: the refused request gets the app's own answer.
  await clients.open({
    n: 2,
    port: server.port,
    paths: [ssePath({ tag: 0, topics: ['ok', 'bad\nline'] }), ssePath({ tag: 1, retry: -5 })]
  })
  const report = await clients.report({ raw: true })
  assert.deepEqual(report.map((c) => c.status), [400, 400])
  assert.deepEqual(report.map((c) => c.raw), ['ERR_SSE_INVALID_TOPIC', 'ERR_SSE_INVALID_RETRY'])
  assert.deepEqual(server.errors.map((e) => e.error.code), ['ERR_SSE_INVALID_TOPIC', 'ERR_SSE_INVALID_RETRY'])
  assert.equal(hub.stats().connections, 0)
})

test('accept() with more topics than maxSubscriptions: ERR_SSE_TOO_MANY_SUBSCRIPTIONS naming options.topics', async (t) => {
  const { hub, server, clients } = await startHub(t, { hub: { threads: 1, maxSubscriptions: 2 }, clients: true })
  await clients.open({ n: 1, port: server.port, paths: [ssePath({ tag: 0, topics: ['a', 'b', 'c'] })] })
  const [c] = await clients.report({ raw: true })
  assert.equal(c.status, 400)
  assert.equal(c.raw, 'ERR_SSE_TOO_MANY_SUBSCRIPTIONS')
  assert.equal(hub.stats().connections, 0)
  const { error } = server.errors[0]
  assert.equal(error.code, 'ERR_SSE_TOO_MANY_SUBSCRIPTIONS')
  assert.match(error.message, /options\.topics/, 'the message names the argument')
  assert.doesNotMatch(error.message, /undefined/, 'the message does not print "undefined"')
})

test('accept() past maxConnections: ERR_SSE_TOO_MANY_CONNECTIONS; a freed slot is used again', async (t) => {
  const { hub, server, clients } = await startHub(t, { hub: { threads: 1, maxConnections: 2 }, clients: true })
  await clients.open({ n: 3, port: server.port, concurrency: 1, path: '/sse?tag={i}&t=t' })
  const report = await clients.report({ raw: true })
  assert.deepEqual(report.map((c) => c.status), [200, 200, 400])
  assert.equal(report[2].raw, 'ERR_SSE_TOO_MANY_CONNECTIONS')
  assert.equal(server.errors[0].error.code, 'ERR_SSE_TOO_MANY_CONNECTIONS')
  assert.match(server.errors[0].error.message, /maxConnections/)
  assert.equal(hub.stats().connections, 2)

  const gone = new Promise((resolve) => hub.once('disconnect', resolve))
  await clients.close({ indices: [0] })
  await gone
  const [i] = (await clients.open({ n: 1, port: server.port, path: '/sse?tag={i}&t=t' })).indices
  hub.publish('t', 'fits again')
  await clients.waitCounts([1, i], 1)
  assert.equal(hub.stats().connections, 2)
})

test('event names and ids with CR, LF, CRLF or NUL are refused and nothing is sent', async (t) => {
  const { hub, clients, id } = await setupWithClient(t)
  for (const [label, bad] of BAD_LINES) {
    throwsSse(() => hub.publish('t', 'data', { event: bad }), 'ERR_SSE_INVALID_EVENT', /options\.event/, `publish event ${label}`)
    throwsSse(() => hub.publish('t', 'data', { id: bad }), 'ERR_SSE_INVALID_ID', /options\.id/, `publish id ${label}`)
    throwsSse(() => hub.broadcast('data', { event: bad }), 'ERR_SSE_INVALID_EVENT', /options\.event/, `broadcast event ${label}`)
    throwsSse(() => hub.broadcast('data', { id: bad }), 'ERR_SSE_INVALID_ID', /options\.id/, `broadcast id ${label}`)
    throwsSse(() => hub.send(id, 'data', { event: bad }), 'ERR_SSE_INVALID_EVENT', /options\.event/, `send event ${label}`)
    throwsSse(() => hub.send(id, 'data', { id: bad }), 'ERR_SSE_INVALID_ID', /options\.id/, `send id ${label}`)
    // A valid event name with a bad id: the whole event is refused.
    throwsSse(() => hub.publish('t', 'data', { event: 'fine', id: bad }), 'ERR_SSE_INVALID_ID', /options\.id/, `fine event, id ${label}`)
  }
  throwsSse(() => hub.publish('t', 'data', { event: 42 }), 'ERR_SSE_INVALID_EVENT', /options\.event/, 'event 42')
  throwsSse(() => hub.publish('t', 'data', { id: 7 }), 'ERR_SSE_INVALID_ID', /options\.id/, 'id 7')
  throwsSse(() => hub.publish('t', 'data', null), 'ERR_SSE_INVALID_ARGUMENT', /options/, 'options null')
  throwsSse(() => hub.publish('t', 'data', 'event'), 'ERR_SSE_INVALID_ARGUMENT', /options/, 'options string')
  throwsSse(() => hub.publish('t', 'data', { users: 'alice' }), 'ERR_SSE_INVALID_ARGUMENT', /options\.users/, 'users string')
  throwsSse(() => hub.broadcast('data', { users: [1] }), 'ERR_SSE_INVALID_ARGUMENT', /options\.users\[0\]/, 'users [1]')

  // The client saw none of it: no forged event, no forged id, only the sentinel.
  const events = await eventsUpToSentinel(hub, clients, 'after the attempts')
  assert.deepEqual(events, [{ event: 'sentinel', data: 'after the attempts', lastEventId: '' }])
  // Line breaks in data are fine: they become data lines, not fields.
  hub.send(id, 'x\nevent: forged\r\nid: forged\rdata: forged')
  const later = await eventsUpToSentinel(hub, clients, 'data lines')
  assert.deepEqual(later.slice(1), [
    { event: 'message', data: 'x\nevent: forged\nid: forged\ndata: forged', lastEventId: '' },
    { event: 'sentinel', data: 'data lines', lastEventId: '' }
  ])
})

test('data that is not a string, Buffer or JSON value: ERR_SSE_INVALID_DATA, nothing sent', async (t) => {
  const { hub, clients, id } = await setupWithClient(t)
  const circular = { a: 1 }
  circular.self = circular
  const cases = [
    ['a circular object', circular],
    ['a BigInt', 10n],
    ['an object holding a BigInt', { n: 1n }],
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['a throwing toJSON', { toJSON () { throw new Error('nope') } }]
  ]
  for (const [label, data] of cases) {
    throwsSse(() => hub.publish('t', data), 'ERR_SSE_INVALID_DATA', /\bdata\b/, `publish ${label}`)
    throwsSse(() => hub.broadcast(data), 'ERR_SSE_INVALID_DATA', /\bdata\b/, `broadcast ${label}`)
    throwsSse(() => hub.send(id, data), 'ERR_SSE_INVALID_DATA', /\bdata\b/, `send ${label}`)
  }
  const events = await eventsUpToSentinel(hub, clients, 'after bad data')
  assert.deepEqual(events.map((e) => e.data), ['after bad data'])
})

test('an event larger than maxQueueBytes: ERR_SSE_DATA_TOO_LARGE, nothing sent', async (t) => {
  const { hub, clients, id } = await setupWithClient(t, { maxQueueBytes: 2048 })
  throwsSse(() => hub.publish('t', 'x'.repeat(4096)), 'ERR_SSE_DATA_TOO_LARGE', /\bdata\b/, 'publish')
  throwsSse(() => hub.broadcast(Buffer.alloc(4096, 0x61)), 'ERR_SSE_DATA_TOO_LARGE', /\bdata\b/, 'broadcast')
  throwsSse(() => hub.send(id, { big: 'y'.repeat(4096) }), 'ERR_SSE_DATA_TOO_LARGE', /\bdata\b/, 'send')
  hub.publish('t', 'z'.repeat(1000)) // well under the cap
  const events = await eventsUpToSentinel(hub, clients, 'after big data')
  assert.deepEqual(events.map((e) => e.data), ['z'.repeat(1000), 'after big data'])
})

test('unknown or ended connection ids: ERR_SSE_UNKNOWN_CONNECTION', async (t) => {
  const { hub, server, clients, id } = await setupWithClient(t)
  const malformed = [0, -1, 1.5, '1', null, undefined, NaN, 2 ** 53]
  for (const bad of malformed) {
    const label = String(bad)
    throwsSse(() => hub.send(bad, 'x'), 'ERR_SSE_UNKNOWN_CONNECTION', /connection/i, `send(${label})`)
    throwsSse(() => hub.kick(bad), 'ERR_SSE_UNKNOWN_CONNECTION', /connection/i, `kick(${label})`)
    throwsSse(() => hub.subscribe(bad, ['a']), 'ERR_SSE_UNKNOWN_CONNECTION', /connection/i, `subscribe(${label})`)
    throwsSse(() => hub.unsubscribe(bad, ['a']), 'ERR_SSE_UNKNOWN_CONNECTION', /connection/i, `unsubscribe(${label})`)
  }
  // Well-formed ids this hub never issued.
  for (const never of [id + 1, id + 2 ** 21, 123456789]) {
    throwsSse(() => hub.send(never, 'x'), 'ERR_SSE_UNKNOWN_CONNECTION', new RegExp(String(never)), `send(${never})`)
    throwsSse(() => hub.kick(never), 'ERR_SSE_UNKNOWN_CONNECTION', new RegExp(String(never)), `kick(${never})`)
    throwsSse(() => hub.subscribe(never, 'a'), 'ERR_SSE_UNKNOWN_CONNECTION', new RegExp(String(never)), `subscribe(${never})`)
    throwsSse(() => hub.unsubscribe(never, 'a'), 'ERR_SSE_UNKNOWN_CONNECTION', new RegExp(String(never)), `unsubscribe(${never})`)
    assert.equal(hub.has(never), false)
    assert.equal(hub.subscriptions(never), undefined)
  }
  // An id whose connection has ended.
  const gone = new Promise((resolve) => hub.on('disconnect', resolve))
  await clients.close({ indices: [0] })
  assert.deepEqual(await gone, { id, reason: 'client' })
  throwsSse(() => hub.send(id, 'x'), 'ERR_SSE_UNKNOWN_CONNECTION', new RegExp(String(id)), 'send(ended)')
  throwsSse(() => hub.kick(id), 'ERR_SSE_UNKNOWN_CONNECTION', new RegExp(String(id)), 'kick(ended)')
  throwsSse(() => hub.subscribe(id, 'a'), 'ERR_SSE_UNKNOWN_CONNECTION', new RegExp(String(id)), 'subscribe(ended)')
  throwsSse(() => hub.unsubscribe(id, 'a'), 'ERR_SSE_UNKNOWN_CONNECTION', new RegExp(String(id)), 'unsubscribe(ended)')
  assert.equal(hub.has(id), false)

  // The slot is reused by the next connection, under a new id: the old id stays dead.
  await clients.open({ n: 1, port: server.port, paths: [ssePath({ tag: 1, topics: ['t'] })] })
  const fresh = server.conn(1).id
  assert.notEqual(fresh, id)
  throwsSse(() => hub.send(id, 'for the old one'), 'ERR_SSE_UNKNOWN_CONNECTION', [], 'send(old id after reuse)')
  hub.send(fresh, 'for the new one')
  await clients.waitCounts([1], 1)
  const [c] = await clients.report({ events: true, indices: [1] })
  assert.deepEqual(c.events.map((e) => e.data), ['for the new one'])
})

test('too many subscriptions: ERR_SSE_TOO_MANY_SUBSCRIPTIONS, nothing partially applied', async (t) => {
  const { hub, clients, id } = await setupWithClient(t, { maxSubscriptions: 3 }, ['a', 'b'])
  const err = throwsSse(() => hub.subscribe(id, ['c', 'd']), 'ERR_SSE_TOO_MANY_SUBSCRIPTIONS', [], 'subscribe c, d')
  assert.match(err.message, new RegExp(String(id)))
  throwsSse(() => hub.subscribe(id, ['x/*', 'y', 'a']), 'ERR_SSE_TOO_MANY_SUBSCRIPTIONS', [], 'subscribe x/*, y, a')
  assert.deepEqual(hub.subscriptions(id), ['a', 'b'])
  assert.equal(hub.stats().subscriptions, 2)
  // Nothing of the refused calls reached the index: c, d, x/*, y deliver nothing.
  for (const topic of ['c', 'd', 'x/1', 'y']) hub.publish(topic, `to ${topic}`)
  hub.publish('a', 'to a')
  let events = await eventsUpToSentinel(hub, clients, 'first')
  assert.deepEqual(events.map((e) => e.data), ['to a', 'first'])

  // Re-subscribing to held topics does not count twice; one more fits.
  hub.subscribe(id, ['a', 'b', 'c', 'c'])
  assert.deepEqual(hub.subscriptions(id), ['a', 'b', 'c'])
  throwsSse(() => hub.subscribe(id, 'd'), 'ERR_SSE_TOO_MANY_SUBSCRIPTIONS', [], 'subscribe d at the cap')
  hub.unsubscribe(id, ['a', 'not-held'])
  assert.deepEqual(hub.subscriptions(id), ['b', 'c'])
  hub.subscribe(id, 'd')
  for (const topic of ['a', 'b', 'c', 'd']) hub.publish(topic, `to ${topic}`)
  events = await eventsUpToSentinel(hub, clients, 'second')
  assert.deepEqual(events.map((e) => e.data), ['to a', 'first', 'to b', 'to c', 'to d', 'second'])
})

test('publishing to a topic nobody subscribes to is not an error', async (t) => {
  const { hub, clients } = await setupWithClient(t)
  const before = hub.stats().published
  hub.publish('nobody/here', 'lost')
  hub.publish('nobody/here', { json: true }, { event: 'e', id: '1' })
  hub.publish('t', 'only to t', { users: ['nobody'] })
  hub.broadcast('to no user', { users: [] })
  assert.equal(hub.stats().published, before + 4)
  const events = await eventsUpToSentinel(hub, clients, 'nobody')
  assert.deepEqual(events.map((e) => e.data), ['nobody'])
})

test('every method after close() throws ERR_SSE_CLOSED; close() is idempotent', async (t) => {
  const { hub, id } = await setupWithClient(t)
  const closing = hub.close()
  assert.equal(hub.closed, true)
  assert.equal(hub.close(), closing, 'close() returns the same promise')
  const calls = {
    accept: () => hub.accept({ headers: {} }, { writeHead () {} }),
    subscribe: () => hub.subscribe(id, ['a']),
    unsubscribe: () => hub.unsubscribe(id, ['t']),
    publish: () => hub.publish('t', 'x'),
    broadcast: () => hub.broadcast('x'),
    send: () => hub.send(id, 'x'),
    kick: () => hub.kick(id),
    // Arguments are not even looked at once closed.
    'publish with bad arguments': () => hub.publish('', undefined),
    'send with a bad id': () => hub.send(-1, 'x')
  }
  for (const [name, call] of Object.entries(calls)) throwsSse(call, 'ERR_SSE_CLOSED', /closed/, `${name} while closing`)
  await closing
  for (const [name, call] of Object.entries(calls)) throwsSse(call, 'ERR_SSE_CLOSED', /closed/, `${name} after close`)
  assert.equal(hub.stats().connections, 0)
})

test('the native status table agrees with the JS error codes', () => {
  const names = nativeAddon.statusNames
  assert.ok(Array.isArray(names) && names.length > 1)
  assert.equal(names[0], 'OK')
  for (const name of names.slice(1)) {
    assert.ok(`ERR_SSE_${name}` in codes, `ERR_SSE_${name} is a key of codes`)
    assert.equal(typeof codes[`ERR_SSE_${name}`], 'string')
  }
  assert.equal(new Set(names).size, names.length, 'status names are distinct')
  assert.ok(Object.isFrozen(codes))
  // The package's own export is the same table.
  assert.equal(sseFanout.codes, codes)
  // Every code but those raised by JS alone, and those only the native
  // listener answers with (never thrown), is backed by a native status.
  const fromNative = new Set(names.slice(1).map((n) => `ERR_SSE_${n}`))
  assert.deepEqual(Object.keys(codes).filter((c) => !fromNative.has(c)).sort(),
    ['ERR_SSE_AUTHORIZE', 'ERR_SSE_BAD_REQUEST', 'ERR_SSE_FORBIDDEN', 'ERR_SSE_INVALID_ARGUMENT', 'ERR_SSE_LISTEN', 'ERR_SSE_MISSING_DEPENDENCY',
      'ERR_SSE_NATIVE_LOAD', 'ERR_SSE_NOT_FOUND', 'ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP', 'ERR_SSE_UNAUTHORIZED'])
})
