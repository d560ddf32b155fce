'use strict'
// The bound on commands waiting for the I/O threads (maxPendingCommands,
// maxPendingBytes): publishing faster than the threads drain ends in
// ERR_SSE_QUEUE_FULL with nothing queued anywhere (a publish reaches every
// thread or none), stats().queueFull counts it, memory stays bounded, and
// publishing works again once the threads caught up. Commands wait in the
// hub's per-thread batch until the end of the JS job, so a synchronous loop
// fills the queue deterministically.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { SseError } = require('../..')
const { startHub } = require('../helpers/fixture')
const { untilFull, drained } = require('../helpers/queue')
const { waitFor } = require('../helpers/wait')
const { sanitized } = require('../helpers/sanitized')

/** A hub, a server that accepts every request, and n streams on topic 't', each recording its data lines. */
async function setup (t, hubOptions, n) {
  const { hub, port, conns, defer } = await startHub(t, { hub: { heartbeatMs: 0, ...hubOptions }, accept: { topics: ['t'] } })
  const streams = []
  for (let i = 0; i < n; i++) {
    const stream = { data: [], count: 0, buffered: '' }
    await new Promise((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
        res.setEncoding('utf8')
        res.on('data', (chunk) => {
          stream.buffered += chunk
          const lines = stream.buffered.split('\n')
          stream.buffered = lines.pop()
          for (const line of lines) {
            if (!line.startsWith('data: ')) continue
            stream.count++
            if (line.length < 100) stream.data.push(line.slice(6)) // not the large ones
          }
        })
        resolve()
      })
      req.on('error', reject)
      defer(() => req.destroy(), 'client')
    })
    streams.push(stream)
  }
  await waitFor(() => conns.length === n, 5000, 'streams accepted')
  return { hub, ids: conns.map((c) => c.id), streams }
}

test('maxPendingCommands: the next publish throws ERR_SSE_QUEUE_FULL, nothing of it is queued, publishing works once drained', async (t) => {
  const { hub, streams } = await setup(t, { threads: 2, maxPendingCommands: 100 }, 2)
  await drained(hub)
  const { accepted, err } = untilFull((i) => hub.publish('t', String(i)))
  assert.ok(err instanceof SseError, `expected an SseError, got ${err}`)
  assert.equal(err.code, 'ERR_SSE_QUEUE_FULL')
  assert.match(err.message, /maxPendingCommands/)
  assert.equal(accepted, 100, 'exactly maxPendingCommands publishes fit in one job')
  const s = hub.stats()
  assert.equal(s.queueFull, 1)
  assert.deepEqual(s.threads.map((x) => x.pendingCommands), [100, 100], 'the refused publish reached no thread')
  assert.throws(() => hub.broadcast('x'), { code: 'ERR_SSE_QUEUE_FULL' })
  assert.equal(hub.stats().queueFull, 2)

  await drained(hub)
  hub.publish('t', 'after')
  const want = [...Array.from({ length: 100 }, (_, i) => String(i)), 'after']
  await waitFor(() => streams.every((x) => x.data.length >= want.length), 10000, 'every event')
  for (const x of streams) assert.deepEqual(x.data, want, 'the first 100 and the one after, nothing refused, in order')
})

test('a publish goes to every thread or none: one thread full refuses it for all', async (t) => {
  const { hub, ids } = await setup(t, { threads: 2, maxPendingCommands: 10 }, 2)
  await drained(hub)
  // Connection ids go round robin: fill the first one's thread with sends.
  for (let i = 0; i < 9; i++) hub.send(ids[0], 's')
  hub.publish('t', 'fits')
  assert.deepEqual(hub.stats().threads.map((x) => x.pendingCommands), [10, 1])
  assert.throws(() => hub.publish('t', 'refused'), { code: 'ERR_SSE_QUEUE_FULL' })
  assert.throws(() => hub.send(ids[0], 'refused'), { code: 'ERR_SSE_QUEUE_FULL' })
  hub.send(ids[1], 'the other thread has room')
  assert.deepEqual(hub.stats().threads.map((x) => x.pendingCommands), [10, 2], 'the refused publish queued nothing on the thread with room')
  assert.equal(hub.stats().queueFull, 2)
  await drained(hub)
})

test('maxPendingBytes: a loop of large frames is stopped at the bound, memory stays bounded, and it resumes once drained', async (t) => {
  const MiB = 1024 * 1024
  const { hub, streams } = await setup(t, { threads: 1, maxPendingBytes: 8 * MiB, maxQueueBytes: 64 * MiB, maxPendingCommands: 0 }, 1)
  const big = Buffer.alloc(MiB, 'x')
  await drained(hub)
  const rss0 = process.memoryUsage().rss
  const frames0 = hub.stats().frames
  let accepted = 0
  let refused = 0
  // 400 MiB offered in jobs of at most 50 frames; without the bound all of
  // it would be queued at once.
  for (let round = 0; round < 8; round++) {
    const r = untilFull(() => hub.publish('t', big), 50)
    assert.ok(r.err, `round ${round}: the bound was reached`)
    assert.equal(r.err.code, 'ERR_SSE_QUEUE_FULL')
    const s = hub.stats()
    assert.ok(s.pendingBytes <= 8 * MiB, `pendingBytes ${s.pendingBytes} within maxPendingBytes`)
    assert.ok(s.frames <= frames0 + 7, `frames alive ${s.frames}: at most the 7 queued ones more than before`)
    accepted += r.accepted
    refused++
    await drained(hub)
    await waitFor(() => hub.stats().queueBytes === 0, 20000, 'the client read everything')
  }
  assert.equal(accepted, 8 * 7, 'seven 1 MiB frames fit in 8 MiB each round')
  assert.equal(hub.stats().queueFull, refused)
  const grown = (process.memoryUsage().rss - rss0) / MiB
  if (!sanitized) assert.ok(grown < 64, `RSS grew ${grown.toFixed(1)} MiB`)
  await waitFor(() => streams[0].count === accepted, 20000, 'every accepted event arrived')
  // A frame larger than maxPendingBytes still goes out when nothing waits.
  hub.publish('t', Buffer.alloc(9 * MiB, 'y'))
  await drained(hub)
})
