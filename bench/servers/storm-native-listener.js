'use strict'
// The storm scenario's native-listener row (bench/scenarios/storm.js):
// sse-fanout's native front door (issue 17), hub.listen(): the hub's I/O
// threads accept and parse the stream requests themselves, no JS object per
// connection. The control routes of servers/storm-common.js are on a node:http
// server of their own (as the demo keeps /publish and /stats on PORT).
//
//   GET <stream port>/events?topics=a,b   an SSE stream on those topics
//
// Usage: node storm-native-listener.js [control port]; prints
// "LISTENING <control port> <stream port>". Where the hub has no listen()
// (a build before issue 17), it prints "UNAVAILABLE <why>" and exits 2.
const http = require('node:http')
const { Hub } = require('../..')
const { control, nodeHandler } = require('./storm-common')

const port = Number(process.argv[2] || 0)
// Every load-generator connection comes from 127.0.0.1 and a run holds up to
// 10k of them: no per-address limit (as node-server.js).
// The history (default bounds) replays the storm's first event after each
// stream's Last-Event-ID.
const hub = new Hub({ heartbeatMs: 0, maxConnectionsPerIp: 0, maxConnections: 1 << 21, maxPendingCommands: 0, maxPendingBytes: 0, history: true })

async function main () {
  if (typeof hub.listen !== 'function') {
    process.stdout.write('UNAVAILABLE this sse-fanout has no hub.listen() (the native listener of issue 17): build the addon from a tree that has it\n')
    await hub.close()
    process.exit(2)
  }
  // --storm-token: every stream must carry a JWT the I/O threads verify
  // (STORM_TOKEN_ALG, STORM_TOKEN_KEY: the secret or public key PEM).
  const token = process.env.STORM_TOKEN_ALG ? { algorithm: process.env.STORM_TOKEN_ALG, key: process.env.STORM_TOKEN_KEY } : undefined
  const listener = await hub.listen({ port: 0, host: '127.0.0.1', path: '/events', topicsParam: 'topics', maxConnectionsPerIp: 0, token })
  const ctl = control({ publish: (data) => hub.publish('all', data), count: () => hub.stats().connections })
  const server = http.createServer(nodeHandler(ctl))
  server.listen(port, '127.0.0.1', () => {
    process.stdout.write(`LISTENING ${server.address().port} ${listener.port}\n`)
  })
  process.on('SIGTERM', async () => {
    ctl.stop()
    server.close()
    await listener.close()
    await hub.close()
    process.exit(0)
  })
}

main().catch((err) => {
  process.stdout.write(`UNAVAILABLE hub.listen() failed: ${err.message}\n`)
  process.exit(2)
})
