'use strict'
// Child process of the resume tests: a Hub with history on behind node:http
// (GET /events?topics=a,b&user=u), publishing the sequence of
// history-events.js from { start: perMs } (that many events a millisecond;
// 0: as fast as the I/O threads take them) until 'stop' (IPC) or 20 s; then
// one broadcast named "end" whose data is the number of events published
// before it. Replies over IPC:
//   { port } once listening, { published, stats } after 'stop'.
const http = require('node:http')
const { Hub } = require('../..')
const { topicOf, usersOf } = require('./history-events')

const transport = process.argv[2] || 'auto'
const hub = new Hub({
  threads: 2,
  transport,
  maxConnectionsPerIp: 0,
  heartbeatMs: 0,
  maxQueueBytes: 64 * 1024 * 1024,
  // Clients stay away for tens of ms while thousands of events go out: room
  // for all of them, so every resume replays (a reset would be a failure).
  history: { maxEvents: 2000000, maxBytes: 512 * 1024 * 1024, maxReplayEvents: 2000000 }
})

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x')
  try {
    hub.accept(req, res, { topics: (url.searchParams.get('topics') || '').split(',').filter(Boolean), user: url.searchParams.get('user') || undefined })
  } catch (err) {
    res.writeHead(err.statusCode || 400).end(err.code)
  }
})

let k = 0
let running = false
let perMs = 0
let startedAt = 0
const deadline = Date.now() + 20000
function publishSome () {
  if (!running) return
  const want = perMs === 0 ? k + 200 : Math.floor((Date.now() - startedAt) * perMs)
  while (k < want) {
    const next = k + 1
    const topic = topicOf(next)
    const options = { users: usersOf(next) }
    let id
    try {
      id = topic === null ? hub.broadcast(String(next), options) : hub.publish(topic, String(next), options)
    } catch (err) {
      if (err.code !== 'ERR_SSE_QUEUE_FULL') throw err
      break // the I/O threads are behind: try again next turn, nothing was taken
    }
    if (id !== `${hub.options.history.epoch}-${next}`) throw new Error(`event ${next} got id ${id}`)
    k = next
  }
  if (Date.now() > deadline) running = false
  if (perMs === 0) setImmediate(publishSome)
  else setTimeout(publishSome, 1)
}

process.on('message', (m) => {
  if (m.start !== undefined) {
    running = true
    perMs = m.start
    startedAt = Date.now()
    setImmediate(publishSome)
  } else if (m === 'stop') {
    running = false
    const published = k
    hub.broadcast(String(published), { event: 'end' })
    k++
    process.send({ published, stats: hub.stats().history })
  }
})
process.on('disconnect', async () => {
  running = false
  server.close()
  await hub.close()
  process.exit(0)
})
server.listen({ port: 0, host: '127.0.0.1', backlog: 4096 }, () => process.send({ port: server.address().port, epoch: hub.options.history.epoch }))
