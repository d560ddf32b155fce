'use strict'
// worker_threads: the addon works inside a Worker, a worker that closes its
// hub exits cleanly, and a worker terminated with connections open takes them
// down without harming the process.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const path = require('node:path')
const { Worker } = require('node:worker_threads')
const { Clients } = require('../helpers/clients')
const { startHub } = require('../helpers/fixture')
const { ssePath } = require('../helpers/server')
const { waitFor, fdCount, within, cleanup } = require('../helpers/wait')

const WORKER = path.join(__dirname, '..', 'helpers', 'worker-hub.js')

/** Starts the worker; resolves once its server listens. */
async function startWorker (defer) {
  const worker = new Worker(WORKER)
  const messages = []
  const exit = new Promise((resolve) => worker.once('exit', resolve))
  const errors = []
  worker.on('error', (err) => errors.push(err))
  worker.on('message', (msg) => messages.push(msg))
  defer(async () => {
    await worker.terminate()
    await exit
  }, 'worker.terminate()')
  const next = (type, timeoutMs = 10000) => waitFor(() => {
    const failure = messages.find((m) => m.type === 'error')
    if (failure) throw new Error(`worker: ${failure.message}`)
    if (errors.length > 0) throw errors[0]
    const i = messages.findIndex((m) => m.type === type)
    return i >= 0 ? messages.splice(i, 1)[0] : null
  }, timeoutMs, `the worker's ${type} message`)
  const { port } = await next('listening')
  return { worker, port, next, exit, errors, messages }
}

function paths (n) {
  return Array.from({ length: n }, (_, tag) => ssePath({ tag, topics: ['w'] }))
}

test('a Hub inside a worker serves clients, then closes and the worker exits cleanly', async (t) => {
  const defer = cleanup(t)
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')
  const baseline = fdCount()
  const w = await startWorker(defer)

  const N = 50
  const { indices } = await clients.open({ n: N, port: w.port, paths: paths(N) })
  const accepted = []
  for (let k = 0; k < N; k++) accepted.push(await w.next('accepted'))
  assert.ok(accepted.every((m) => m.transport === 'native'))
  assert.equal(new Set(accepted.map((m) => m.id)).size, N)

  w.worker.postMessage({ cmd: 'publish', topic: 'w', data: 'from the worker' })
  w.worker.postMessage({ cmd: 'publish', topic: 'w', data: { n: 2 }, options: { event: 'json', id: '2' } })
  w.worker.postMessage({ cmd: 'publish', topic: 'other', data: 'nobody' })
  await clients.waitCounts(indices, 2)
  w.worker.postMessage({ cmd: 'stats' })
  const { stats } = await w.next('stats')
  assert.equal(stats.connections, N)
  assert.equal(stats.published, 3)

  w.worker.postMessage({ cmd: 'close' })
  const closed = await w.next('closed')
  assert.equal(closed.connections, 0)
  assert.equal(closed.disconnects.length, N)
  assert.ok(closed.disconnects.every((ev) => ev.reason === 'shutdown'))
  const code = await within(w.exit, 5000, 'the worker to exit by itself after close()')
  assert.equal(code, 0)
  assert.deepEqual(w.errors, [])

  await clients.waitSummary((s) => indices.every((i) => s[i].closed), 5000, 'every client to see its stream end')
  for (const c of await clients.report({ events: true })) {
    assert.deepEqual(c.events, [
      { event: 'message', data: 'from the worker', lastEventId: '' },
      { event: 'json', data: '{"n":2}', lastEventId: '2' }
    ])
    assert.ok(c.ended && c.eofAfterEnd && !c.error, `client ${c.i} saw a clean end`)
  }
  // Everything the worker opened (its loop, the hub's I/O loops, sockets) is closed.
  await waitFor(() => fdCount() === baseline, 5000, () => `fd count ${fdCount()} back to ${baseline}`)
})

test('a worker terminated with open connections: no crash, clients see the close, the process stays healthy', async (t) => {
  const defer = cleanup(t)
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')
  const baseline = fdCount()
  const w = await startWorker(defer)

  const N = 50
  const { indices } = await clients.open({ n: N, port: w.port, paths: paths(N) })
  for (let k = 0; k < N; k++) await w.next('accepted')
  w.worker.postMessage({ cmd: 'publish', topic: 'w', data: 'before terminate' })
  await clients.waitCounts(indices, 1)
  // More in flight as the worker goes away.
  for (let k = 0; k < 200; k++) w.worker.postMessage({ cmd: 'publish', topic: 'w', data: `burst ${k} ` + 'b'.repeat(512) })

  await within(w.worker.terminate(), 10000, 'worker.terminate()')
  const code = await within(w.exit, 5000, 'the worker exit event')
  assert.equal(code, 1, 'a terminated worker exits with code 1')
  assert.deepEqual(w.errors, [])

  await clients.waitSummary((s) => indices.every((i) => s[i].closed), 5000, 'every client to see its connection closed')
  for (const c of await clients.report({ events: true, truncate: 20 })) {
    assert.equal(c.events[0].data, 'before terminate', `client ${c.i}`)
    assert.ok(c.eof || c.error, `client ${c.i} saw EOF or a reset`)
    assert.equal(c.framingError, null)
  }
  await waitFor(() => fdCount() === baseline, 5000, () => `fd count ${fdCount()} back to ${baseline} after terminate()`)

  // The main thread still works: its own hub, server and clients.
  const { hub, server } = await startHub(t, { defer, hub: { threads: 1 } })
  const [i] = (await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 0, topics: ['main'] }) })).indices
  hub.publish('main', 'main thread is fine')
  await clients.waitCounts([i], 1)
  const [c] = await clients.report({ events: true, indices: [i] })
  assert.deepEqual(c.events.map((e) => e.data), ['main thread is fine'])
  await within(hub.close(), 5000, 'hub.close()')
})

// While a worker is being terminated, an addon call still running on its
// thread (here a publish, or the flush() microtask it queued) sees every napi_*
// call fail with nothing to throw. node-addon-api used to turn that into a
// fatal error that aborted the whole process; under the sanitizers this loop
// hit it within a second (binding.gyp: NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS).
test('workers terminated while they publish never take the process down', async () => {
  const SPIN = path.join(__dirname, '..', 'helpers', 'worker-spin.js')
  const rounds = 100
  for (let r = 0; r < rounds; r++) {
    const worker = new Worker(SPIN)
    const errors = []
    worker.on('error', (err) => errors.push(err))
    const exit = new Promise((resolve) => worker.once('exit', resolve))
    await within(new Promise((resolve) => worker.once('message', resolve)), 10000, `worker ${r} to start`)
    await new Promise((resolve) => setTimeout(resolve, (r * 7) % 20))
    await within(worker.terminate(), 10000, `worker ${r} terminate()`)
    assert.equal(await within(exit, 5000, `worker ${r} exit`), 1, 'a terminated worker exits with code 1')
    assert.deepEqual(errors, [])
  }
})
