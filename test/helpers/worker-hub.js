'use strict'
// Runs inside a worker_threads Worker: a Hub and an HTTP server on port 0,
// driven by messages from the parent thread.
//   parent -> worker: { cmd: 'publish', topic, data, options } | { cmd: 'stats' } | { cmd: 'close' }
//   worker -> parent: { type: 'listening', port } | { type: 'accepted', tag, id, transport }
//                     { type: 'stats', stats } | { type: 'closed', disconnects } | { type: 'error', message }

const { parentPort } = require('node:worker_threads')
const { Hub } = require('../..')
const { startServer } = require('./server')

async function main () {
  const hub = new Hub({ threads: 2 })
  const disconnects = []
  hub.on('disconnect', (ev) => disconnects.push(ev))
  hub.on('connect', () => {})
  const server = await startServer(hub)
  server.server.on('request', (req) => {
    const tag = Number(new URL(req.url, 'http://x').searchParams.get('tag'))
    const conn = server.conns.get(tag)
    if (conn) parentPort.postMessage({ type: 'accepted', tag, id: conn.id, transport: conn.transport })
  })
  parentPort.on('message', async (msg) => {
    try {
      if (msg.cmd === 'publish') {
        hub.publish(msg.topic, msg.data, msg.options)
      } else if (msg.cmd === 'stats') {
        const { threads, ...stats } = hub.stats()
        parentPort.postMessage({ type: 'stats', stats })
      } else if (msg.cmd === 'close') {
        await hub.close()
        await server.close()
        parentPort.postMessage({ type: 'closed', disconnects, connections: hub.stats().connections })
        parentPort.close() // nothing keeps the worker alive now: it exits
      }
    } catch (err) {
      parentPort.postMessage({ type: 'error', message: err.stack })
    }
  })
  parentPort.postMessage({ type: 'listening', port: server.port })
}

main().catch((err) => parentPort.postMessage({ type: 'error', message: err.stack }))
