'use strict'
// The server under test for the fault tests, in a process of its own, so that
// its RSS and fd count are the hub's and the HTTP server's only (not the test
// runner's, not the clients'). The parent drives it over IPC
// (StressServer, below); as a child it runs `main()`.
//
// Requests: GET /sse?t=<topic>&t=...&u=<user>&tag=<n>&track=1&welcome=1&kick=<ms>
//   t: topics, u: the accept() user; track: remember this connection (by tag)
//   and its disconnect reason and time; welcome: hub.send() it
//   "welcome tag=<n> owner=<u> fd=<Node's fd> id=<connection id>" (event
//   "welcome") right after accept();
//   kick: hub.kick() it after that many ms. Nothing else is kept per
//   connection, so a long run does not grow the process by itself.
//   accept() errors are answered 400 (429 with the error's statusCode).
//
// Commands (each with a seq; the reply has the same seq):
//   start { hub }              new Hub(hub options) and an HTTP server;
//                              { port, pid, fdsBefore } (fds before both existed)
//   stats                      hub.stats() (without per-thread figures), disconnect
//                              reasons so far, accept errors, rss, fds, heap
//   mem                        gc() (the child runs with --expose-gc) and the same
//   run { id, ticks, tickMs, items, maxMs }
//                              a paced publishing loop: tick k happens at
//                              start + k * tickMs (late ticks catch up, so the rate
//                              holds); each tick publishes every item:
//                              { kind: 'publish' | 'broadcast', topic | topics,
//                                perTick, bytes, users, event, prefix, n }
//                              (perTick: only the next perTick of topics each
//                              tick, round robin)
//                              data is "<CLOCK_MONOTONIC ns> <seq> " (or
//                              "<prefix> <seq> ") padded with 'x' to bytes. Ends
//                              after `ticks` ticks, at stop{id} or after maxMs;
//                              replies { published, firstNs, lastNs, ticks, lateMs }
//                              and with closeAfter: true calls hub.close() right
//                              after the last publish, in the same JS job
//   stop { id }                ends a run early
//   tracked                    the tracked connections: [{ tag, id, acceptNs, reason, atNs }]
//   close                      hub.close() and server.close(); { closeMs }
//   exit

const { fork } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')

// ---- child ------------------------------------------------------------------

