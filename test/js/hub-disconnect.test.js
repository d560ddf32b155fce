'use strict'
// The 'disconnect' event and hub.kick(): connections whose client goes away
// are removed (stats, the 'disconnect' event with reason 'client', the
// server's fds); a client process killed with SIGKILL likewise; kick(id) ends
// one stream properly (reason 'kicked').

const { test, before } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const { Clients } = require('../helpers/clients')
const { startHub } = require('../helpers/fixture')
const { ssePath } = require('../helpers/server')
const { waitFor, fdCount, within } = require('../helpers/wait')

before(() => {
  // The first child process this process starts sets up libuv's signal pipe
  // for SIGCHLD (two fds kept for good): start one now so fd counts compare.
  spawnSync(process.execPath, ['-e', ''])
})

function paths (first, n, topics = ['news']) {
  return Array.from({ length: n }, (_, k) => ssePath({ tag: first + k, topics, user: `u${(first + k) % 5}` }))
}

// maxConnectionsPerIp 0: up to 300 clients from 127.0.0.1.
const HUB = { threads: 2, maxConnectionsPerIp: 0 }

test('clients that close are removed: stats, disconnect events (client), fds', async (t) => {
  const { hub, server, disconnects, clients } = await startHub(t, { hub: HUB, disconnects: true, clients: true })
  const baseline = fdCount()

  const N = 300
  await clients.open({ n: N, port: server.port, paths: paths(0, N) })
  assert.equal(hub.stats().connections, N)
  assert.equal(hub.stats().subscriptions, N)
  assert.equal(hub.stats().users, 5)
  // Each taken-over connection holds one fd of this process.
  assert.ok(fdCount() >= baseline + N, `fd count ${fdCount()} should be at least ${baseline} + ${N}`)

  hub.publish('news', 'before the close')
  await clients.waitCounts(Array.from({ length: N }, (_, i) => i), 1)

  // The client closes two thirds of its connections.
  const closed = await clients.close({ n: 200 })
  assert.equal(closed.length, 200)
  await waitFor(() => hub.stats().connections === N - 200, 10000,
    () => `connections ${hub.stats().connections}, want ${N - 200}`)
  const closedIds = closed.map((i) => server.conn(i).id)
  await waitFor(() => closedIds.every((id) => disconnects.byId.has(id)), 5000, 'a disconnect event per closed client')
  for (const id of closedIds) {
    assert.deepEqual(disconnects.byId.get(id), ['client'], `connection ${id} disconnects once, reason client`)
    assert.equal(hub.has(id), false)
    assert.equal(hub.subscriptions(id), undefined)
    assert.throws(() => hub.send(id, 'late'), { code: 'ERR_SSE_UNKNOWN_CONNECTION' })
  }
  assert.equal(disconnects.list.length, 200, 'no other connection was disconnected')

  // The others are untouched and still receive.
  hub.publish('news', 'after the close')
  const rest = Array.from({ length: N - 200 }, (_, k) => 200 + k)
  await clients.waitCounts(rest, 2)

  await clients.close({})
  await waitFor(() => hub.stats().connections === 0, 10000, () => `connections ${hub.stats().connections}, want 0`)
  await waitFor(() => disconnects.list.length === N, 5000, 'every disconnect event')
  assert.ok(disconnects.list.every((ev) => ev.reason === 'client'))
  assert.equal(new Set(disconnects.list.map((ev) => ev.id)).size, N)
  const s = hub.stats()
  assert.equal(s.subscriptions, 0)
  assert.equal(s.users, 0)
  assert.equal(s.queueBytes, 0)
  await waitFor(() => fdCount() === baseline, 5000, () => `fd count ${fdCount()} back to ${baseline}`)
})

