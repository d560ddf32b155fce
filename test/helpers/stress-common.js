'use strict'
// Shared by the fault tests in test/stress/ (run by scripts/stress.js).
//
// - the scale: SSE_STRESS_SCALE=ci (default) or full; scaled({ ci, full })
// - probes: RSS and fd count of a process (/proc/<pid>), the kernel's TCP
//   memory (/proc/net/sockstat), the machine's load
// - figures: record(scenario, figures) merges them into
//   test/stress/results/<scenario>.json, which the runner prints as a table
// - the native load generator (bench/loadgen.cpp), built by the bench preset into build-cmake/bench/
//   when missing or older than its source; it holds up to 10k connections in
//   a process of its own, parses every event and checks per-connection order.

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { buildTools } = require('../../bench/tools')

const ROOT = path.join(__dirname, '..', '..')
const RESULTS = path.join(ROOT, 'test', 'stress', 'results')
const SCALE = process.env.SSE_STRESS_SCALE === 'full' ? 'full' : 'ci'
const KiB = 1024
const MiB = 1024 * 1024
const PAGE = 4096 // sockstat counts TCP memory in pages

/** The value for the current scale. */
function scaled (values) {
  if (!(SCALE in values)) throw new Error(`no value for scale ${SCALE}`)
  return values[SCALE]
}

// ---- probes -----------------------------------------------------------------

/** { rss, fds } of a process, from /proc (bytes; open file descriptors). */
function procStats (pid = process.pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8')
  const m = /VmRSS:\s+(\d+) kB/.exec(status)
  return { rss: m ? Number(m[1]) * KiB : NaN, fds: fs.readdirSync(`/proc/${pid}/fd`).length }
}

/** The TCP line of /proc/net/sockstat: { inuse, orphan, tw, alloc, memPages, memBytes }. */
function sockstat () {
  const text = fs.readFileSync('/proc/net/sockstat', 'utf8')
  const m = /TCP: inuse (\d+) orphan (\d+) tw (\d+) alloc (\d+) mem (\d+)/.exec(text)
  if (!m) throw new Error(`unexpected /proc/net/sockstat: ${text}`)
  const [inuse, orphan, tw, alloc, memPages] = m.slice(1).map(Number)
  return { inuse, orphan, tw, alloc, memPages, memBytes: memPages * PAGE }
}

/** net.ipv4.tcp_rmem / tcp_wmem as [min, default, max]. */
function tcpBufSysctl (name) {
  return fs.readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim().split(/\s+/).map(Number)
}

/** The 1-minute load average and the core count (figures are noisy on a loaded machine). */
function machineLoad () {
  return { loadavg1: Number(os.loadavg()[0].toFixed(2)), cores: os.availableParallelism() }
}

/** Least-squares slope of ys over xs. */
function slope (xs, ys) {
  const n = xs.length
  if (n < 2) return 0
  const mx = xs.reduce((a, b) => a + b, 0) / n
  const my = ys.reduce((a, b) => a + b, 0) / n
  let num = 0
  let den = 0
  for (let i = 0; i < n; i++) {
    num += (xs[i] - mx) * (ys[i] - my)
    den += (xs[i] - mx) ** 2
  }
  return den === 0 ? 0 : num / den
}

/**
 * Resolves with promise's value, or, when it has not settled within ms, with
 * onTimeout()'s (e.g. killing a process, whose exit then settles it). The
 * timer is cleared either way, so nothing keeps the process alive.
 */
function orAfter (promise, ms, onTimeout) {
  let timer
  const late = new Promise((resolve) => { timer = setTimeout(() => resolve(onTimeout()), ms) })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

const mib = (bytes) => Number((bytes / MiB).toFixed(2))

// ---- figures ----------------------------------------------------------------

/**
 * Merges figures into test/stress/results/<scenario>.json: one object per
 * test name ({ figure: value | { value, bound } }). Written at once, so a test
 * that fails later still leaves what it measured.
 */
function record (scenario, testName, figures) {
  fs.mkdirSync(RESULTS, { recursive: true })
  const file = path.join(RESULTS, `${scenario}.json`)
  let doc = null
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'))
  } catch {}
  if (!doc || doc.scale !== SCALE || doc.pid !== process.pid) {
    doc = { scenario, scale: SCALE, pid: process.pid, started: new Date().toISOString(), tests: {} }
  }
  doc.tests[testName] = { ...(doc.tests[testName] || {}), ...figures, load: machineLoad() }
  doc.updated = new Date().toISOString()
  const tmp = `${file}.${process.pid}.tmp`
  fs.writeFileSync(tmp, JSON.stringify(doc, null, 2) + '\n')
  fs.renameSync(tmp, file)
}

