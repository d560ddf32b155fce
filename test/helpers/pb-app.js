'use strict'
// A PocketBase realtime app for one test, with its streams, closed after it:
//   startApp(t, kind, options)  -> { app, realtime, port, connect, barrier, defer }
//     connect(opts)   opens GET /api/realtime and waits for PB_CONNECT
//     barrier(s)      a message to one stream's client; resolves once it arrived
//                     (so everything sent to it before has too)
// kind: 'fastify' | 'express' | 'http' (test/helpers/pb-http.js).

const assert = require('node:assert/strict')
const { startRealtimeApp, openStream } = require('./pb-http')
const { waitFor, cleanup } = require('./wait')

const KINDS = ['fastify', 'express', 'http']

async function startApp (t, kind, options = {}) {
  const defer = cleanup(t)
  const app = await startRealtimeApp(kind, options)
  defer(() => app.close(), `${kind} app close`)
  const streams = []
  defer(() => { for (const s of streams) s.close() }, 'close streams')
  async function connect (opts) {
    const s = await openStream(app.port, opts)
    streams.push(s)
    await s.connected()
    return s
  }
  let barriers = 0
  async function barrier (s) {
    const n = ++barriers
    assert.equal(app.realtime.sendToClient(s.cid, { n }, { event: 'barrier' }), true)
    await waitFor(() => s.events.some((e) => e.event === 'barrier' && JSON.parse(e.data).n === n), 5000, `barrier ${n}`)
  }
  return { app, realtime: app.realtime, port: app.port, connect, barrier, defer }
}

/** Events after PB_CONNECT other than barriers, as [event, data]. */
function received (s) {
  return s.events.slice(1).filter((e) => e.event !== 'barrier').map((e) => [e.event, e.data])
}

/**
 * An Express app with body parsers in front of expressRealtime(realtime), on
 * 127.0.0.1:0, and one connected stream: { port, s }. Closed after the test.
 * @param {(express) => Function[]} parsers e.g. (express) => [express.json()]
 */
async function startExpressWithParsers (t, realtime, parsers) {
  const express = require('express')
  const http = require('node:http')
  const { expressRealtime } = require('../../lib/pocketbase')
  const defer = cleanup(t)
  const app = express()
  for (const parser of parsers(express)) app.use(parser)
  app.use(expressRealtime(realtime))
  const server = http.createServer(app)
  await new Promise((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  defer(async () => {
    await realtime.close()
    await new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
  }, 'close')
  const port = server.address().port
  const s = await openStream(port)
  defer(() => s.close(), 'close stream')
  await s.connected()
  return { port, s }
}

module.exports = { KINDS, startApp, received, startExpressWithParsers }
