'use strict'
// The per-test fixture of the Hub tests: a Hub, a server on 127.0.0.1:0 that
// hands it its requests and, if asked, the client process; all closed after
// the test (clients, then server, then hub).
//
//   const { hub, server, port, clients } = await startHub(t, { hub: { threads: 1 }, clients: true })
//
// The server is one of three kinds:
//   (default)          startServer() of server.js: the request's query string
//                      says tag, topics, user and retry; `server` records
//                      conns (tag -> Connection) and errors, conn(tag) throws
//                      for a tag never accepted.
//   accept: options    accepts every request with hub.accept(req, res,
//                      options); `conns` lists the Connections, `errors` what
//                      accept() threw (the request is answered with
//                      err.statusCode or 400 and the code).
//   handler: (hub) => listener   a request listener of the test's own (a
//                      function or an Express app).
// With accept or handler, `server` is the node server itself; createServer
// (listener) => server makes another kind than node:http (https, HTTP/2).
//
// Options: hub (the Hub's options), tls and beforeAccept (default kind, as
// startServer takes them), clients (true: start the client process of
// clients.js), disconnects (true: record the hub's 'disconnect' events from
// the start, as recordDisconnects() does), defer (an existing cleanup(t) to
// register on, where the test set up something before the hub).
// Returns { hub, server, port, url, conns, errors, clients, disconnects, defer }.

const http = require('node:http')
const tls = require('node:tls')
const { Hub } = require('../..')
const { Clients } = require('./clients')
const { startServer, recordDisconnects } = require('./server')
const { cleanup, within } = require('./wait')

async function startHub (t, options = {}) {
  const defer = options.defer || cleanup(t)
  const hub = new Hub(options.hub)
  defer(() => hub.close(), 'hub.close()')
  const disconnects = options.disconnects ? recordDisconnects(hub) : undefined

  let server, conns, errors, port
  if (options.accept === undefined && options.handler === undefined) {
    server = await startServer(hub, { tls: options.tls, beforeAccept: options.beforeAccept })
    defer(() => server.close(), 'server.close()')
    ;({ port, conns, errors } = server)
  } else {
    let listener = options.handler && options.handler(hub)
    if (options.accept !== undefined) {
      const accept = options.accept
      conns = []
      errors = []
      listener = (req, res) => {
        try {
          conns.push(hub.accept(req, res, accept))
        } catch (err) {
          errors.push(err)
          res.statusCode = err.statusCode || 400
          res.end(String(err.code))
        }
      }
    }
    server = (options.createServer || http.createServer)(listener)
    // Servers without closeAllConnections (HTTP/2): their sockets are cut by hand.
    const sockets = new Set()
    if (typeof server.closeAllConnections !== 'function') {
      server.on('connection', (socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)) })
    }
    await new Promise((resolve, reject) => {
      server.once('error', reject)
      // 1000 clients connect at once: keep the accept queue deep enough.
      server.listen({ host: '127.0.0.1', port: 0, backlog: 2048 }, resolve)
    })
    port = server.address().port
    defer(() => {
      if (!server.listening) return
      return within(new Promise((resolve) => {
        server.close(() => resolve())
        if (typeof server.closeAllConnections === 'function') server.closeAllConnections()
        else for (const socket of sockets) socket.destroy()
      }), 5000, 'server.close()')
    }, 'server.close()')
  }

  let clients
  if (options.clients) {
    clients = await Clients.start()
    defer(() => clients.stop(), 'clients.stop()')
  }
  const scheme = server instanceof tls.Server || server.server instanceof tls.Server ? 'https' : 'http'
  return { hub, server, port, url: `${scheme}://127.0.0.1:${port}`, conns, errors, clients, disconnects, defer }
}

module.exports = { startHub }
