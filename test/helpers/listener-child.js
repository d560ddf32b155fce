'use strict'
// A child process for test/js/hub-listeners.test.js: a hub whose 'connect' and
// 'disconnect' listeners throw once, over real sockets. It catches what
// surfaces as uncaught exceptions, checks the hub's books after each step and
// prints them as one JSON line; it never calls process.exit(), so the parent
// also learns whether close() let the process end by itself.
//   node listener-child.js <transport: auto|js>

const http = require('node:http')
const { Hub } = require('../..')

const transport = process.argv[2] || 'auto'
const uncaught = []
process.on('uncaughtException', (err) => uncaught.push(err.message))

/** A stream from localAddress: { status, close } once the head arrived. */
function open (port, localAddress) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', localAddress, agent: false }, (res) => {
      res.resume()
      resolve({ status: res.statusCode, close: () => res.destroy() })
    })
    req.on('error', reject)
  })
}

async function waitFor (predicate, what) {
  const deadline = Date.now() + 5000
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

function books (hub) {
  const s = hub.stats()
  return { connections: s.connections, native: s.native, js: s.js, perIp: Object.fromEntries(hub._perIp), ipOf: hub._ipOf.size, count: hub._connections }
}

async function main () {
  const hub = new Hub({ threads: 1, maxConnectionsPerIp: 1, transport, heartbeatMs: 0 })
  const out = { steps: {}, connects: [], disconnects: [], acceptErrors: [] }
  let throwConnect = false
  let throwDisconnect = true
  hub.on('connect', (c) => {
    if (throwConnect) {
      throwConnect = false
      throw new Error('connect listener threw')
    }
  })
  hub.on('connect', (c) => out.connects.push(c.id))
  hub.on('disconnect', () => {
    if (throwDisconnect) {
      throwDisconnect = false
      throw new Error('disconnect listener threw')
    }
  })
  hub.on('disconnect', (d) => out.disconnects.push(d.reason))
  const ids = []
  const server = http.createServer((req, res) => {
    try {
      ids.push(hub.accept(req, res, { topics: ['t'] }).id)
    } catch (err) {
      out.acceptErrors.push(err.code || err.message)
      if (!res.headersSent) res.statusCode = err.statusCode || 500
      res.end()
    }
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = server.address().port

  const a = await open(port, '127.0.0.1')
  const b = await open(port, '127.0.0.2')
  await waitFor(() => ids.length === 2, 'two streams')
  // Both kicks reach the one I/O thread in one batch: their two disconnects
  // come back in one report batch, and the first listener call throws.
  hub.kick(ids[0])
  hub.kick(ids[1])
  await waitFor(() => hub.stats().connections === 0 && out.disconnects.length === 2, 'both disconnects')
  out.steps.afterDisconnects = books(hub)
  a.close()
  b.close()

  // The listener threw: both addresses must be free again.
  const a2 = await open(port, '127.0.0.1')
  const b2 = await open(port, '127.0.0.2')
  out.steps.reopened = [a2.status, b2.status]
  out.steps.afterReopen = books(hub)

  // A throwing 'connect' listener: accept() still returns the connection.
  throwConnect = true
  const c = await open(port, '127.0.0.3')
  out.steps.connectThrew = c.status
  await waitFor(() => ids.length === 5, 'the third stream')
  out.steps.afterConnectThrew = books(hub)
  const refused = await open(port, '127.0.0.3')
  out.steps.secondFromSameIp = refused.status

  await hub.close()
  out.steps.afterClose = books(hub)
  for (const s of [a2, b2, c]) s.close()
  server.close()
  out.uncaught = uncaught
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ failed: err.stack }) + '\n')
  process.exitCode = 1
})
