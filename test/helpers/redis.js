'use strict'
// A real redis-server for the tests (Debian's package; CI installs it): on a
// free port of 127.0.0.1, with a temporary directory of its own, without
// persistence unless asked. A test file checks redisMissing() first and skips
// with its reason when the server is absent.
//
//   const redis = await startRedis(t)                      // stopped in t.after
//   const redis = await startRedis(t, { persistence: true }) // appendonly, fsync always
//   redis.port, redis.url, redis.dir, redis.pid, redis.running
//   await redis.cli('XLEN', 'k')            // redis-cli's stdout, trimmed
//   await redis.kill()                      // SIGKILL (stop(): SIGTERM, a clean shutdown)
//   await redis.start()                     // again, same port and directory
//   await redis.restart()                   // kill() then start()
//   await redis.pause(500)                  // CLIENT PAUSE 500 ALL: connected, every command waits 500 ms
//   redis.freeze(); redis.thaw()            // SIGSTOP / SIGCONT: connections are accepted, nothing answered
//   await redis.close()                     // kill, remove the directory (idempotent)
//   redisEnv({ REDIS_URL: redis.url })      // an env for other processes that run redis-cli
//   await readStream(t, redis, prefix)      // a hub's { epoch, entries } in Redis, decoded
//
// No process outlives the test process: every server is killed in its
// t.after (or close()), and any left is killed when the process exits or
// dies of SIGINT or SIGTERM; the harness never keeps the process alive.

const { spawn, execFile } = require('node:child_process')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { waitFor, within, cleanup } = require('./wait')
const { unsanitizedEnv } = require('./sanitized')

const SERVER_PATH = process.env.REDIS_SERVER_PATH || '/usr/bin/redis-server'
const CLI_PATH = process.env.REDIS_CLI_PATH || '/usr/bin/redis-cli'
const HOST = '127.0.0.1'
const READY_TIMEOUT_MS = 15000
const EXIT_TIMEOUT_MS = 10000
const CLI_TIMEOUT_MS = 10000
const LOG_BYTES = 16384

/** process.env without the sanitizer's variables, plus extra: for redis-server, redis-cli and scripts that run them. */
function redisEnv (extra = {}) {
  return unsanitizedEnv(extra)
}

// Servers not closed yet: killed when the process exits, or dies of SIGINT
// or SIGTERM (the signal is raised again once they are gone).
const live = new Set()
function killLive () {
  for (const server of live) server._killNow()
  live.clear()
}
process.on('exit', killLive)
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, function onSignal () {
    killLive()
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal)
  })
}

/** Why no Redis test can run here (a message for `skip`), or null. */
function redisMissing () {
  const programs = [
    ['redis-server', SERVER_PATH, 'apt-get install redis-server, or set REDIS_SERVER_PATH'],
    ['redis-cli', CLI_PATH, 'apt-get install redis-tools (redis-server depends on it), or set REDIS_CLI_PATH']
  ]
  for (const [name, file, hint] of programs) {
    try {
      fs.accessSync(file, fs.constants.X_OK)
    } catch {
      return `no ${name} at ${file} (${hint})`
    }
  }
  return null
}

/** A port nobody listens on right now (the server may still lose a race for it: start() retries). */
function freePort () {
  return new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.on('error', reject)
    probe.listen(0, HOST, () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })
}

/** Resolves true when the server answers PING with PONG within timeoutMs. */
function ping (port, timeoutMs = 1000) {
  return new Promise((resolve) => {
    const socket = net.connect(port, HOST)
    let answer = ''
    const done = (ok) => {
      socket.destroy()
      clearTimeout(timer)
      resolve(ok)
    }
    const timer = setTimeout(() => done(false), timeoutMs)
    socket.on('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      answer += chunk
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'))
    })
    socket.on('error', () => done(false))
    socket.on('close', () => done(false))
  })
}

class RedisServer {
  constructor (options) {
    this.persistence = options.persistence === true
    this.extraArgs = options.args || []
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sse-fanout-redis-'))
    this.port = 0
    this.child = null
    this.log = ''
    this.closed = false
    live.add(this)
  }

  get url () { return `redis://${HOST}:${this.port}` }
  get host () { return HOST }
  get pid () { return this.child ? this.child.pid : undefined }
  get running () { return this.child !== null }

  _args () {
    return [
      '--port', String(this.port), '--bind', HOST, '--dir', this.dir,
      '--daemonize', 'no', '--logfile', '', '--save', '',
      '--appendonly', this.persistence ? 'yes' : 'no', '--appendfsync', 'always',
      '--enable-debug-command', 'local',
      ...this.extraArgs
    ]
  }

  /** Starts the server (on a new free port the first time, else the same one); resolves once it answers PING. */
  async start () {
    if (this.closed) throw new Error('redis: start() after close()')
    if (this.child !== null) throw new Error('redis: start() while running')
    const fresh = this.port === 0
    for (let attempt = 1; ; attempt++) {
      if (fresh) this.port = await freePort()
      try {
        await this._spawn()
        return this
      } catch (err) {
        // Another process took the free port between the probe and the bind.
        if (!fresh || attempt >= 5 || !/Address already in use/.test(this.log)) throw err
      }
    }
  }

