'use strict'
// The storm scenario's takeover row (bench/scenarios/storm.js): sse-fanout as
// node-server.js's native server runs it, node:http accepting and parsing
// every request, then hub.accept() taking the socket over. Node's defaults
// everywhere (listen backlog 511).
//
//   GET /events?topics=a,b   an SSE stream on those topics; the control routes
//                            of servers/storm-common.js on the same port
//
// Usage: node storm-takeover.js [port]; prints "LISTENING <port> <port>" (the
// control port, then the stream port: the same here).
const http = require('node:http')
const { Hub } = require('../..')
const { control, nodeHandler, topicsOf } = require('./storm-common')

const port = Number(process.argv[2] || 0)
// Every load-generator connection comes from 127.0.0.1 and a run holds up to
// 10k of them: no per-address limit (as node-server.js).
// The history (default bounds) replays the storm's first event after each
// stream's Last-Event-ID.
const hub = new Hub({ heartbeatMs: 0, maxConnectionsPerIp: 0, maxConnections: 1 << 21, maxPendingCommands: 0, maxPendingBytes: 0, history: true })

const ctl = control({ publish: (data) => hub.publish('all', data), count: () => hub.stats().connections })
const controlRoutes = nodeHandler(ctl)

const server = http.createServer((req, res) => {
  if (!req.url.startsWith('/events')) {
    controlRoutes(req, res)
    return
  }
  hub.accept(req, res, { topics: topicsOf(new URL(req.url, 'http://x').searchParams) })
})
server.keepAliveTimeout = 60000
server.maxConnections = 20000
server.listen(port, '127.0.0.1', () => {
  const { port } = server.address()
  process.stdout.write(`LISTENING ${port} ${port}\n`)
})
process.on('SIGTERM', async () => {
  ctl.stop()
  server.close()
  await hub.close()
  process.exit(0)
})
