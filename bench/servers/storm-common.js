'use strict'
// The control routes the four servers of the storm scenario share
// (bench/scenarios/storm.js; servers/storm-native-listener.js, storm-takeover.js,
// storm-uws.js, storm-node-http.js). Each server has its own stream route and
// HTTP stack; this is what the runner asks them, the same on all four, so the
// rows differ by how connections are accepted and written only. Every server
// keeps a history of its events on "all" and replays those after a stream's
// Last-Event-ID when it opens (sse-fanout: the hub's history; the others: by
// hand, makeHistory() below), which is how the storm's clients get their first
// event in the default mode.
//
//   POST /prime?count=C                   C events of TICK_BYTES on "all" (before
//                                          anyone connects): { ids }, the ids given
//   POST /ticker?ms=M                     publish a small event (TICK_BYTES of
//                                          "<CLOCK_MONOTONIC ns> " padded) on topic
//                                          "all" every M ms, from a setInterval on the
//                                          JS thread; M = 0 stops it. Answers { ms, ticks }
//   POST /publish?count=C&size=S          C events of S bytes on "all", back to back
//                                          in one JS job (as node-server.js's burst)
//   GET  /stats[?reset=1]                 connections, rss, heapUsed (no GC forced,
//                                          ever), event-loop delay p50/p99/max in ms
//                                          since the last reset (monitorEventLoopDelay,
//                                          resolution 1 ms: each sample is the
//                                          interval between two 1 ms timer callbacks,
//                                          so an idle loop reads about 1 ms), ticks
//
// handle() answers { status, body } or null for a path it does not know; the
// server writes it with its own API.
const { monitorEventLoopDelay } = require('node:perf_hooks')
const payloads = require('./payloads')

const TICK_BYTES = 64

// publish(data) returns the event's id.
function control ({ publish, count }) {
  const eld = monitorEventLoopDelay({ resolution: 1 })
  eld.enable()
  let ticker = null
  let tickMs = 0
  let ticks = 0
  const tick = () => {
    ticks++
    publish(payloads.text(TICK_BYTES))
  }
  return {
    handle (method, pathname, query) {
      if (pathname === '/ticker' && method === 'POST') {
        clearInterval(ticker)
        ticker = null
        tickMs = Number(query.get('ms') || 0)
        if (tickMs > 0) ticker = setInterval(tick, tickMs)
        return { status: 200, body: { ms: tickMs, ticks } }
      }
      if (pathname === '/prime' && method === 'POST') {
        const ids = []
        for (let i = Number(query.get('count') || 1); i > 0; i--) ids.push(publish(payloads.text(TICK_BYTES)))
        return { status: 200, body: { ids } }
      }
      if (pathname === '/publish' && method === 'POST') {
        const n = Number(query.get('count') || 1)
        const size = Number(query.get('size') || 256)
        for (let i = 0; i < n; i++) publish(payloads.text(size))
        return { status: 204, body: null }
      }
      if (pathname === '/stats') {
        const mem = process.memoryUsage()
        const body = {
          connections: count(),
          rss: mem.rss,
          heapUsed: mem.heapUsed,
          eldP50Ms: eld.percentile(50) / 1e6,
          eldP99Ms: eld.percentile(99) / 1e6,
          eldMaxMs: eld.max / 1e6,
          ticks
        }
        if (query.get('reset') === '1') eld.reset()
        return { status: 200, body }
      }
      return null
    },
    stop () {
      clearInterval(ticker)
      eld.disable()
    }
  }
}

// The control routes on a node:http server (the three servers built on it).
function nodeHandler (ctl) {
  return (req, res) => {
    const url = new URL(req.url, 'http://x')
    const answer = ctl.handle(req.method, url.pathname, url.searchParams)
    if (answer === null) {
      res.writeHead(404)
      res.end()
      return
    }
    if (answer.body === null) {
      res.writeHead(answer.status, { 'content-length': 0 })
      res.end()
      return
    }
    res.writeHead(answer.status, { 'content-type': 'application/json' })
    res.end(JSON.stringify(answer.body))
  }
}

// A hand-written history, as a server without sse-fanout keeps one (and as
// node-server.js's plain does with --history): ids 1, 2, …, the last
// HISTORY_EVENTS frames (sse-fanout's default maxEvents); a stream opened with
// a Last-Event-ID gets the frames after it.
const HISTORY_EVENTS = 10000
function makeHistory () {
  const events = [] // { id, frame }, oldest first
  let seq = 0
  return {
    /** The event's frame, with its id, kept; returns { id, frame }. */
    add (data) {
      const id = String(++seq)
      const event = { id, frame: `id: ${id}\ndata: ${data}\n\n` }
      events.push(event)
      if (events.length > HISTORY_EVENTS) events.shift()
      return event
    },
    /** The frames after lastId, joined ('' for none or an unknown id). */
    after (lastId) {
      if (!lastId) return ''
      const at = events.findIndex((e) => e.id === lastId)
      if (at < 0) return ''
      let out = ''
      for (let i = at + 1; i < events.length; i++) out += events[i].frame
      return out
    }
  }
}

// The topics of a stream request (?topics=a,b).
const topicsOf = (query) => (query.get('topics') || '').split(',').filter(Boolean)

module.exports = { control, nodeHandler, makeHistory, topicsOf, TICK_BYTES }
