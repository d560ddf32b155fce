'use strict'
// The storm scenario's node-http row (bench/scenarios/storm.js): what people
// write by hand, node:http with a Set of responses per topic and a res.write
// loop (as node-server.js's plain with --history: the events of "all" kept,
// replayed after a stream's Last-Event-ID). Node's defaults everywhere (listen
// backlog 511), as a user's server has them.
//
//   GET /events?topics=a,b   an SSE stream on those topics; the control routes
//                            of servers/storm-common.js on the same port
//
// Usage: node storm-node-http.js [port]; prints "LISTENING <port> <port>" (the
// control port, then the stream port: the same here).
const http = require('node:http')
const { control, nodeHandler, makeHistory, topicsOf } = require('./storm-common')

const port = Number(process.argv[2] || 0)
const topics = new Map() // topic -> Set of responses
const history = makeHistory()
let connections = 0

function publish (data) {
  const { id, frame } = history.add(data)
  const set = topics.get('all')
  if (set) for (const res of set) res.write(frame)
  return id
}

const ctl = control({ publish, count: () => connections })
const controlRoutes = nodeHandler(ctl)

const server = http.createServer((req, res) => {
  if (!req.url.startsWith('/events')) {
    controlRoutes(req, res)
    return
  }
  const wanted = topicsOf(new URL(req.url, 'http://x').searchParams)
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
  const missed = wanted.includes('all') ? history.after(req.headers['last-event-id']) : ''
  if (missed) res.write(missed)
  else res.flushHeaders()
  connections++
  for (const t of wanted) {
    if (!topics.has(t)) topics.set(t, new Set())
    topics.get(t).add(res)
  }
  res.on('close', () => {
    connections--
    for (const t of wanted) topics.get(t)?.delete(res)
  })
})
server.keepAliveTimeout = 60000
server.maxConnections = 20000
server.listen(port, '127.0.0.1', () => {
  const { port } = server.address()
  process.stdout.write(`LISTENING ${port} ${port}\n`)
})
process.on('SIGTERM', () => {
  ctl.stop()
  for (const set of topics.values()) for (const res of set) res.end()
  server.close()
  process.exit(0)
})
