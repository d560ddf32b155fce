'use strict'
// Fault test: graceful shutdown under load. N clients subscribe to one topic;
// the server publishes bursts of events and calls hub.close() right after the
// last publish, in the same JS job, while the I/O threads are still writing
// earlier bursts. Checked:
//   - every event published before close() reaches every client, once, in
//     order (the load generator counts and order-checks all connections);
//   - then every stream ends properly: HTTP/1.1 with the terminating chunk and
//     then FIN, HTTP/1.0 by FIN after the last event (a sample in Node checks
//     this per connection); every disconnect has reason `shutdown`;
//   - close() resolves before closeTimeoutMs (no client was cut off), and the
//     server process is back to its fd count from before the Hub existed.
// Scale: full = 10k connections (native), 2k (JS transport); ci = 1k / 500.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { StressServer } = require('../helpers/stress-server')
const { Clients } = require('../helpers/clients')
const { cleanup, waitFor } = require('../helpers/wait')
const { SCALE, scaled, orAfter, loadgen, record, fig, machineLoad } = require('../helpers/stress-common')

const BURSTS = 10
const PER_BURST = 10
const BURST_MS = 50
const EVENTS = BURSTS * PER_BURST
const EVENT_BYTES = 256
const CLOSE_TIMEOUT_MS = 5000 // the default

const VARIANTS = [
  { transport: 'auto', n: scaled({ ci: 1000, full: 10000 }) },
  { transport: 'js', n: scaled({ ci: 500, full: 2000 }) }
]

for (const { transport, n } of VARIANTS) {
  test(`graceful shutdown under load [${transport}]: ${n} clients, close() right after the last of ${EVENTS} events (scale ${SCALE})`, async (t) => {
    const defer = cleanup(t, 20000)
    const SAMPLE11 = 40 // HTTP/1.1 clients checked one by one (Node)
    const SAMPLE10 = 10 // HTTP/1.0 clients
    const LG = n - SAMPLE11 - SAMPLE10
    const server = await StressServer.start({ transport, heartbeatMs: 0, closeTimeoutMs: CLOSE_TIMEOUT_MS })
    defer(() => server.stop(), 'server.stop()')
    const clients = await Clients.start({ lifetimeMs: 5 * 60 * 1000 })
    defer(() => clients.stop(), 'clients.stop()')
    const s11 = (await clients.open({ n: SAMPLE11, port: server.port, path: '/sse?t=feed' })).indices
    const s10 = (await clients.open({ n: SAMPLE10, port: server.port, path: '/sse?t=feed', http10: true })).indices
    const lg = loadgen({ port: server.port, n: LG, path: '/sse?t=feed', expect: EVENTS, duration: 300 })
    defer(() => lg.kill('SIGTERM'), 'loadgen')
    assert.equal(await lg.ready, LG)
    await waitFor(async () => (await server.stats()).hub.connections === n, 30000, `${n} connections`)

    const run = await server.run({ ticks: BURSTS, tickMs: BURST_MS, items: [{ kind: 'publish', topic: 'feed', bytes: EVENT_BYTES, n: PER_BURST }], closeAfter: true })
    assert.equal(run.total, EVENTS)
    const closed = await server.close(60000) // resolves when hub.close() has
    const lgResult = await orAfter(lg.done, 30000, () => lg.kill('SIGTERM'))
    await clients.waitSummary((s) => [...s11, ...s10].every((i) => s[i].closed || s[i].eof), 15000, 'the sample streams to end')
    const report = await clients.report({ indices: [...s11, ...s10], events: true, truncate: 40, headers: false })
    const after = closed.stats

    const sampleBad = []
    for (const c of report) {
      const seqs = c.events.map((e) => Number(e.data.split(' ')[1]))
      const inOrder = seqs.length === EVENTS && seqs.every((v, k) => v === k)
      // (the hub answers an HTTP/1.0 request with an HTTP/1.1 status line, not chunked)
      const properEnd = c.chunked ? (c.ended && c.eofAfterEnd && c.bytesAfterEnd === 0) : (c.eof && s10.includes(c.i))
      if (!inOrder || !properEnd || c.framingError || c.error) {
        sampleBad.push({ i: c.i, count: c.count, inOrder, properEnd, ended: c.ended, eof: c.eof, error: c.error, framingError: c.framingError })
      }
    }
    const figures = {
      transport,
      clients: n,
      events: EVENTS,
      closeMs: fig(closed.closeMs, CLOSE_TIMEOUT_MS),
      publishMs: run.ms,
      loadgenComplete: fig(lgResult.complete_connections, LG),
      loadgenEvents: fig(lgResult.events, EVENTS * LG),
      lost: fig(lgResult.lost, 0),
      sampleBad: fig(sampleBad.length, 0),
      reasons: after.reasons,
      fdsAfterClose: fig(after.fds, server.fdsBefore)
    }
    record('shutdown', t.name, figures)
    t.diagnostic(JSON.stringify({ ...figures, ...machineLoad() }))

    // Everything published before close() arrived, at every client, in order.
    assert.equal(lgResult.exit_reason, 'expect', `load generator: ${JSON.stringify({ ...lgResult, latency_us: undefined })}`)
    assert.equal(lgResult.complete_connections, LG)
    assert.equal(lgResult.lost, 0)
    assert.equal(lgResult.events, EVENTS * LG, 'no event twice')
    assert.equal(lgResult.in_order_violations, 0)
    assert.equal(lgResult.protocol_errors, 0, 'chunk framing intact up to the end')
    // ... and each stream ended properly.
    assert.deepEqual(sampleBad, [], 'sample clients: all events in order, then a proper end')
    assert.deepEqual(after.reasons, { shutdown: n }, 'every disconnect is a shutdown')
    // close() did not have to cut anyone off.
    assert.ok(closed.closeMs < CLOSE_TIMEOUT_MS, `close() took ${closed.closeMs} ms (closeTimeoutMs ${CLOSE_TIMEOUT_MS})`)
    assert.equal(after.hub.connections, 0)
    // Every fd is closed: the clients', and the hub's own (I/O loops) and the
    // listening socket's, back to the count before the Hub was made.
    assert.equal(after.fds, server.fdsBefore, 'fds back to the level before the hub existed')
  })
}
