'use strict'
// Runs inside a worker_threads Worker: a Hub that publishes without pause (each
// publish queues a flush() microtask), so that worker.terminate() lands while
// addon calls are running. The parent terminates it at a random moment.
const { parentPort } = require('node:worker_threads')
const { Hub } = require('../..')

const hub = new Hub({ threads: 1 })
let n = 0
function spin () {
  for (let i = 0; i < 50; i++) hub.publish('t', `event ${n++}`)
  hub.stats()
  setImmediate(spin)
}
parentPort.postMessage('spinning')
spin()
