'use strict'
// The tutorial baseline of the bus scenario (bench/scenarios/bus.js): several
// Node processes behind one Redis, the way tutorials show it. node:http, a Set
// of open responses, @redis/client: a duplicate client subscribed to the
// channel "events" writes each message to every response (res.write), and
// POST /publish publishes on the other client. No ids, no history, no order
// across publishers beyond Redis's; topics are ignored (one channel, everyone).
//
// The contract of servers/node-server.js, as far as the bus scenario uses it:
//   GET  /events                          an SSE stream (every message)
//   POST /publish?topic=T&count=C&size=S  C messages, each "<CLOCK_MONOTONIC ns> "
//                                          padded to S bytes, published back to
//                                          back (node-redis pipelines them);
//                                          answers 204 once Redis answered them all
//   GET  /stats                           { connections, rss, heapUsed }
//
// Usage: node redis-pubsub-server.js [port] --redis <url>
// Prints "LISTENING <port>" once subscribed.
const http = require('node:http')
const { createClient } = require('@redis/client')

const port = Number(process.argv[2] || 0)
const urlAt = process.argv.indexOf('--redis')
if (urlAt < 0 || !process.argv[urlAt + 1]) throw new Error('usage: redis-pubsub-server.js [port] --redis <url>')
const url = process.argv[urlAt + 1]

const clients = new Set()
const publisher = createClient({ url })
const subscriber = publisher.duplicate()
for (const client of [publisher, subscriber]) client.on('error', (err) => console.error(`redis: ${err.message}`))

function payload (size) {
  const head = `${process.hrtime.bigint()} `
  return size > head.length ? head + 'x'.repeat(size - head.length) : head
}

const server = http.createServer(async (req, res) => {
  const { pathname, searchParams: q } = new URL(req.url, 'http://x')
  if (pathname === '/events') {
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' })
    res.flushHeaders()
    clients.add(res)
    req.on('close', () => clients.delete(res))
    return
  }
  if (pathname === '/publish') {
    const count = Number(q.get('count') || 1)
    const size = Number(q.get('size') || 256)
    try {
      await Promise.all(Array.from({ length: count }, () => publisher.publish('events', payload(size))))
      res.writeHead(204, { 'content-length': 0 })
      res.end()
    } catch (err) {
      res.writeHead(500)
      res.end(err.message)
    }
    return
  }
  if (pathname === '/stats') {
    const mem = process.memoryUsage()
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ connections: clients.size, rss: mem.rss, heapUsed: mem.heapUsed }))
    return
  }
  res.writeHead(404)
  res.end()
})
server.keepAliveTimeout = 60000
server.maxConnections = 20000

async function main () {
  await publisher.connect()
  await subscriber.connect()
  await subscriber.subscribe('events', (message) => {
    for (const res of clients) res.write(`data: ${message}\n\n`)
  })
  server.listen(port, '127.0.0.1', () => process.stdout.write(`LISTENING ${server.address().port}\n`))
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})

process.on('SIGTERM', async () => {
  server.close()
  for (const res of clients) res.end()
  await Promise.allSettled([subscriber.close(), publisher.close()])
  process.exit(0)
})
