'use strict'
// The JS transport: TLS connections cannot be taken over; they are served by
// the JS transport (accept() says transport 'js') with the same results as the
// native one: the fan-out scenario, disconnects, kick and close. The same
// suite runs on plain HTTP with Hub({ transport: 'js' }).

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { Clients } = require('../helpers/clients')
const { startHub } = require('../helpers/fixture')
const { ssePath } = require('../helpers/server')
const { pathsFor, runScenario } = require('../helpers/scenario')
const { waitFor, fdCount, within, cleanup } = require('../helpers/wait')

let tmp
let tlsFiles
before(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sse-fanout-tls-'))
  const key = path.join(tmp, 'k')
  const cert = path.join(tmp, 'c')
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
    '-days', '1', '-keyout', key, '-out', cert], { stdio: 'ignore', timeout: 30000 })
  tlsFiles = { key: fs.readFileSync(key), cert: fs.readFileSync(cert) }
})
after(() => {
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
})

// Two ways to end up on the JS transport.
const VARIANTS = [
  { name: 'https (auto transport)', hubOptions: {}, tls: true },
  { name: 'plain http with transport: "js"', hubOptions: { transport: 'js' }, tls: false }
]

for (const variant of VARIANTS) {
  const tls = () => (variant.tls ? tlsFiles : undefined)

  test(`${variant.name}: 200 clients each receive exactly their events, in order`, async (t) => {
    const { hub, server, clients } = await startHub(t, { hub: { threads: 2, ...variant.hubOptions }, tls: tls(), clients: true })

    const N = 200
    await clients.open({ n: N, port: server.port, paths: pathsFor(0, N), tls: variant.tls, timeoutMs: 30000 })
    await runScenario({ hub, server, clients, n: N, transport: 'js' })
    const stats = hub.stats()
    assert.equal(stats.js, N)
    assert.equal(stats.native, 0)
    const [c] = await clients.report({ indices: [0] })
    assert.equal(c.status, 200)
    assert.equal(c.headers['content-type'], 'text/event-stream')
    assert.equal(c.headers['cache-control'], 'no-cache')
    assert.equal(c.headers['x-accel-buffering'], 'no')
    assert.equal(c.chunked, true)
  })

  test(`${variant.name}: disconnects, kick and close`, async (t) => {
    const defer = cleanup(t)
    const clients = await Clients.start()
    defer(() => clients.stop(), 'clients.stop()')
    // Before the hub (its I/O thread's loop holds fds) and the server exist.
    const baseline = fdCount()
    const { hub, server, disconnects } = await startHub(t, { defer, hub: { threads: 1, ...variant.hubOptions }, tls: tls(), disconnects: true })

    const N = 30
    const all = Array.from({ length: N }, (_, i) => i)
    await clients.open({ n: N, port: server.port, tls: variant.tls, paths: all.map((tag) => ssePath({ tag, topics: ['news'] })) })
    for (const conn of server.conns.values()) assert.equal(conn.transport, 'js')
    assert.equal(hub.stats().connections, N)

    // Clients going away: reason 'client', removed everywhere.
    const closed = await clients.close({ indices: [0, 1, 2, 3, 4] })
    const closedIds = closed.map((i) => server.conn(i).id)
    await waitFor(() => closedIds.every((id) => disconnects.byId.has(id)), 5000, 'disconnect events for closed clients')
    for (const id of closedIds) {
      assert.deepEqual(disconnects.byId.get(id), ['client'])
      assert.equal(hub.has(id), false)
      assert.throws(() => hub.send(id, 'x'), { code: 'ERR_SSE_UNKNOWN_CONNECTION' })
    }
    assert.equal(hub.stats().connections, N - 5)
    assert.equal(hub.stats().js, N - 5)

    // Kick: queued events first, then the end of the body; reason 'kicked'.
    hub.publish('news', 'one')
    hub.publish('news', 'two')
    const kickedId = server.conn(5).id
    hub.kick(kickedId)
    await clients.waitSummary((s) => s[5].ended, 5000, 'the kicked client to see the end of its stream')
    const [kicked] = await clients.report({ events: true, indices: [5] })
    assert.deepEqual(kicked.events.map((e) => e.data), ['one', 'two'])
    assert.equal(kicked.bytesAfterEnd, 0)
    assert.equal(kicked.framingError, null)
    await waitFor(() => disconnects.byId.has(kickedId), 5000, 'the kick disconnect event')
    assert.deepEqual(disconnects.byId.get(kickedId), ['kicked'])
    assert.equal(hub.stats().connections, N - 6)

    // close(): every remaining stream gets what was published, then its end.
    const rest = all.slice(6)
    for (let k = 0; k < 10; k++) hub.publish('news', `last ${k}`)
    await within(hub.close(), 10000, 'hub.close()')
    const report = await clients.report({ events: true, indices: rest })
    for (const c of report) {
      assert.deepEqual(c.events.map((e) => e.data), ['one', 'two', ...Array.from({ length: 10 }, (_, k) => `last ${k}`)],
        `client ${c.i} events`)
      assert.equal(c.ended, true, `client ${c.i} saw the end of its stream when close() resolved`)
      assert.equal(c.bytesAfterEnd, 0)
    }
    const shutdowns = disconnects.list.filter((ev) => ev.reason === 'shutdown')
    assert.deepEqual(shutdowns.map((ev) => ev.id).sort(), rest.map((tag) => server.conn(tag).id).sort())
    assert.equal(disconnects.list.length, N)
    assert.equal(hub.stats().connections, 0)
    assert.throws(() => hub.publish('news', 'late'), { code: 'ERR_SSE_CLOSED' })

    // The HTTP server then closes the (now idle) connections: EOF everywhere.
    await server.close()
    await clients.waitSummary((s) => all.every((i) => s[i].closed), 5000, 'every client to be closed')
    const final = await clients.report({ indices: rest })
    assert.ok(final.every((c) => c.eof && c.eofAfterEnd && !c.error), 'EOF after the end of the body')
    await waitFor(() => fdCount() === baseline, 5000, () => `fd count ${fdCount()} back to ${baseline}`)
  })
}