function main () {
  const { Hub } = require('../..')
  const v8 = require('node:v8')
  let hub = null
  let server = null
  const reasons = {}
  const tracked = new Map() // id -> entry
  const trackedByTag = new Map()
  const acceptErrors = {}
  let accepted = 0
  const runs = new Map()
  let closeResult = null

  function onRequest (req, res) {
    const url = new URL(req.url, 'http://x')
    if (url.pathname !== '/sse') {
      res.statusCode = 404
      res.end()
      return
    }
    const q = url.searchParams
    const user = q.get('u') || undefined
    const tag = q.get('tag')
    const fd = req.socket && req.socket._handle ? req.socket._handle.fd : -1 // Node's fd, before any takeover
    let conn
    try {
      conn = hub.accept(req, res, { topics: q.getAll('t'), user })
    } catch (err) {
      const code = err.code || err.message
      acceptErrors[code] = (acceptErrors[code] || 0) + 1
      if (!res.headersSent) res.statusCode = err.statusCode || 400
      res.end(code)
      return
    }
    accepted++
    if (q.has('track')) {
      const entry = { tag, id: conn.id, acceptNs: Number(process.hrtime.bigint()), reason: null, atNs: 0 }
      tracked.set(conn.id, entry)
      trackedByTag.set(tag, entry)
    }
    if (q.has('welcome')) hub.send(conn.id, `welcome tag=${tag} owner=${user} fd=${fd} id=${conn.id}`, { event: 'welcome' })
    if (q.has('kick')) {
      setTimeout(() => { if (hub.has(conn.id) && !hub.closed) hub.kick(conn.id) }, Number(q.get('kick')))
    }
  }

  function payload (item, seq) {
    const head = `${item.prefix === undefined ? process.hrtime.bigint() : item.prefix} ${seq} `
    return item.bytes > head.length ? head + 'x'.repeat(item.bytes - head.length) : head
  }

  function statsNow () {
    const s = hub ? hub.stats() : {}
    delete s.threads
    const m = process.memoryUsage()
    return {
      hub: s,
      reasons: { ...reasons },
      acceptErrors: { ...acceptErrors },
      accepted,
      rss: m.rss,
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      newSpace: v8.getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')?.space_size,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      fds: fs.readdirSync('/proc/self/fd').length
    }
  }

  async function run (msg) {
    const state = { stop: false }
    runs.set(msg.id, state)
    const tickMs = msg.tickMs || 20
    const maxTicks = msg.ticks ?? Infinity
    const maxMs = msg.maxMs || 600000
    const published = msg.items.map(() => 0)
    let seq = 0
    let firstNs = 0
    let lastNs = 0
    let tick = 0
    let lateMs = 0
    const start = Date.now()
    while (tick < maxTicks && !state.stop && Date.now() - start < maxMs) {
      const due = start + tick * tickMs
      const wait = due - Date.now()
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait))
      else lateMs = Math.max(lateMs, -wait)
      if (state.stop) break
      // Catch up on ticks that are due (bounded: at most 50 per turn).
      let burst = 0
      while (tick < maxTicks && start + tick * tickMs <= Date.now() && burst++ < 50) {
        for (let k = 0; k < msg.items.length; k++) {
          const item = msg.items[k]
          let topics = item.topics || [item.topic]
          if (item.perTick) { // the next perTick topics of the list, round robin
            const from = ((tick * item.perTick) % topics.length)
            topics = Array.from({ length: item.perTick }, (_, j) => item.topics[(from + j) % item.topics.length])
          }
          for (let r = 0; r < (item.n || 1); r++) {
            for (const topic of topics) {
              const data = payload(item, seq++)
              const options = {}
              if (item.users) options.users = item.users
              if (item.event) options.event = item.event
              if (item.kind === 'broadcast') hub.broadcast(data, options)
              else hub.publish(topic, data, options)
              published[k]++
              if (!firstNs) firstNs = Number(process.hrtime.bigint())
            }
          }
        }
        tick++
      }
      lastNs = Number(process.hrtime.bigint())
      if (msg.closeAfter && (tick >= maxTicks || state.stop)) break
    }
    runs.delete(msg.id)
    const result = { published, total: published.reduce((a, b) => a + b, 0), firstNs, lastNs, ticks: tick, lateMs, ms: Date.now() - start }
    if (msg.closeAfter) {
      const t0 = Date.now()
      closeResult = hub.close().then(() => ({ closeMs: Date.now() - t0 }))
      result.closeCalledNs = Number(process.hrtime.bigint())
    }
    return result
  }

  const handlers = {
    async start (msg) {
      const fdsBefore = fs.readdirSync('/proc/self/fd').length
      // The stress clients all connect from 127.0.0.1, thousands at a time.
      hub = new Hub({ maxConnectionsPerIp: 0, ...msg.hub })
      hub.on('disconnect', ({ id, reason }) => {
        reasons[reason] = (reasons[reason] || 0) + 1
        const entry = tracked.get(id)
        if (entry) {
          entry.reason = reason
          entry.atNs = Number(process.hrtime.bigint())
          tracked.delete(id)
        }
      })
      server = http.createServer(onRequest)
      server.keepAliveTimeout = 1000
      await new Promise((resolve, reject) => {
        server.once('error', reject)
        server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, resolve)
      })
      return { port: server.address().port, pid: process.pid, fdsBefore }
    },
    async stats () { return statsNow() },
    async mem () {
      if (global.gc) { global.gc(); global.gc() }
      await new Promise((resolve) => setTimeout(resolve, 50))
      return statsNow()
    },
    run,
    async stop (msg) {
      const state = runs.get(msg.id)
      if (state) state.stop = true
      return { stopped: !!state }
    },
    async tracked () { return [...trackedByTag.values()] },
    async close () {
      const t0 = Date.now()
      const r = closeResult ? await closeResult : (await hub.close(), { closeMs: Date.now() - t0 })
      await new Promise((resolve) => { server.close(() => resolve()); server.closeAllConnections() })
      return { ...r, stats: statsNow() }
    },
    async exit () { return { exiting: true } }
  }

  process.on('message', (msg) => {
    Promise.resolve().then(() => handlers[msg.cmd](msg)).then(
      (result) => process.send({ seq: msg.seq, ok: true, result }, () => { if (msg.cmd === 'exit') process.exit(0) }),
      (err) => process.send({ seq: msg.seq, ok: false, error: String(err && err.stack) }))
  })
  process.on('disconnect', () => process.exit(0))
  const lifetimeMs = Number(process.argv[2]) || 15 * 60 * 1000
  setTimeout(() => { process.stderr.write('stress-server: lifetime over, exiting\n'); process.exit(3) }, lifetimeMs).unref()
  process.send({ ready: true, pid: process.pid })
}

