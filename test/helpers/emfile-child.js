'use strict'
// A child process for test/js/hub-accept.test.js, started under a low fd limit
// (ulimit -n): a request arrives, every free fd is then taken, and accept()
// must refuse the stream (it cannot duplicate the socket) instead of quietly
// serving it from JS. Prints one JSON line with what happened.

const fs = require('node:fs')
const http = require('node:http')
const { Hub } = require('../..')

async function main () {
  const hub = new Hub({ threads: 1, heartbeatMs: 0 })
  const out = { refusals: [], accepted: [] }
  let starve = true
  const server = http.createServer((req, res) => {
    const fillers = []
    if (starve) {
      starve = false
      try {
        for (;;) fillers.push(fs.openSync('/dev/null', 'r'))
      } catch (err) {
        out.filled = err.code
      }
    }
    try {
      out.accepted.push(hub.accept(req, res, { topics: ['t'] }).transport)
    } catch (err) {
      out.refusals.push({ code: err.code, statusCode: err.statusCode, message: err.message })
      res.statusCode = err.statusCode || 500
      res.end()
    }
    for (const fd of fillers) fs.closeSync(fd)
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const get = () => new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: server.address().port, path: '/', agent: false }, (res) => {
      resolve(res.statusCode)
      res.destroy()
    }).on('error', reject)
  })
  out.statuses = [await get(), await get()]
  const s = hub.stats()
  out.stats = { connections: s.connections, outOfFds: s.outOfFds, js: s.js }
  await hub.close()
  server.close()
  process.stdout.write(JSON.stringify(out) + '\n')
}

main().catch((err) => {
  process.stdout.write(JSON.stringify({ failed: err.stack }) + '\n')
  process.exitCode = 1
})
