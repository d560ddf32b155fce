'use strict'
// The storm scenario's uws row (bench/scenarios/storm.js): uWebSockets.js,
// native HTTP accepting and parsing, and a JS loop writing the SSE frames (a
// Set of responses per topic, each write corked, as uWS wants writes made
// outside its own callbacks). The package is bench/package.json's
// @trufflesuite/uws-js-unofficial (uWS.js v20.30 with binaries for Node 16 to
// 20 on glibc 2.36; @btc-vision/uwebsockets.js needs glibc 2.38). That
// package falls back to a JS implementation on ws when its binary does not
// load: the binary is loaded here directly, so the row is uWS or fails. The
// events of "all" are kept and replayed after a stream's Last-Event-ID
// (servers/storm-common.js's makeHistory()).
//
//   GET /events?topics=a,b   an SSE stream on those topics (chunked: uWS's
//                            res.write; the missed events first, or else a
//                            comment ":", which sends the head at once); the control routes of
//                            servers/storm-common.js on the same port
//
// Usage: node storm-uws.js [port]; prints "LISTENING <port> <port>", or
// "UNAVAILABLE <why>" and exits 2.
const { control, makeHistory, topicsOf } = require('./storm-common')

const binary = `@trufflesuite/uws-js-unofficial/binaries/uws_${process.platform}_${process.arch}_${process.versions.modules}.node`
let uws
try {
  uws = require(binary)
} catch (err) {
  process.stdout.write(`UNAVAILABLE uWebSockets.js does not load here (${binary}: ${err.message.split('\n')[0]}); cd bench && npm install\n`)
  process.exit(2)
}

const port = Number(process.argv[2] || 0)
const topics = new Map() // topic -> Set of responses
const history = makeHistory()
let connections = 0

function publish (data) {
  const { id, frame } = history.add(data)
  const set = topics.get('all')
  if (set) for (const res of set) res.cork(() => res.write(frame))
  return id
}

const ctl = control({ publish, count: () => connections })
const app = uws.App()

app.get('/events', (res, req) => {
  const wanted = topicsOf(new URLSearchParams(req.getQuery() || ''))
  const missed = wanted.includes('all') ? history.after(req.getHeader('last-event-id')) : ''
  connections++
  res.onAborted(() => {
    connections--
    for (const t of wanted) topics.get(t)?.delete(res)
  })
  for (const t of wanted) {
    if (!topics.has(t)) topics.set(t, new Set())
    topics.get(t).add(res)
  }
  res.writeStatus('200 OK').writeHeader('content-type', 'text/event-stream').writeHeader('cache-control', 'no-cache')
  res.write(missed || ':\n\n')
})

app.any('/*', (res, req) => {
  const method = req.getMethod().toUpperCase()
  const query = new URLSearchParams(req.getQuery() || '')
  if (req.getUrl() === '/publish') {
    // The burst runs after uWS's callback, from the event loop as the ticker
    // does: writes to other responses made inside it, nested in this
    // response's cork, cost about 27 µs each here instead of 10 µs.
    res.writeStatus('204 No Content').end()
    setImmediate(() => ctl.handle(method, '/publish', query))
    return
  }
  const answer = ctl.handle(method, req.getUrl(), query)
  if (answer === null) {
    res.writeStatus('404 Not Found').end()
    return
  }
  if (answer.body === null) {
    res.writeStatus(`${answer.status} No Content`).end()
    return
  }
  res.writeStatus(`${answer.status} OK`).writeHeader('content-type', 'application/json').end(JSON.stringify(answer.body))
})

let listenSocket = null
app.listen('127.0.0.1', port, (socket) => {
  if (!socket) {
    process.stdout.write(`UNAVAILABLE uWebSockets.js could not listen on 127.0.0.1:${port}\n`)
    process.exit(2)
  }
  listenSocket = socket
  const bound = uws.us_socket_local_port(socket)
  process.stdout.write(`LISTENING ${bound} ${bound}\n`)
})
process.on('SIGTERM', () => {
  ctl.stop()
  if (listenSocket) uws.us_listen_socket_close(listenSocket)
  for (const set of topics.values()) for (const res of set) res.cork(() => res.end())
  process.exit(0)
})