/** A figure with the bound it was checked against (for the table). */
function fig (value, bound) {
  return bound === undefined ? value : { value, bound }
}

/** Minimal chunked-body decoder (RFC 9112 7.1); calls onData / onEnd; throws on bad framing. */
class Dechunker {
  constructor (onData, onEnd) {
    this.onData = onData
    this.onEnd = onEnd
    this.state = 'size'
    this.line = ''
    this.left = 0
  }

  push (buf) {
    let i = 0
    while (i < buf.length) {
      if (this.state === 'size' || this.state === 'trailer') {
        const nl = buf.indexOf(10, i)
        const end = nl < 0 ? buf.length : nl + 1
        this.line += buf.toString('latin1', i, end)
        i = end
        if (nl < 0) return
        if (!this.line.endsWith('\r\n')) throw new Error(`bad chunk line ${JSON.stringify(this.line)}`)
        const line = this.line.slice(0, -2)
        this.line = ''
        if (this.state === 'trailer') {
          if (line === '') { this.state = 'done'; this.onEnd() }
          continue
        }
        if (!/^[0-9a-fA-F]+$/.test(line)) throw new Error(`bad chunk size ${JSON.stringify(line)}`)
        this.left = parseInt(line, 16)
        this.state = this.left === 0 ? 'trailer' : 'data'
      } else if (this.state === 'data') {
        const take = Math.min(this.left, buf.length - i)
        this.onData(buf.subarray(i, i + take))
        i += take
        this.left -= take
        if (this.left === 0) this.state = 'cr'
      } else if (this.state === 'cr' || this.state === 'lf') {
        if (buf[i] !== (this.state === 'cr' ? 13 : 10)) throw new Error('missing CRLF after chunk data')
        i++
        this.state = this.state === 'cr' ? 'lf' : 'size'
      } else {
        throw new Error(`bytes after the end of the body (${buf.length - i})`)
      }
    }
  }
}

// ---- the load generator -----------------------------------------------------

/** Builds bench/loadgen.cpp when needed, as bench/run.js does (bench/tools.js: the bench preset). */
function buildLoadgen () {
  return buildTools(['loadgen']).loadgen
}

/**
 * Starts the load generator. `ready` resolves with the number of connections
 * that got a 200 head; `done` with its JSON summary once it exits (by itself:
 * --expect met, every connection gone, or --duration over).
 */
function loadgen ({ port, n, path: p, expect = 0, duration = 60, sources, batch, sample = 200 }) {
  const bin = buildLoadgen()
  const args = ['--port', String(port), '--connections', String(n), '--path', p,
    '--expect', String(expect), '--duration', String(duration), '--sample', String(Math.min(sample, n)), '--json']
  if (sources) args.push('--sources', String(sources))
  if (batch) args.push('--batch', String(batch))
  const proc = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout.on('data', (c) => { out += c })
  let exited = false
  const ready = new Promise((resolve, reject) => {
    proc.stderr.on('data', (c) => {
      err += c
      const m = err.match(/READY (\d+)/)
      if (m) resolve(Number(m[1]))
    })
    proc.once('exit', (code, signal) => reject(new Error(`loadgen ended before it was ready (code ${code}, signal ${signal}): ${err.trim()}`)))
  })
  ready.catch(() => {})
  const done = new Promise((resolve) => {
    proc.once('exit', (code, signal) => {
      exited = true
      let result
      try { result = JSON.parse(out) } catch { result = { error: err.trim() || 'no output' } }
      resolve({ ...result, exitCode: code, signal, stderr: err.trim() })
    })
  })
  return {
    pid: proc.pid,
    ready,
    done,
    get exited () { return exited },
    kill (signal = 'SIGTERM') {
      if (!exited) proc.kill(signal)
      return done
    }
  }
}

module.exports = {
  ROOT,
  RESULTS,
  SCALE,
  KiB,
  MiB,
  PAGE,
  scaled,
  orAfter,
  procStats,
  sockstat,
  tcpBufSysctl,
  machineLoad,
  slope,
  mib,
  record,
  fig,
  buildLoadgen,
  loadgen,
  Dechunker
}
