'use strict'
// A child process for test/js/hub-accept.test.js: serves one stream, publishes,
// then calls process.exit() with the stream still open. No loop turn follows
// that call; the hub must still end the stream properly.
//   node exit-child.js <transport: auto|js>
// Prints the port as its first line; the parent connects.

const http = require('node:http')
const { Hub } = require('../..')

const hub = new Hub({ threads: 1, heartbeatMs: 0, transport: process.argv[2] || 'auto' })
const server = http.createServer((req, res) => {
  hub.accept(req, res, { topics: ['t'] })
  for (let i = 0; i < 3; i++) hub.publish('t', `before ${i}`)
  // Long enough for the JS transport to write them too.
  setTimeout(() => {
    hub.publish('t', 'last')
    process.exit(0)
  }, 200)
})
server.listen(0, '127.0.0.1', () => process.stdout.write(`${server.address().port}\n`))
