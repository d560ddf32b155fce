'use strict'
// hub.publish(), broadcast() and send() fan out: 1000 clients in a separate
// process each receive exactly the events their subscriptions match, once
// each, in publish order; plus user-restricted publishes, event names and ids,
// multi-line, JSON and Buffer data (the scenario of test/helpers/scenario.js);
// stats().delivered counts what was delivered.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startHub } = require('../helpers/fixture')
const { pathsFor, runScenario } = require('../helpers/scenario')
const { within } = require('../helpers/wait')

const N = 1000

test('1000 clients each receive exactly their events, in order (native transport, 2 I/O threads)', async (t) => {
  // maxConnectionsPerIp: all N from 127.0.0.1.
  const { hub, server, clients } = await startHub(t, { hub: { threads: 2, maxConnectionsPerIp: N }, clients: true })

  let connects = 0
  hub.on('connect', () => connects++)
  const opened = await clients.open({ n: N, port: server.port, paths: pathsFor(0, N), timeoutMs: 30000 })
  assert.deepEqual(opened.indices, Array.from({ length: N }, (_, i) => i))
  assert.equal(connects, N)

  const disconnects = []
  hub.on('disconnect', (ev) => disconnects.push(ev))

  const { report } = await runScenario({ hub, server, clients, n: N, transport: 'native' })

  // Every response is a chunked text/event-stream over HTTP/1.1.
  const heads = await clients.report({ indices: [0, 1, N - 1] })
  for (const c of heads) {
    assert.equal(c.status, 200)
    assert.equal(c.headers['content-type'], 'text/event-stream')
    assert.equal(c.chunked, true)
  }
  // Both I/O threads carried connections and the counters add up.
  const stats = hub.stats()
  assert.equal(stats.connections, N)
  assert.equal(stats.native, N)
  assert.equal(stats.js, 0)
  assert.equal(stats.threads.length, 2)
  for (const shard of stats.threads) assert.ok(shard.connections > 0, 'each thread holds connections')
  const received = report.reduce((sum, c) => sum + c.count, 0)
  assert.ok(stats.delivered >= received, 'stats().delivered covers every event clients parsed')
  assert.deepEqual(disconnects, [], 'nobody was disconnected')

  await within(hub.close(), 10000, 'hub.close()')
})

// stats().delivered is documented as delivered frames; it must count the
// events that reached clients, the same way on both transports.
for (const transport of ['auto', 'js']) {
  test(`stats().delivered counts delivered events, nothing else (transport ${transport})`, async (t) => {
    const { hub, server, clients } = await startHub(t, { hub: { threads: 1, transport }, clients: true })
    await clients.open({ n: 3, port: server.port, paths: pathsFor(0, 3) })
    for (let k = 0; k < 5; k++) hub.broadcast(`event ${k}`)
    await clients.waitCounts([0, 1, 2], 5)
    const report = await clients.report({ events: true })
    assert.deepEqual(report.map((c) => c.count), [5, 5, 5])
    assert.equal(hub.stats().delivered, 15, 'three clients times five broadcasts')
  })
}
