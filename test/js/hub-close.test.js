'use strict'
// hub.close(): it ends every stream after what was published (HTTP/1.1 with
// the last chunk, HTTP/1.0 with EOF), resolves, and the hub refuses calls
// afterwards; a client that never reads holds neither close() nor a kicked
// stream's socket past closeTimeoutMs. Run for both transports.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Clients } = require('../helpers/clients')
const { startHub } = require('../helpers/fixture')
const { ssePath } = require('../helpers/server')
const { within, waitFor, fdCount, cleanup } = require('../helpers/wait')

for (const transport of ['auto', 'js']) {
  test(`[${transport}] close() ends every stream after what was published, then refuses calls`, async (t) => {
    const { hub, server, clients, disconnects } = await startHub(t, { hub: { threads: 2, transport }, clients: true, disconnects: true })

    const N = 40
    const v11 = (await clients.open({ n: N / 2, port: server.port, path: ssePath({ tag: 'X', topics: ['t'] }).replace('tag=X', 'tag={i}') })).indices
    const v10 = (await clients.open({ n: N / 2, port: server.port, http10: true, path: ssePath({ tag: 'X', topics: ['t'] }).replace('tag=X', 'tag={i}') })).indices
    assert.equal(hub.stats().connections, N)

    // Published right before close(): 20 events of 2 KiB, not yet written.
    const expected = []
    for (let k = 0; k < 20; k++) {
      const data = `${k}:` + 'y'.repeat(2048)
      expected.push(data)
      hub.publish('t', data)
    }
    const started = Date.now()
    await within(hub.close(), 10000, 'hub.close()')
    const elapsed = Date.now() - started
    assert.ok(elapsed < hub.options.closeTimeoutMs, `close() took ${elapsed} ms: it waited for the close timeout`)
    assert.equal(hub.closed, true)
    assert.equal(hub.stats().connections, 0)
    assert.equal(disconnects.list.length, N)
    assert.ok(disconnects.list.every((ev) => ev.reason === 'shutdown'))

    // Native streams are closed by the hub; JS-transport ones end their
    // response, and the HTTP server closes the idle HTTP/1.1 connections.
    if (transport === 'js') await server.close()
    await clients.waitSummary((s) => [...v11, ...v10].every((i) => s[i].closed), 5000, 'every client to see its stream closed')
    const report = await clients.report({ events: true })
    for (const c of report) {
      const label = `client ${c.i} (HTTP/1.${v11.includes(c.i) ? 1 : 0})`
      assert.deepEqual(c.events.map((e) => e.data), expected, `${label}: every event published before close()`)
      assert.equal(c.eof, true, `${label} EOF`)
      assert.equal(c.error, null, label)
      assert.equal(c.framingError, null, label)
      if (v11.includes(c.i)) {
        assert.equal(c.ended, true, `${label} got the last chunk`)
        assert.equal(c.eofAfterEnd, true, `${label} EOF after the last chunk`)
        assert.equal(c.bytesAfterEnd, 0)
      } else {
        assert.equal(c.chunked, false)
      }
    }

    // After close: every call is refused, new requests too.
    assert.throws(() => hub.publish('t', 'late'), { code: 'ERR_SSE_CLOSED' })
    assert.throws(() => hub.broadcast('late'), { code: 'ERR_SSE_CLOSED' })
    if (transport === 'auto') {
      const late = await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 99, topics: ['t'] }) })
      const [c] = await clients.report({ raw: true, indices: late.indices })
      assert.equal(c.status, 400)
      assert.equal(c.raw, 'ERR_SSE_CLOSED')
    }
  })

  test(`[${transport}] close() resolves within closeTimeoutMs when a client never reads`, async (t) => {
    const { hub, server, clients, disconnects } = await startHub(t, {
      hub: { threads: 1, transport, closeTimeoutMs: 500, maxQueueBytes: 16 << 20 }, clients: true, disconnects: true
    })

    const reader = (await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 0, topics: ['t'] }) })).indices[0]
    await clients.open({ n: 1, port: server.port, stall: true, path: ssePath({ tag: 1, topics: ['t'] }) })
    await within((async () => { while (!server.conns.has(1)) await new Promise((resolve) => setTimeout(resolve, 10)) })(), 5000, 'the stalled client to be accepted')
    // 8 MiB for the client that never reads: more than the kernel buffers
    // on both sides can hold (tcp_wmem max is 4 MiB here), less than the
    // queue cap, so it is not dropped as slow and close() has to give up on it.
    for (let k = 0; k < 2048; k++) hub.publish('t', `${k}:` + 'z'.repeat(4096))
    await clients.waitCounts([reader], 2048)
    assert.equal(hub.stats().connections, 2, 'the stalled client is still connected')
    const started = Date.now()
    await within(hub.close(), 5000, 'hub.close() with a stalled client')
    const elapsed = Date.now() - started
    assert.ok(elapsed < 3000, `close() took ${elapsed} ms`)
    assert.deepEqual(disconnects.list.map((ev) => ev.reason), ['shutdown', 'shutdown'])
    assert.equal(hub.stats().connections, 0)
  })

  test(`[${transport}] a kicked client that never reads is released within closeTimeoutMs`, async (t) => {
    const defer = cleanup(t)
    const clients = await Clients.start()
    defer(() => clients.stop(), 'clients.stop()')
    const { hub, server, disconnects } = await startHub(t, {
      defer, hub: { threads: 1, transport, closeTimeoutMs: 500, maxQueueBytes: 16 << 20 }, disconnects: true
    })
    const baseline = fdCount() // the hub's loop and the server's listener included

    const reader = (await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 0, topics: ['t'] }) })).indices[0]
    await clients.open({ n: 1, port: server.port, stall: true, path: ssePath({ tag: 1, topics: ['t'] }) })
    await waitFor(() => server.conns.has(1), 5000, 'the stalled client to be accepted')
    for (let k = 0; k < 2048; k++) hub.publish('t', `${k}:` + 'z'.repeat(4096))
    await clients.waitCounts([reader], 2048)
    assert.equal(hub.stats().connections, 2)

    hub.kick(server.conn(1).id)
    await waitFor(() => disconnects.list.length === 1, 5000, 'the kick disconnect event')
    assert.deepEqual(disconnects.list, [{ id: server.conn(1).id, reason: 'kicked' }])
    // Its socket is let go of once closeTimeoutMs has passed: one fd left, the reader's.
    await waitFor(() => fdCount() === baseline + 1, 3000,
      () => `fd count ${fdCount()}, want ${baseline} + 1 (the kicked socket is still open)`)
  })
}
