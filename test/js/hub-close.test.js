'use strict'
// Issue item 6: headers the app set before accept() reach the client with the
// SSE ones; HTTP/1.1 is chunked, HTTP/1.0 is not; close() ends every stream
// after what was published, resolves, and the hub refuses calls afterwards.
// Run for both transports.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Hub } = require('../..')
const { Clients } = require('../helpers/clients')
const { startServer, ssePath, recordDisconnects } = require('../helpers/server')
const { within, waitFor, fdCount, cleanup } = require('../helpers/wait')

function appHeaders (req, res, url) {
  if (url.searchParams.get('h') === '1') {
    res.setHeader('Access-Control-Allow-Origin', 'https://app.example')
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; HttpOnly'])
    res.setHeader('X-Custom-Thing', 'custom value')
    // Framing and type are the hub's to decide.
    res.setHeader('Content-Type', 'text/html')
    res.setHeader('Content-Length', '12')
  }
  if (url.searchParams.get('cc') === '1') res.setHeader('Cache-Control', 'no-store')
}

for (const transport of ['auto', 'js']) {
  const expectTransport = transport === 'auto' ? 'native' : 'js'

  test(`[${transport}] app headers reach the client; HTTP/1.1 is chunked, HTTP/1.0 is not`, async (t) => {
    const defer = cleanup(t)
    const hub = new Hub({ threads: 1, transport })
    defer(() => hub.close(), 'hub.close()')
    const server = await startServer(hub, { beforeAccept: appHeaders })
    defer(() => server.close(), 'server.close()')
    const clients = await Clients.start()
    defer(() => clients.stop(), 'clients.stop()')

    const h11 = (await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 0, topics: ['t'], retry: 1500, extra: { h: '1' } }) })).indices[0]
    const h10 = (await clients.open({ n: 1, port: server.port, http10: true, path: ssePath({ tag: 1, topics: ['t'], retry: 1500, extra: { h: '1' } }) })).indices[0]
    const plain = (await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 2, topics: ['t'], extra: { cc: '1' } }) })).indices[0]
    for (const tag of [0, 1, 2]) assert.equal(server.conn(tag).transport, expectTransport)

    hub.publish('t', 'first\nsecond', { event: 'greeting', id: '1' })
    hub.publish('t', { n: 2 })
    await clients.waitCounts([h11, h10, plain], 2)
    const [c11, c10, cPlain] = await clients.report({ events: true, raw: true, indices: [h11, h10, plain] })

    for (const c of [c11, c10]) {
      const label = `HTTP/1.${c === c11 ? 1 : 0}`
      assert.equal(c.status, 200, label)
      assert.equal(c.headers['content-type'], 'text/event-stream', `${label} content-type replaces the app's`)
      assert.equal(c.headers['cache-control'], 'no-cache', label)
      assert.equal(c.headers['x-accel-buffering'], 'no', label)
      assert.equal(c.headers['access-control-allow-origin'], 'https://app.example', label)
      assert.deepEqual(c.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly'], `${label} both cookies`)
      assert.equal(c.headers['x-custom-thing'], 'custom value', label)
      assert.equal(c.headers['content-length'], undefined, `${label} no content-length on a stream`)
      assert.equal(c.retry, 1500, `${label} retry`)
      assert.deepEqual(c.events, [
        { event: 'greeting', data: 'first\nsecond', lastEventId: '1' },
        { event: 'message', data: '{"n":2}', lastEventId: '1' }
      ], label)
    }
    assert.equal(c11.chunked, true)
    assert.equal(c11.headers['transfer-encoding'], 'chunked')
    assert.notEqual(c11.headers.connection, 'close')

    assert.equal(c10.chunked, false)
    assert.equal(c10.headers['transfer-encoding'], undefined, 'no chunked framing for HTTP/1.0')
    assert.equal(String(c10.headers.connection).toLowerCase(), 'close')
    // The raw body is the event stream itself, no chunk sizes in it.
    assert.equal(c10.raw, 'retry: 1500\n\nevent: greeting\nid: 1\ndata: first\ndata: second\n\ndata: {"n":2}\n\n')
    assert.equal(c11.raw, c10.raw, 'the same SSE bytes once the chunking is removed')

    assert.equal(cPlain.headers['cache-control'], 'no-store', "the app's own cache-control is kept")
    assert.equal(cPlain.headers['set-cookie'], undefined)
  })

  test(`[${transport}] close() ends every stream after what was published, then refuses calls`, async (t) => {
    const defer = cleanup(t)
    const hub = new Hub({ threads: 2, transport })
    defer(() => hub.close(), 'hub.close()')
    const server = await startServer(hub)
    defer(() => server.close(), 'server.close()')
    const disconnects = recordDisconnects(hub)
    const clients = await Clients.start()
    defer(() => clients.stop(), 'clients.stop()')

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
    const defer = cleanup(t)
    const hub = new Hub({ threads: 1, transport, closeTimeoutMs: 500, maxQueueBytes: 16 << 20 })
    defer(() => hub.close(), 'hub.close()')
    const server = await startServer(hub)
    defer(() => server.close(), 'server.close()')
    const disconnects = recordDisconnects(hub)
    const clients = await Clients.start()
    defer(() => clients.stop(), 'clients.stop()')

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
    const hub = new Hub({ threads: 1, transport, closeTimeoutMs: 500, maxQueueBytes: 16 << 20 })
    defer(() => hub.close(), 'hub.close()')
    const server = await startServer(hub)
    defer(() => server.close(), 'server.close()')
    const disconnects = recordDisconnects(hub)
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