test('a client process killed with SIGKILL: its connections are removed', async (t) => {
  const { hub, server, disconnects, defer } = await startHub(t, { hub: HUB, disconnects: true })
  const baseline = fdCount() // no client process yet
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')

  const N = 200
  await clients.open({ n: N, port: server.port, paths: paths(0, N) })
  assert.equal(hub.stats().connections, N)
  hub.publish('news', 'x'.repeat(1000))
  await clients.waitCounts(Array.from({ length: N }, (_, i) => i), 1)

  const { signal } = await within(clients.kill('SIGKILL'), 5000, 'the client process to die')
  assert.equal(signal, 'SIGKILL')
  await waitFor(() => hub.stats().connections === 0, 10000, () => `connections ${hub.stats().connections}, want 0`)
  await waitFor(() => disconnects.list.length === N, 5000, () => `${disconnects.list.length} of ${N} disconnect events`)
  assert.ok(disconnects.list.every((ev) => ev.reason === 'client'),
    `reasons: ${[...new Set(disconnects.list.map((ev) => ev.reason))]}`)
  for (const conn of server.conns.values()) assert.equal(hub.has(conn.id), false)
  // Publishing to the dead connections' topic is fine and reaches nobody.
  hub.publish('news', 'nobody left')
  assert.equal(hub.stats().queueBytes, 0)
  await waitFor(() => fdCount() === baseline, 5000, () => `fd count ${fdCount()} back to ${baseline}`)
})

test('kick(id): reason kicked, the client sees its queued events, the last chunk, then EOF', async (t) => {
  const { hub, server, disconnects, clients } = await startHub(t, { hub: HUB, disconnects: true, clients: true })
  const baseline = fdCount()

  const N = 20
  await clients.open({ n: N, port: server.port, paths: paths(0, N) })
  // One HTTP/1.0 client: its stream has no chunking, so its end is the EOF.
  const [h10] = (await clients.open({ n: 1, port: server.port, http10: true, paths: paths(N, 1) })).indices
  for (let k = 0; k < 5; k++) hub.publish('news', `n${k}`)
  const kicked = [0, 7, 13]
  // Kicked right after the publishes: what was queued still arrives first.
  for (const tag of [...kicked, h10]) hub.kick(server.conn(tag).id)

  await clients.waitSummary((s) => kicked.every((i) => s[i].closed), 5000, 'kicked clients to be closed')
  const report = await clients.report({ events: true, indices: kicked })
  for (const c of report) {
    assert.deepEqual(c.events.map((e) => e.data), ['n0', 'n1', 'n2', 'n3', 'n4'], `client ${c.i} events`)
    assert.equal(c.ended, true, `client ${c.i} got the last chunk`)
    assert.equal(c.eof, true, `client ${c.i} got EOF`)
    assert.equal(c.eofAfterEnd, true, `client ${c.i}: EOF came after the last chunk`)
    assert.equal(c.bytesAfterEnd, 0)
    assert.equal(c.error, null)
    assert.equal(c.framingError, null)
  }
  await clients.waitSummary((s) => s[h10].closed, 5000, 'the kicked HTTP/1.0 client to be closed')
  const [c10] = await clients.report({ events: true, indices: [h10] })
  assert.deepEqual(c10.events.map((e) => e.data), ['n0', 'n1', 'n2', 'n3', 'n4'])
  assert.equal(c10.chunked, false)
  assert.ok(c10.eof && !c10.error && !c10.framingError, 'the HTTP/1.0 stream ends with a clean EOF')
  kicked.push(h10)

  await waitFor(() => kicked.every((tag) => disconnects.byId.has(server.conn(tag).id)), 5000, 'kick disconnect events')
  for (const tag of kicked) {
    const id = server.conn(tag).id
    assert.deepEqual(disconnects.byId.get(id), ['kicked'])
    assert.equal(hub.has(id), false)
    assert.throws(() => hub.kick(id), { code: 'ERR_SSE_UNKNOWN_CONNECTION' }, 'a second kick')
  }
  assert.equal(disconnects.list.length, kicked.length)
  assert.equal(hub.stats().connections, N + 1 - kicked.length)

  // The others are still connected and receiving.
  hub.publish('news', 'after the kick')
  const rest = Array.from({ length: N + 1 }, (_, i) => i).filter((i) => !kicked.includes(i))
  await clients.waitCounts(rest, 6)
  const others = await clients.report({ indices: rest })
  assert.ok(others.every((c) => !c.ended && !c.eof && !c.closed))
  await waitFor(() => fdCount() === baseline + rest.length, 5000,
    () => `fd count ${fdCount()}, want ${baseline} + ${rest.length}`)
})