  async _spawn () {
    this.log = ''
    const child = spawn(SERVER_PATH, this._args(), { stdio: ['ignore', 'pipe', 'pipe'], env: redisEnv() })
    this.child = child
    // The harness never keeps the process alive: an unclosed server dies with it.
    child.unref()
    child.stdout.unref()
    child.stderr.unref()
    child.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      if (this.child === child) this.child = null
      resolve({ code, signal })
    }))
    const keep = (chunk) => { this.log = (this.log + chunk).slice(-LOG_BYTES) }
    child.stdout.on('data', keep)
    child.stderr.on('data', keep)
    child.on('error', keep)
    try {
      await waitFor(async () => {
        if (this.child !== child) throw new Error(`redis-server exited before it was ready:\n${this.log}`)
        return ping(this.port)
      }, READY_TIMEOUT_MS, () => `redis-server on port ${this.port} to answer PING; its log:\n${this.log}`, 50)
    } catch (err) {
      await this._end('SIGKILL')
      throw err
    }
  }

  async _end (signal) {
    const child = this.child
    if (child === null) return
    child.kill('SIGCONT') // a frozen server must run to end cleanly
    child.kill(signal)
    try {
      await within(child.exited, EXIT_TIMEOUT_MS, `redis-server to exit on ${signal}`)
    } catch (err) {
      child.kill('SIGKILL')
      await child.exited
      throw err
    }
  }

  /** SIGTERM: Redis shuts down cleanly (and writes its AOF); resolves once it exited. */
  stop () { return this._end('SIGTERM') }

  /** SIGKILL: gone at once, nothing written; resolves once it exited. */
  kill () { return this._end('SIGKILL') }

  /** kill() (or stop() with { signal: 'SIGTERM' }), then start() on the same port and directory. */
  async restart ({ signal = 'SIGKILL' } = {}) {
    await this._end(signal)
    return this.start()
  }

  /** CLIENT PAUSE ms ALL: connections stay open and commands wait, unanswered, for ms. */
  async pause (ms) {
    const out = await this.cli('CLIENT', 'PAUSE', String(ms), 'ALL')
    if (out !== 'OK') throw new Error(`CLIENT PAUSE answered ${out}`)
  }

  /** SIGSTOP: the kernel still accepts connections, the server answers nothing until thaw(). */
  freeze () { if (this.child) this.child.kill('SIGSTOP') }
  thaw () { if (this.child) this.child.kill('SIGCONT') }

  /** Runs redis-cli against this server; resolves with its stdout, trimmed (rejects on a failure or an error reply). */
  cli (...args) {
    return new Promise((resolve, reject) => {
      execFile(CLI_PATH, ['-h', HOST, '-p', String(this.port), ...args], { timeout: CLI_TIMEOUT_MS, encoding: 'utf8', env: redisEnv() }, (err, stdout, stderr) => {
        if (err) reject(new Error(`redis-cli ${args.join(' ')}: ${err.message}\n${stderr}`))
        else if (/^(ERR|WRONGTYPE|NOSCRIPT|LOADING|BUSY)\b/.test(stdout)) reject(new Error(`redis-cli ${args.join(' ')}: ${stdout.trim()}`))
        else resolve(stdout.trim())
      })
    })
  }

  /** Kills the server and removes its directory. Idempotent. */
  async close () {
    if (this.closed) return
    this.closed = true
    live.delete(this)
    try {
      await this.kill()
    } finally {
      fs.rmSync(this.dir, { recursive: true, force: true })
    }
  }

  // process 'exit': synchronous, so SIGKILL and rmSync only.
  _killNow () {
    if (this.child) this.child.kill('SIGKILL')
    fs.rmSync(this.dir, { recursive: true, force: true })
  }
}

/**
 * Starts a redis-server; with a test context t, closed in t.after.
 * @param {import('node:test').TestContext | null} t
 * @param {{ persistence?: boolean, args?: string[] }} [options]
 *   persistence: appendonly yes with fsync always (a SIGKILL loses nothing)
 *   args: more redis-server arguments
 */
async function startRedis (t, options = {}) {
  const server = new RedisServer(options)
  if (t) t.after(() => server.close())
  try {
    await server.start()
  } catch (err) {
    if (!t) await server.close()
    throw err
  }
  return server
}

/**
 * A hub's stream as the tests check it, read with a client of the test's own:
 * { epoch (meta's, null when missing), entries: [{ id, seq, epoch, topic,
 * data (a string; undefined for an entry that does not decode), users, origin }] }.
 */
async function readStream (t, redis, prefix) {
  const { createClient, RESP_TYPES } = require('@redis/client')
  const { keysFor, decodeEntry, RejectedEntry } = require('../../lib/redis')
  const client = createClient({ url: redis.url, socket: { reconnectStrategy: false } })
  client.on('error', () => {})
  await within(client.connect(), 5000, 'client.connect()')
  cleanup(t)(() => { if (client.isOpen) client.destroy() }, 'client.destroy()')
  const keys = keysFor(prefix)
  const raw = await client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }).sendCommand(['XRANGE', keys.stream, '-', '+'])
  const epoch = await client.sendCommand(['HGET', keys.meta, 'epoch'])
  client.destroy()
  const entries = raw.map(([id, fields]) => {
    const e = decodeEntry(fields)
    const rejected = e instanceof RejectedEntry
    return {
      id: String(id),
      seq: Number(String(id).split('-')[0]),
      epoch: rejected ? undefined : e.epoch,
      topic: rejected ? undefined : e.topic,
      data: rejected ? undefined : e.data.toString(),
      users: rejected ? undefined : e.users,
      origin: rejected ? undefined : e.origin
    }
  })
  return { epoch: epoch === null ? null : String(epoch), entries }
}

module.exports = { redisMissing, startRedis, RedisServer, ping, redisEnv, readStream }
