'use strict'
// Fault test: fd reuse. Two users, alice and bob, connect and disconnect in
// rapid cycles (8 at a time), each subscribed to private/<user> and to
// "shared"; meanwhile the server publishes, every 2 ms, to private/alice,
// private/bob, to "shared" for alice only (users: ['alice']) and a broadcast
// for bob only. Closed connections free their fd numbers, which the next
// accepts reuse at once (the welcome event names the server's fd, so the
// test counts how often a number was reused, and across users). Checked:
//   - 0 bytes of one user's events on the other's socket (parsed events and
//     a raw search for the other user's marker);
//   - each connection's first event is its own welcome (its own tag: a frame
//     for a connection never lands on its fd's next owner);
//   - kicked streams end properly (last chunk / FIN), every cycle completes;
//   - afterwards: no connection left in the registry, the server's fd count
//     back to where it was.
//
// Scale: full = 10k cycles per transport; ci = 1k. Native and JS transports.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { StressServer } = require('../helpers/stress-server')
const { runFdReuseClients } = require('../helpers/stress-fdreuse-clients')
const { cleanup, waitFor } = require('../helpers/wait')
const { SCALE, scaled, record, fig, machineLoad } = require('../helpers/stress-common')

const CYCLES = scaled({ ci: 1000, full: 10000 })
const USERS = ['alice', 'bob']

for (const transport of ['auto', 'js']) {
  test(`fd reuse [${transport}]: ${CYCLES} connect/disconnect/publish cycles, two users with private topics (scale ${SCALE})`, async (t) => {
    const defer = cleanup(t, 20000)
    const server = await StressServer.start({ transport, heartbeatMs: 0 })
    defer(() => server.stop(), 'server.stop()')
    const fd0 = (await server.stats()).fds

    const publishing = server.run({
      id: 'pub',
      tickMs: 2,
      maxMs: 10 * 60 * 1000,
      items: [
        { kind: 'publish', topic: 'private/alice', prefix: 'owner=alice', bytes: 96 },
        { kind: 'publish', topic: 'private/bob', prefix: 'owner=bob', bytes: 96 },
        { kind: 'publish', topic: 'shared', users: ['alice'], prefix: 'owner=alice', bytes: 96 },
        { kind: 'broadcast', users: ['bob'], prefix: 'owner=bob', bytes: 96 }
      ]
    })
    let report
    try {
      report = await runFdReuseClients({
        port: server.port,
        cycles: CYCLES,
        concurrency: 8,
        users: USERS,
        holdMsMax: 15, // each connection lives 0-15 ms after its welcome
        kickEvery: 10, // every 10th is ended by hub.kick() instead
        http10Every: 7, // every 7th uses HTTP/1.0 (no chunking, ends by close)
        timeoutMs: 10000
      })
    } finally {
      await server.stopRun('pub')
    }
    const pub = await publishing
    await waitFor(async () => (await server.stats()).hub.connections === 0, 15000, 'every connection gone')
    let fds = 0
    await waitFor(async () => { fds = (await server.stats()).fds; return fds === fd0 }, 5000, () => `fds back to ${fd0} (now ${fds})`).catch(() => {})
    const s = await server.stats()

    const figures = {
      transport,
      cycles: report.cycles,
      published: pub.total,
      eventsReceived: report.events,
      connectionsWithEvents: report.connectionsWithEvents,
      distinctServerFds: report.distinctServerFds,
      fdReuses: report.fdReuses,
      crossUserFdReuses: report.crossUserFdReuses,
      leakedBytes: fig(report.leakedBytes, 0),
      leakedEvents: fig(report.leakedEvents, 0),
      wrongWelcome: fig(report.wrongWelcome, 0),
      failedCycles: fig(report.failed, 0),
      kickedEndedProperly: fig(report.kickedEndedProperly, report.kicked),
      fdDrift: fig(s.fds - fd0, 0),
      reasons: s.reasons,
      ms: report.ms
    }
    record('fd-reuse', t.name, figures)
    t.diagnostic(JSON.stringify({ ...figures, ...machineLoad() }))

    assert.equal(report.cycles, CYCLES)
    // The point of the test: not one byte of the other user's stream.
    assert.equal(report.leakedBytes, 0, `leaked bytes; first failures: ${JSON.stringify(report.failures)}`)
    assert.equal(report.leakedEvents, 0)
    assert.equal(report.wrongWelcome, 0, 'each connection got its own welcome')
    assert.equal(report.welcomeNotFirst, 0, 'the welcome came first (nothing of an earlier owner before it)')
    assert.equal(report.failed, 0, `failed cycles: ${JSON.stringify(report.failures)}`)
    assert.equal(report.kickedEndedProperly, report.kicked, 'kicked streams ended properly')
    // The test exercised what it claims: fds were reused, across users, and
    // connections received events while others churned around them.
    assert.ok(report.fdReuses >= CYCLES / 2, `fd numbers reused ${report.fdReuses} times in ${CYCLES} cycles`)
    assert.ok(report.crossUserFdReuses >= CYCLES / 10, `fd numbers passed from one user to the other ${report.crossUserFdReuses} times`)
    assert.ok(report.connectionsWithEvents >= CYCLES / 4, `${report.connectionsWithEvents} connections received events`)
    assert.ok(report.eventsByUser.alice > 0 && report.eventsByUser.bob > 0)
    // Server side: nothing left behind.
    assert.equal(s.hub.connections, 0)
    assert.equal(s.hub.subscriptions, 0)
    assert.equal(s.fds, fd0, 'server fd count back to its level')
    const reasons = s.reasons
    assert.equal((reasons.client || 0) + (reasons.kicked || 0) + (reasons.error || 0), CYCLES, `disconnects ${JSON.stringify(reasons)}`)
    assert.equal(reasons.kicked, report.kicked)
    assert.ok(server.alive)
  })
}

// Regression: on the JS transport a kicked HTTP/1.1 stream used to stay open
// as an idle keep-alive connection until keepAliveTimeout; it now closes
// right after its terminating chunk, as the native transport does.
test('kick [js]: an HTTP/1.1 stream is closed right after its terminating chunk', async (t) => {
  const http = require('node:http')
  const net = require('node:net')
  const { Hub } = require('../..')
  const defer = cleanup(t)
  const hub = new Hub({ transport: 'js', heartbeatMs: 0 })
  defer(() => hub.close(), 'hub.close()')
  const server = http.createServer((req, res) => {
    const c = hub.accept(req, res, {})
    hub.send(c.id, 'x')
    setTimeout(() => hub.kick(c.id), 20)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  defer(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }), 'server.close()')
  const socket = net.connect(server.address().port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))
  defer(() => socket.destroy(), 'socket')
  let body = ''
  let lastChunkAt = 0
  const t0 = Date.now()
  socket.on('data', (d) => { body += d; if (body.endsWith('\r\n0\r\n\r\n')) lastChunkAt = Date.now() - t0 })
  const finAt = await new Promise((resolve) => {
    socket.on('end', () => resolve(Date.now() - t0))
    setTimeout(() => resolve(Infinity), 2000)
  })
  assert.ok(lastChunkAt > 0, 'the terminating chunk arrived')
  assert.ok(finAt - lastChunkAt < 500, `FIN ${finAt} ms after the start, the last chunk at ${lastChunkAt} ms`)
})
