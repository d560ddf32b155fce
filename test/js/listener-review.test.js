'use strict'
// Adversarial review of the native listener (hub.listen, issue 17): each test
// is a problem found by attacking it over real sockets, and fails until the
// listener is fixed. Bounded: every wait has a timeout, every hook that is
// left pending is answered in cleanup.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Hub } = require('../..')
const { rawConnect } = require('../helpers/raw-http')
const { startListener, GET } = require('../helpers/native-listener')
const { cleanup, waitFor } = require('../helpers/wait')
const fs = require('node:fs')

// CPU time (ms) of this process's threads other than the JS thread: the I/O
// threads, where the acceptors parse (plus V8's and libuv's helpers).
function offMainCpuMs () {
  let ticks = 0
  for (const tid of fs.readdirSync('/proc/self/task')) {
    if (Number(tid) === process.pid) continue
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'latin1')
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(f[11]) + Number(f[12]) // utime, stime
    } catch {}
  }
  return ticks * 10
}

const start = startListener

// An authorize hook whose answers the test gives (or cleanup gives: 403).
function heldHook (defer) {
  const held = []
  defer(() => { for (const h of held.splice(0)) h.resolve({ status: 403 }) }, 'answer the held hooks')
  const authorize = (req) => new Promise((resolve) => held.push({ req, resolve }))
  return { held, authorize }
}

test('authorize: a client that hangs up while its hook is pending holds its per-IP slot only until authorizeTimeoutMs', async (t) => {
  // While the hook decides, nothing watches the socket (docs/listener.md,
  // "Budgets"): a client that gives up still counts for its address, but only
  // until the request is answered, at authorizeTimeoutMs at the latest.
  const defer = cleanup(t)
  const { held, authorize } = heldHook(defer)
  const hub = new Hub({ threads: 1 })
  defer(() => hub.close(), 'hub.close()')
  const listener = await hub.listen({ port: 0, maxConnectionsPerIp: 2, authorize, authorizeTimeoutMs: 300 })
  for (let i = 0; i < 2; i++) {
    const c = await rawConnect(listener.port)
    await c.send(GET('/events?topics=a'))
    await waitFor(() => held.length === i + 1, 5000, 'the hook asked')
    c.close()
  }
  await waitFor(() => listener.stats().authorizeTimeouts === 2, 5000, 'both requests answered by the deadline')
  await waitFor(() => listener.stats().addresses === 0, 5000, 'their slots given back')
  const next = await rawConnect(listener.port)
  t.after(() => next.close())
  await next.send(GET('/events?topics=a'))
  await waitFor(() => held.length === 3 || next.closed, 5000, 'the third request asked or refused')
  assert.equal(held.length, 3, 'the third request reached the hook: the two clients are gone')
  assert.equal(listener.stats().refusedPerIp, 0)
})

test('authorize: a hook that never answers does not hold the connection forever (a deadline answers it)', async (t) => {
  // The header timeout ends when the head is complete; nothing bounds the wait
  // for the hook after that. Expected: some deadline (headerTimeoutMs, or an
  // authorizeTimeoutMs) answers 503/504 and frees the fd and the slot.
  const defer = cleanup(t)
  const { held, authorize } = heldHook(defer)
  const hub = new Hub({ threads: 1 })
  defer(() => hub.close(), 'hub.close()')
  const listener = await hub.listen({ port: 0, headerTimeoutMs: 200, authorize, authorizeTimeoutMs: 300 })
  const c = await rawConnect(listener.port)
  t.after(() => c.close())
  await c.send(GET('/events?topics=a'))
  await waitFor(() => held.length === 1, 5000, 'the hook asked')
  await waitFor(() => c.closed || c.heads().length > 0, 3000, 'an answer within 10 x headerTimeoutMs').catch(() => {})
  assert.ok(c.closed || c.heads().length > 0, 'the request waiting for a hook that never answers is answered or closed')
  assert.equal(c.heads()[0].status, 503)
  assert.equal(JSON.parse(c.heads()[0].body).error, 'ERR_SSE_AUTHORIZE')
  assert.equal(listener.stats().authorizing, 0)
})

