'use strict'
// A live counter with Express and sse-fanout: the server counts every second
// and publishes the count to the 'counter' topic; the page at / shows it (and
// how many pages are connected) with EventSource.
//
//   node examples/express-dashboard/server.js      then open http://127.0.0.1:3000/
//   curl -N http://127.0.0.1:3000/events           the raw stream
//
// PORT (default 3000), HOST (default 127.0.0.1). Ctrl-C ends every stream
// properly before exiting. In an app of your own, require('sse-fanout') and
// require('sse-fanout/express').
const express = require('express')
const { Hub } = require('../..')
const { sse, closeWithServer } = require('../../lib/express')

const port = Number(process.env.PORT || 3000)
const host = process.env.HOST || '127.0.0.1'

const PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sse-fanout: live counter</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; margin: 3rem auto; max-width: 30rem; text-align: center }
  #count { font-size: 5rem; font-variant-numeric: tabular-nums }
  .muted { color: #666 }
</style>
<h1>Live counter</h1>
<div id="count">–</div>
<p class="muted"><span id="connections">–</span> connected · <span id="status">connecting…</span></p>
<script>
  const $ = (id) => document.getElementById(id)
  const events = new EventSource('/events')
  events.addEventListener('counter', (e) => {
    const { count, connections } = JSON.parse(e.data)
    $('count').textContent = count
    $('connections').textContent = connections
  })
  events.onopen = () => { $('status').textContent = 'live' }
  events.onerror = () => { $('status').textContent = 'reconnecting…' }
</script>
</html>
`

const hub = new Hub()
let count = 0
const state = () => ({ count, connections: hub.stats().connections })

const app = express()
app.get('/', (req, res) => res.type('html').send(PAGE))
app.get('/events', sse(hub, { topics: 'counter', retry: 2000 }))
app.use((err, req, res, next) => {
  res.status(err.statusCode || (err.code === 'ERR_SSE_CLOSED' ? 503 : 500)).json({ error: err.code, message: err.message })
})

// A new page gets the current state at once, not a second later.
hub.on('connect', ({ id }) => hub.send(id, state(), { event: 'counter' }))

const timer = setInterval(() => {
  count++
  hub.publish('counter', state(), { event: 'counter', id: String(count) })
}, 1000)

const server = app.listen(port, host, (err) => {
  if (err) throw err
  console.log(`live counter on http://${host}:${server.address().port}/`)
})
closeWithServer(hub, server) // server.close() also ends the streams

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    clearInterval(timer)
    server.close(() => process.exit(0))
  })
}
