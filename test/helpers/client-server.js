'use strict'
// The server of the browser client's tests (test/js/client-browser.test.js),
// run as a child process so a test can SIGKILL it and start another on the
// same port (a crash and a restart: a new hub, a new epoch).
//
//   const server = await startClientServer({ maxEvents: 10, heartbeatMs: 500 })
//   server.port, server.url
//   await server.publish('a', 'data')  -> the event's id
//   server.kill()                       SIGKILL, resolves once it is gone
//   await server.stop()                 SIGTERM, bounded
//
// The child: a node:http server on 127.0.0.1:PORT (0: a free one) with a Hub
// (history { maxEvents: MAX_EVENTS, positionEvent: true unless
// POSITION_EVENT=0 }, heartbeatMs: HEARTBEAT_MS); it prints its port as its
// first stdout line and exits on SIGTERM. Routes:
//   GET  /events?topics=a,b      hub.accept() (the cursor from the query or Last-Event-ID)
//   GET  /poll?topics=a&since=   hub.poll()
//   POST /publish?topic=a[&event=name]  body = data; 200 { id }
//   GET  /sse-fanout-client.js   serveClient()
//   GET  /page.html              a blank page (the origin of the test pages)
// Every answer but a stream carries `connection: close`: one request per
// TCP connection, so test/helpers/proxy.js sees the request line of every
// request a browser makes (a kept-alive socket would carry a stream request
// past a proxy that decides by path on a connection's first request).

const { spawn } = require('node:child_process')
const http = require('node:http')
const { within } = require('./wait')

const BLANK_PAGE = '<!doctype html><meta charset="utf-8"><title>sse-fanout client test</title>'

function runServer () {
  const { Hub, serveClient } = require('../..')
  const hub = new Hub({
    threads: 1,
    heartbeatMs: Number(process.env.HEARTBEAT_MS || 1000),
    history: { maxEvents: Number(process.env.MAX_EVENTS || 10000), ...(process.env.POSITION_EVENT === '0' ? {} : { positionEvent: true }) }
  })
  const topicsOf = (url) => (url.searchParams.get('topics') || '').split(',').filter(Boolean)
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost')
    if (req.method === 'GET' && url.pathname === '/events') {
      try {
        hub.accept(req, res, { topics: topicsOf(url), retry: 200 })
      } catch (err) {
        res.writeHead(err.statusCode || 500, { connection: 'close' }).end(String(err.code))
      }
      return
    }
    res.setHeader('connection', 'close')
    if (req.method === 'GET' && url.pathname === '/poll') {
      hub.poll(req, res, { topics: topicsOf(url) })
    } else if (req.method === 'POST' && url.pathname === '/publish') {
      const chunks = []
      req.on('data', (c) => chunks.push(c))
      req.on('end', () => {
        const event = url.searchParams.get('event') || undefined
        const id = hub.publish(url.searchParams.get('topic'), Buffer.concat(chunks).toString(), { event })
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id }))
      })
    } else if (url.pathname === '/sse-fanout-client.js') {
      serveClient(req, res)
    } else if (req.method === 'GET' && url.pathname === '/page.html') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(BLANK_PAGE)
    } else {
      res.writeHead(404).end()
    }
  })
  server.listen(Number(process.env.PORT || 0), '127.0.0.1', () => {
    process.stdout.write(`${server.address().port}\n`)
  })
  process.once('SIGTERM', async () => {
    server.close()
    server.closeAllConnections()
    await hub.close()
    process.exit(0)
  })
}

/**
 * Starts the server in a child process; resolves once it listens.
 * positionEvent false: the hub's default id-only positions (POSITION_EVENT=0).
 * @param {{ port?: number, maxEvents?: number, heartbeatMs?: number, positionEvent?: boolean }} [options]
 */
async function startClientServer ({ port = 0, maxEvents = 10000, heartbeatMs = 1000, positionEvent = process.env.POSITION_EVENT !== '0' } = {}) {
  const env = { ...process.env, PORT: String(port), MAX_EVENTS: String(maxEvents), HEARTBEAT_MS: String(heartbeatMs), POSITION_EVENT: positionEvent ? '1' : '0' }
  const child = spawn(process.execPath, [__filename], { env, stdio: ['ignore', 'pipe', 'inherit'] })
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const listening = new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
      const line = out.indexOf('\n')
      if (line >= 0) resolve(Number(out.slice(0, line)))
    })
    exited.then(({ code, signal }) => reject(new Error(`client-server exited (${code ?? signal}) before listening`)))
  })
  const actualPort = await within(listening, 10000, 'client-server listening').catch((err) => {
    child.kill('SIGKILL')
    throw err
  })
  const url = `http://127.0.0.1:${actualPort}`
  return {
    port: actualPort,
    url,
    child,
    exited,
    /** Publishes data on topic (straight to the server, not through a proxy); resolves with its id. */
    async publish (topic, data, { event } = {}) {
      const q = new URLSearchParams({ topic })
      if (event) q.set('event', event)
      const res = await within(fetch(`${url}/publish?${q}`, { method: 'POST', body: data }), 5000, `publish ${data}`)
      if (res.status !== 200) throw new Error(`publish answered ${res.status}`)
      return (await res.json()).id
    },
    /** SIGKILL (a crash); resolves once the process is gone. */
    kill () {
      child.kill('SIGKILL')
      return within(exited, 5000, 'client-server SIGKILL')
    },
    /** SIGTERM; SIGKILL when it has not exited within 5 s. */
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGTERM')
      await within(exited, 5000, 'client-server SIGTERM').catch(() => {
        child.kill('SIGKILL')
        return exited
      })
    }
  }
}

if (require.main === module) runServer()

module.exports = { startClientServer, BLANK_PAGE }
