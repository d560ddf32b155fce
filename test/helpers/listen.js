'use strict'
// A node:http server on 127.0.0.1:0 for one test, closed after it (every
// connection too, bounded): listenLoopback(defer, server) -> port, with
// defer from cleanup(t) (wait.js).

const { within } = require('./wait')

async function listenLoopback (defer, server) {
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, resolve)
  })
  defer(() => within(new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  }), 5000, 'server.close()'), 'server.close()')
  return server.address().port
}

module.exports = { listenLoopback }