test('HEAD with an authorize hook: no native 200 (405), since only the hook may grant the stream', async (t) => {
  // handle() answered HEAD natively before the authorize step: a refused
  // client got a 200 stream head (and the CORS grant) the GET would not get.
  let asked = 0
  const { port } = await start(t, {}, {
    authorize () { asked++; return { status: 401, message: 'no token' } }
  })
  const c = await rawConnect(port)
  t.after(() => c.close())
  await c.send('HEAD /events?topics=private HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await c.waitHeads(1)
  assert.equal(c.heads()[0].status, 405, 'HEAD is not granted when GET would be refused')
  assert.equal(c.heads()[0].headers.allow, 'GET, OPTIONS')
  assert.equal(asked, 0)
})

test('HEAD with Connection: close: the answer says close (and the connection closes)', async (t) => {
  const { port } = await start(t)
  const c = await rawConnect(port)
  t.after(() => c.close())
  await c.send('HEAD /events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
  await c.waitHeads(1)
  await c.waitClosed()
  assert.equal(c.heads()[0].headers.connection, 'close', 'a response that closes says "connection: close"')
})

test('the 100th request on a keep-alive connection is answered with "connection: close" when the server closes after it', async (t) => {
  const { port } = await start(t)
  const c = await rawConnect(port)
  t.after(() => c.close())
  const options = 'OPTIONS /events HTTP/1.1\r\nHost: x\r\n\r\n'
  for (let i = 0; i < 100; i++) {
    await c.send(options)
    await c.waitHeads(i + 1)
  }
  await c.waitClosed()
  const last = c.heads()[99]
  assert.equal(last.headers.connection, 'close', 'the last answer before the close says so')
})

test('CORS: credentials need named origins: "*" with credentials is refused, and Origin: null is never granted', async (t) => {
  // corsFor() turned "*" with credentials into echoing whatever Origin came,
  // with access-control-allow-credentials: true: any site could read the
  // user's stream with their cookies.
  const { hub, port } = await start(t, {}, { cors: { origin: 'https://app.example', credentials: true } })
  await assert.rejects(hub.listen({ port: 0, cors: { credentials: true } }), /not '\*'.*credentials|credentials.*options\.cors\.origin/)
  await assert.rejects(hub.listen({ port: 0, cors: { origin: ['https://a.example', '*'], credentials: true } }), /options\.cors\.origin/)
  const c = await rawConnect(port)
  t.after(() => c.close())
  await c.send('OPTIONS /events HTTP/1.1\r\nHost: x\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: GET\r\n\r\n' +
    GET('/events?topics=a', 'Origin: null\r\nConnection: close\r\n'))
  await c.waitHeads(2)
  const [pre, stream] = c.heads()
  assert.equal(pre.headers['access-control-allow-origin'], undefined, 'a preflight from another site is not granted')
  assert.equal(stream.headers['access-control-allow-origin'], undefined, 'Origin: null is not granted')
  const ok = await rawConnect(port)
  t.after(() => ok.close())
  await ok.send(GET('/events?topics=a', 'Origin: https://app.example\r\n'))
  await ok.waitHeads(1)
  assert.equal(ok.heads()[0].headers['access-control-allow-origin'], 'https://app.example')
  assert.equal(ok.heads()[0].headers['access-control-allow-credentials'], 'true')
})

test('authorize: repeated Cookie fields reach the hook joined with "; " and a second Authorization is dropped, as in node:http', async (t) => {
  // requestObject() joins every repeated field with ", ": a cookie parser then
  // reads "s=abc, theme=dark" as one cookie, and "Bearer a, Bearer b" is what
  // hub.accept() behind node:http never shows (it keeps the first).
  const defer = cleanup(t)
  const { held, authorize } = heldHook(defer)
  const hub = new Hub({ threads: 1 })
  defer(() => hub.close(), 'hub.close()')
  const listener = await hub.listen({ port: 0, authorize })
  const c = await rawConnect(listener.port)
  t.after(() => c.close())
  await c.send(GET('/events', 'Cookie: s=abc\r\nCookie: theme=dark\r\nAuthorization: Bearer first\r\nAuthorization: Bearer second\r\n'))
  await waitFor(() => held.length === 1, 5000, 'the hook asked')
  assert.equal(held[0].req.headers.cookie, 's=abc; theme=dark')
  assert.equal(held[0].req.headers.authorization, 'Bearer first')
})

test('a head sent in small pieces costs the I/O thread in proportion to its size (no rescan from byte 0 per read)', async (t) => {
  // parseBuffered() ran checkPartial() over the whole buffer after every read
  // that did not complete the head: n reads of a head of size S scanned about
  // n*S/2 bytes. Linear parsing: a head 4x as long, in 4x as many pieces,
  // costs about 4x (the syscalls); quadratic would be about 16x.
  const { listener, port } = await start(t, { threads: 1 }, { maxHeaderBytes: 65536, maxHeaders: 256 })
  const headOf = (n) => {
    const lines = []
    for (let i = 0; i < n; i++) lines.push(`X-Pad-${i}: ${'v'.repeat(240)}\r\n`)
    return GET('/nowhere', lines.join('')) // 404
  }
  async function cost (head, clients) {
    const before = offMainCpuMs()
    const conns = await Promise.all(Array.from({ length: clients }, () => rawConnect(port)))
    await Promise.all(conns.map((c) => c.send(head, { split: 64, delayMs: 1 })))
    await Promise.all(conns.map((c) => c.waitHeads(1, 30000)))
    for (const c of conns) c.close()
    return offMainCpuMs() - before
  }
  const small = await cost(headOf(62), 8) // about 16 KiB
  const large = await cost(headOf(250), 8) // about 63 KiB
  assert.equal(listener.stats().badRequests, 16)
  assert.ok(large <= 8 * small + 60, `the I/O thread spent ${large} ms on 8 heads of 63 KiB and ${small} ms on 8 of 16 KiB, both in 64-byte pieces`)
})

test('per-IP: a stream refused by the hub (503, maxConnections) still counts for its address while its answer lingers', async (t) => {
  // Admission::admit() moves the IpTicket into Dispatcher::adopt(); on a
  // refusal the Command holding it is destroyed there, so the slot is given
  // back while the 503 is still being written and lingered (up to
  // headerTimeoutMs + 2 s): past maxConnections one address holds any number
  // of connections.
  const { listener, port } = await start(t, { maxConnections: 1 }, { maxConnectionsPerIp: 2 })
  const a = await rawConnect(port)
  t.after(() => a.close())
  await a.send(GET('/events?topics=a'))
  await a.waitHeads(1)
  assert.equal(a.heads()[0].status, 200)
  const b = await rawConnect(port, { allowHalfOpen: true }) // refused by the hub; this client does not hang up
  t.after(() => b.close())
  await b.send(GET('/events?topics=a'))
  await b.waitHeads(1)
  assert.equal(b.heads()[0].status, 503)
  const c = await rawConnect(port)
  t.after(() => c.close())
  await c.send(GET('/events?topics=a'))
  await c.waitHeads(1)
  assert.equal(c.heads()[0].status, 429, 'two connections of this address are open (a streaming, b lingering)')
  assert.equal(listener.stats().addresses, 1)
})

test('maxPendingPerThread bounds the requests waiting for the JS thread, and stats().pending counts them', async (t) => {
  // core.hpp documents maxPendingPerThread as "requests being read or waiting
  // for JS", but handOver() untracks a request as it leaves for the Channel:
  // while the event loop is busy the acceptor keeps accepting, every request
  // (fd, ticket, with authorize its whole head) queues in the Channel with no
  // bound, and stats().pending (which adds queue_, not the Channel's queued)
  // reads 0.
  const { spawn } = require('node:child_process')
  const { listener, port } = await start(t, { threads: 1 }, { maxPendingPerThread: 4, maxConnectionsPerIp: 0 })
  const child = spawn(process.execPath, ['-e', `
    const net = require('node:net')
    for (let i = 0; i < 100; i++) {
      const s = net.connect(${port}, '127.0.0.1', () => s.write('GET /events?topics=a HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n'))
      s.on('error', () => {})
    }
    setTimeout(() => process.exit(0), 5000)
  `], { stdio: 'ignore' })
  t.after(() => child.kill())
  // The JS thread busy (a long synchronous handler) while the clients come.
  const end = Date.now() + 2500
  while (Date.now() < end) { /* blocked */ }
  const s = listener.stats()
  const waiting = s.accepted - s.streams - s.refused - s.badRequests - s.refusedPerIp
  assert.ok(waiting <= 4, `at most maxPendingPerThread requests wait for JS (${waiting} of ${s.accepted} accepted)`)
  assert.equal(s.pending, waiting, 'stats().pending counts the requests waiting for JS')
})
