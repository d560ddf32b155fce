'use strict'
// Helpers for tests that drive the official PocketBase SDK (`pocketbase/cjs`)
// against examples/pocketbase-server.js.
//
//   startPb(defer, options)   the example server on 127.0.0.1:0 (closed by defer)
//   sdk(defer, url, name)     an SDK client, with autocancellation off; its
//                             realtime connection is closed by defer. Each one
//                             subscribes to the custom topic 'barrier' on
//                             first use of barrier().
//   recorder(name)            a callback that keeps what it receives, and waits on it
//   barrier(realtime, clients)  publishes 'barrier' and waits until every client
//                             received it: whatever was sent to a client before the
//                             barrier has then reached it (one stream, in order), so
//                             "nothing more arrived" becomes a real assertion.

// On Node 20 the SDK needs an EventSource (eventsource@4; Node 22 has none either).
if (typeof globalThis.EventSource !== 'function') globalThis.EventSource = require('eventsource').EventSource

const PocketBase = require('pocketbase/cjs')
const { createServer } = require('../../examples/pocketbase-server')
const { waitFor } = require('./wait')

async function startPb (defer, options = {}, port = 0) {
  const server = createServer(options)
  defer(() => server.close(), 'pocketbase example server close()')
  const url = await server.listen(port, '127.0.0.1')
  return { server, url, realtime: server.realtime, port: server.app.server.address().port }
}

/** Closes an SDK client's realtime connection for good (no reconnect timers left). */
async function closeSdk (pb) {
  try {
    await pb.realtime.unsubscribe()
  } catch {
    // the server may be gone already: disconnect below does the rest
  }
  pb.realtime.disconnect() // clears the reconnect/connect timers and closes the EventSource
  pb.cancelAllRequests()
}

function sdk (defer, url, name = 'client') {
  const pb = new PocketBase(url)
  pb.autoCancellation(false) // several requests of one client may overlap in these tests
  pb.testName = name
  pb.barrierSeen = 0
  pb.barrierSubscribed = false
  defer(() => closeSdk(pb), `close SDK client ${name}`)
  return pb
}

/** A callback that records its events; wait(n) resolves once n have arrived. */
function recorder (name) {
  const events = []
  const fn = (e) => { events.push(e) }
  fn.events = events
  fn.wait = (n, timeoutMs = 5000) => waitFor(() => events.length >= n, timeoutMs,
    () => `${name}: ${n} events (got ${events.length}: ${JSON.stringify(events.map(brief))})`)
  /** [action, record.id] pairs, or another projection. */
  fn.map = (f = brief) => events.map(f)
  return fn
}

const brief = (e) => (e && e.action ? `${e.action}:${e.record && e.record.id}` : JSON.stringify(e))

let barrierSeq = 0

/** Subscribes clients to 'barrier' (once each). */
async function armBarrier (clients) {
  await Promise.all(clients.filter((pb) => !pb.barrierSubscribed).map(async (pb) => {
    pb.barrierSubscribed = true
    await pb.realtime.subscribe('barrier', (e) => { if (e.n > pb.barrierSeen) pb.barrierSeen = e.n })
  }))
}

async function barrier (realtime, clients, timeoutMs = 5000) {
  const n = ++barrierSeq
  realtime.publish('barrier', { n })
  await waitFor(() => clients.every((pb) => pb.barrierSeen >= n), timeoutMs,
    () => `barrier ${n} at ${clients.filter((pb) => pb.barrierSeen < n).map((pb) => pb.testName).join(', ')}`)
}

module.exports = { PocketBase, startPb, sdk, closeSdk, recorder, barrier, armBarrier, brief }
