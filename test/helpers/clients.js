'use strict'
// The parent's side of sse-clients.js: starts the client process and sends it
// commands. Every call is bounded by a timeout.

const { fork } = require('node:child_process')
const path = require('node:path')
const { waitFor } = require('./wait')

const CHILD = path.join(__dirname, 'sse-clients.js')

class Clients {
  /**
   * Starts a client process.
   * @param {{ lifetimeMs?: number }} [options] the child exits by itself after lifetimeMs
   */
  static async start (options = {}) {
    const lifetimeMs = options.lifetimeMs || 60000
    const child = fork(CHILD, [String(lifetimeMs)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // The child is a test tool, not a test: keep node --test's flags away.
      execArgv: []
    })
    const clients = new Clients(child)
    await clients._ready(10000)
    return clients
  }

  constructor (child) {
    this.child = child
    this.pid = child.pid
    this.seq = 0
    this.pending = new Map()
    this.exitCode = undefined
    this.signal = undefined
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.exitCode = code
        this.signal = signal
        for (const { reject, timer } of this.pending.values()) {
          clearTimeout(timer)
          reject(new Error(`client process exited (code ${code}, signal ${signal}) with a command pending`))
        }
        this.pending.clear()
        resolve({ code, signal })
      })
    })
    child.on('message', (msg) => {
      if (msg && msg.ready) {
        this.readyMsg = msg
        if (this._onReady) this._onReady()
        return
      }
      const p = this.pending.get(msg.seq)
      if (!p) return
      this.pending.delete(msg.seq)
      clearTimeout(p.timer)
      if (msg.ok) p.resolve(msg.result)
      else p.reject(new Error(`client process: ${msg.error}`))
    })
  }

  _ready (timeoutMs) {
    if (this.readyMsg) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('client process did not start in time')), timeoutMs)
      this._onReady = () => { clearTimeout(timer); resolve() }
    })
  }

  get alive () { return this.exitCode === undefined && this.signal === undefined }

  request (msg, timeoutMs = 20000) {
    if (!this.alive) return Promise.reject(new Error('client process has exited'))
    const seq = ++this.seq
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(seq)
        reject(new Error(`client process did not answer ${msg.cmd} within ${timeoutMs} ms`))
      }, timeoutMs)
      this.pending.set(seq, { resolve, reject, timer })
      this.child.send({ ...msg, seq })
    })
  }

  /**
   * Opens n connections; resolves with their indices once every one has its
   * response head (or, with stall, its request written). Throws when any failed.
   */
  async open (options) {
    const timeoutMs = options.timeoutMs || 20000
    const r = await this.request({ cmd: 'open', ...options, timeoutMs }, timeoutMs + 5000)
    if (r.notReady.length > 0 && !options.allowFailures) {
      throw new Error(`${r.notReady.length} of ${r.n} connections not ready ` +
        `(timed out: ${r.timedOut}); first failures: ${JSON.stringify(r.failed.slice(0, 5))}`)
    }
    const indices = []
    for (let k = 0; k < r.n; k++) indices.push(r.first + k)
    return { ...r, indices }
  }

  /** Per connection: { count, head, ended, eof, closed, error, tcp }. */
  async summary () {
    const { flags, counts } = await this.request({ cmd: 'summary' })
    return flags.map((f, i) => ({
      count: counts[i],
      head: !!(f & 1),
      ended: !!(f & 2),
      eof: !!(f & 4),
      closed: !!(f & 8),
      error: !!(f & 16),
      tcp: !!(f & 32),
      framingError: !!(f & 64)
    }))
  }

  /** Full state of connections (all, or `indices`), optionally with their events. */
  async report (options = {}) {
    const r = await this.request({ cmd: 'report', ...options }, 30000)
    return r.conns
  }

  async close (options) {
    const r = await this.request({ cmd: 'close', ...options })
    return r.closed
  }

  resume (indices) {
    return this.request({ cmd: 'resume', indices })
  }

  /** Polls summary() until predicate(summary) is true. */
  waitSummary (predicate, timeoutMs, what) {
    let last
    return waitFor(async () => {
      last = await this.summary()
      return predicate(last)
    }, timeoutMs, () => `${what}; last summary: ${brief(last)}`)
  }

  /** Waits until each connection in indices has at least min (or min[k]) events. */
  waitCounts (indices, min, timeoutMs = 15000) {
    return this.waitSummary(
      (s) => indices.every((i, k) => s[i].count >= (Array.isArray(min) ? min[k] : min)),
      timeoutMs, `connections did not receive their events (want ${Array.isArray(min) ? 'per-connection counts' : min})`)
  }

  kill (signal = 'SIGKILL') {
    if (this.alive) this.child.kill(signal)
    return this.exited
  }

  /** Asks the child to exit; kills it if it does not within timeoutMs. */
  async stop (timeoutMs = 5000) {
    if (!this.alive) return this.exited
    this.request({ cmd: 'exit' }, timeoutMs).catch(() => {})
    const timer = setTimeout(() => this.kill('SIGKILL'), timeoutMs)
    try {
      return await this.exited
    } finally {
      clearTimeout(timer)
    }
  }
}

function brief (summary) {
  if (!summary) return 'none'
  const counts = new Map()
  for (const s of summary) {
    const key = `count=${s.count} head=${s.head} ended=${s.ended} eof=${s.eof} closed=${s.closed} error=${s.error}`
    counts.set(key, (counts.get(key) || 0) + 1)
  }
  return [...counts].slice(0, 8).map(([k, n]) => `${n}x{${k}}`).join(', ')
}

module.exports = { Clients }