// ---- parent -----------------------------------------------------------------

class StressServer {
  /**
   * Forks the server process (with --expose-gc, a fixed-size young
   * generation) and starts a Hub in it.
   * @param {object} hubOptions new Hub(hubOptions)
   * @param {{ lifetimeMs?: number }} [options] the child exits by itself after lifetimeMs
   */
  static async start (hubOptions = {}, options = {}) {
    const child = fork(__filename, [String(options.lifetimeMs || 15 * 60 * 1000)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // gc() for the memory figures. The young generation is fixed at 16 MiB
      // semi-spaces (the default maximum): V8 otherwise doubles it in steps
      // (8, 16, 32 MiB of new space) as survival rates change, and those
      // steps would show up as RSS growth that is not the hub's.
      execArgv: ['--expose-gc', '--min-semi-space-size=16', '--max-semi-space-size=16']
    })
    const s = new StressServer(child)
    await s._ready
    const { port, fdsBefore } = await s.request({ cmd: 'start', hub: hubOptions })
    s.port = port
    s.fdsBefore = fdsBefore // before the Hub and the HTTP server existed
    return s
  }

  constructor (child) {
    this.child = child
    this.pid = child.pid
    this.seq = 0
    this.pending = new Map()
    this.exit = null
    let onReady
    let onEarlyExit
    this._ready = new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('stress server did not start in time')), 15000)
      onReady = () => { clearTimeout(timer); resolve() }
      onEarlyExit = (code, signal) => { clearTimeout(timer); reject(new Error(`stress server exited before it was ready (code ${code}, signal ${signal})`)) }
    })
    this._ready.catch(() => {})
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exit = { code, signal }
        onEarlyExit(code, signal)
        for (const p of this.pending.values()) {
          clearTimeout(p.timer)
          p.reject(new Error(`stress server exited (code ${code}, signal ${signal}) with ${p.cmd} pending`))
        }
        this.pending.clear()
        resolve(this.exit)
      })
    })
    child.on('message', (msg) => {
      if (msg && msg.ready) return onReady()
      const p = this.pending.get(msg.seq)
      if (!p) return
      this.pending.delete(msg.seq)
      clearTimeout(p.timer)
      if (msg.ok) p.resolve(msg.result)
      else p.reject(new Error(`stress server: ${msg.error}`))
    })
  }

  get alive () { return this.exit === null }

  request (msg, timeoutMs = 30000) {
    if (!this.alive) return Promise.reject(new Error(`stress server has exited (${JSON.stringify(this.exit)})`))
    const seq = ++this.seq
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq)
        reject(new Error(`stress server did not answer ${msg.cmd} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(seq, { resolve, reject, timer, cmd: msg.cmd })
      this.child.send({ ...msg, seq })
    })
  }

  stats () { return this.request({ cmd: 'stats' }) }
  mem () { return this.request({ cmd: 'mem' }) }
  /** A paced publishing run; resolves when it ends (see the header). */
  run (options, timeoutMs) {
    const maxMs = options.maxMs || 600000
    return this.request({ cmd: 'run', id: options.id || 'run', ...options, maxMs }, timeoutMs || maxMs + 30000)
  }

  stopRun (id = 'run') { return this.request({ cmd: 'stop', id }) }
  tracked () { return this.request({ cmd: 'tracked' }) }
  close (timeoutMs = 30000) { return this.request({ cmd: 'close' }, timeoutMs) }

  /** Ends the process: 'exit' over IPC, SIGKILL after timeoutMs. */
  async stop (timeoutMs = 5000) {
    if (!this.alive) return this.exited
    this.request({ cmd: 'exit' }, timeoutMs).catch(() => {})
    const timer = setTimeout(() => { if (this.alive) this.child.kill('SIGKILL') }, timeoutMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }
}

/** A GET on the server's /sse that returns the status and body (for refusals). */
function get (port, p) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: p, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (d) => { body += d })
      res.on('end', () => resolve({ status: res.statusCode, body }))
    })
    req.on('error', reject)
  })
}

if (require.main === module) main()

module.exports = { StressServer, get }
