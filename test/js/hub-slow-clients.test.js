'use strict'
// Slow clients (maxQueueBytes): a client that never reads is closed with
// reason 'slow' once its queue passes maxQueueBytes, while clients that read
// keep receiving every event, in order.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startHub } = require('../helpers/fixture')
const { ssePath } = require('../helpers/server')
const { waitFor } = require('../helpers/wait')

const EVENT_BYTES = 4096
const BATCH = 8 // events per round: 32 KiB, half the queue cap
const MAX_ROUNDS = 400 // 12.5 MiB in all: far past what a stalled socket can absorb

function payload (k) {
  const head = `k=${k};`
  return head + 'x'.repeat(EVENT_BYTES - head.length)
}

// The JS transport has no SO_SNDBUF cap (Node's socket autotunes its send
// buffer up to tcp_wmem's 4 MiB here), so its stalled client takes longer to
// pass the cap; MAX_ROUNDS leaves room for that.
for (const transport of ['auto', 'js']) {
  test(`[${transport}] a client that never reads is dropped as slow; the others get every event in order`, async (t) => {
    const { hub, server, clients, disconnects } = await startHub(t, {
      hub: { threads: 2, transport, maxQueueBytes: 64 * 1024, sndbufBytes: 16384 }, clients: true, disconnects: true
    })

    const HEALTHY = 12
    const healthy = (await clients.open({
      n: HEALTHY, port: server.port, paths: Array.from({ length: HEALTHY }, (_, k) => ssePath({ tag: k, topics: ['feed'] }))
    })).indices
    const stalled = (await clients.open({
      n: 2, port: server.port, stall: true, paths: [ssePath({ tag: 100, topics: ['feed'] }), ssePath({ tag: 101, topics: ['feed'] })]
    })).indices
    await waitFor(() => server.conns.has(100) && server.conns.has(101), 5000, 'the stalled clients to be accepted')
    const stalledIds = [server.conn(100).id, server.conn(101).id]
    assert.equal(hub.stats().connections, HEALTHY + 2)

    // Publish in rounds; the healthy clients read each round before the next,
    // so only the stalled ones fall behind.
    let published = 0
    let rounds = 0
    while (!stalledIds.every((id) => disconnects.byId.has(id))) {
      assert.ok(rounds++ < MAX_ROUNDS, `the stalled clients were not dropped after ${published} events ` +
        `(stats: ${JSON.stringify({ ...hub.stats(), threads: undefined })})`)
      for (let b = 0; b < BATCH; b++) hub.publish('feed', payload(published++))
      await clients.waitCounts(healthy, published, 10000)
    }
    // A few more after the drop: the healthy clients still get them.
    for (let b = 0; b < BATCH; b++) hub.publish('feed', payload(published++))
    await clients.waitCounts(healthy, published, 10000)

    for (const id of stalledIds) assert.deepEqual(disconnects.byId.get(id), ['slow'])
    assert.equal(disconnects.list.length, 2, 'only the stalled clients were dropped')
    const stats = hub.stats()
    assert.ok(stats.slow >= 2, `stats().slow is ${stats.slow}`)
    assert.equal(stats.connections, HEALTHY)
    assert.ok(stats.queueBytes <= HEALTHY * 64 * 1024, `queueBytes ${stats.queueBytes} stays bounded`)
    // The queue cap was reached: far more was published than the cap.
    assert.ok(published * EVENT_BYTES > 64 * 1024)

    const report = await clients.report({ events: true, truncate: 12, indices: healthy })
    for (const c of report) {
      assert.equal(c.count, published, `client ${c.i} count`)
      const seq = c.events.map((e) => Number(/^k=(\d+);/.exec(e.data)[1]))
      assert.deepEqual(seq, Array.from({ length: published }, (_, k) => k), `client ${c.i} order`)
      assert.equal(c.closed, false)
    }

    // The dropped clients, once they read, find their stream cut short: they
    // never got everything, and no clean end of body.
    await clients.resume(stalled)
    await clients.waitSummary((s) => stalled.every((i) => s[i].closed), 10000, 'the dropped clients to see the close')
    for (const c of await clients.report({ indices: stalled })) {
      assert.ok(c.count < published, `dropped client ${c.i} got ${c.count} of ${published}`)
      assert.equal(c.ended, false)
    }
  })
}
