'use strict'
// The benchmark: every scenario against every server, in one run, as ratios.
//
//   node bench/run.js [--quick] [--servers a,b] [--scenarios a,b] [--connections N] [--check]
//                     [--storm-first replay|tick] [--storm-rows a,b] [--storm-token HS256|RS256|ES256]
//
// --check exits non-zero when a scenario failed or a burst, resume or pocketbase
// client missed events (CI runs a tiny smoke of the benchmark that way).
//
// Servers: floor (bench/floor.c, the C reference), native (sse-fanout, taken-over
// sockets), js (sse-fanout, JS transport), plain (node:http + a res.write loop),
// better-sse (a channel); the pocketbase scenario (lib/pocketbase.js) runs on
// native only; the history scenarios (resume, cost-history, history-memory:
// bench/scenarios/history.js) run on the servers with a history (native, js,
// plain). The bus scenarios (bus, cost-bus, bus-stream: bench/scenarios/bus.js)
// start their own redis-server and several instances (native with --bus) and
// run once, on the native row. The mercure scenario (bench/scenarios/mercure.js)
// starts its own server (servers/mercure-server.js, a MercureHub) and runs once,
// on the native row. The compression scenario (bench/scenarios/compression.js)
// starts its own servers (node-server.js with and without --compression,
// servers/express-compression-server.js) and runs once, on the native row. The
// storm scenario (bench/scenarios/storm.js, issue 17's connect storm) starts
// its own servers (servers/storm-*.js: the native listener, the takeover path,
// uWebSockets.js, node:http) and runs once, on the native row; it is not in the
// default list (it waits 45 s per row): --scenarios storm. The load generator
// (bench/loadgen.cpp) runs in its own process.
// Results print as tables and are written to bench/results/*.json.
// bench/README.md says what each figure means and how to reproduce it.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')
const { buildTools, dir: buildDir } = require('./tools')
const { historyScenarios, historyRatios } = require('./scenarios/history')
const { busScenarios, busRatios, busProblems } = require('./scenarios/bus')
const { mercureScenarios, mercureRatios, mercureProblems } = require('./scenarios/mercure')
const { compressionScenarios, compressionRatios, compressionProblems } = require('./scenarios/compression')
const { stormScenarios, stormRatios, stormProblems } = require('./scenarios/storm')
const args = process.argv.slice(2)
const flag = (name) => args.includes(`--${name}`)
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : fallback
}
const quick = flag('quick')
const N = Number(option('connections', quick ? 1000 : 10000))
const servers = option('servers', 'floor,native,js,plain,better-sse').split(',')
const scenarios = option('scenarios', 'burst,steady,topics,memory,cost,pocketbase,pocketbase-hostile,resume,cost-history,history-memory,bus,cost-bus,bus-stream,mercure,compression').split(',')
const steadySeconds = quick ? 3 : 10
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

// ---- build -------------------------------------------------------------------

function build () {
  buildTools(['loadgen', 'floor']) // CMake targets of the bench preset, into build-cmake/bench/
  // The baselines of bench/package.json: better-sse, express with
  // compression for the compression scenario, uWebSockets.js for the storm.
  const needed = [
    ...(servers.includes('better-sse') ? ['better-sse'] : []),
    ...(scenarios.includes('compression') ? ['express', 'compression'] : []),
    ...(scenarios.includes('storm') ? ['@trufflesuite/uws-js-unofficial'] : [])
  ]
  if (needed.some((name) => !fs.existsSync(path.join(__dirname, 'node_modules', name)))) {
    const r = spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: __dirname, stdio: 'inherit' })
    if (r.status !== 0) throw new Error(`installing the bench baselines (${needed.join(', ')}) failed`)
  }
}

// ---- processes -------------------------------------------------------------

// Every server and load generator this run started and that still runs: killed
// when the run is interrupted (SIGINT, SIGTERM), so none outlives it. (The
// redis-server of the bus scenarios is killed by test/helpers/redis.js's own
// handler, which runs first.)
const children = new Set()
function spawnChild (file, argv, options) {
  const proc = spawn(file, argv, options)
  children.add(proc)
  proc.once('exit', () => children.delete(proc))
  return proc
}
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const proc of children) proc.kill('SIGKILL')
    process.exit(130)
  })
}

function request (port, method, pathname) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: pathname, agent: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { body += c })
      res.on('end', () => {
        try { resolve(body ? JSON.parse(body) : {}) } catch { resolve({}) }
      })
    })
    req.setTimeout(120000, () => req.destroy(new Error(`${method} ${pathname} timed out`)))
    req.on('error', reject)
    req.end()
  })
}

// serverArgs go to servers/node-server.js after the port (e.g. --history);
// redis-pubsub is servers/redis-pubsub-server.js (the bus scenario's tutorial
// baseline), which takes the port and its arguments; mercure is
// servers/mercure-server.js (the mercure scenario's MercureHub);
// express-compression is servers/express-compression-server.js (the
// compression scenario's baseline).
async function startServer (name, nodeFlags = [], serverArgs = []) {
  const node = (script, rest) => spawnChild(process.execPath, ['--expose-gc', ...nodeFlags, path.join(__dirname, 'servers', script), ...rest], { stdio: ['ignore', 'pipe', 'inherit'] })
  const proc = name === 'floor'
    ? spawnChild(path.join(buildDir, 'floor'), ['--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] })
    : name === 'redis-pubsub'
      ? node('redis-pubsub-server.js', ['0', ...serverArgs])
      : name === 'mercure'
        ? node('mercure-server.js', ['0', ...serverArgs])
        : name === 'express-compression'
          ? node('express-compression-server.js', ['0', ...serverArgs])
          : node('node-server.js', [name, '0', ...serverArgs])
  const port = await new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${name} did not start`)), 20000)
    proc.stdout.on('data', (c) => {
      out += c
      const m = out.match(/LISTENING (\d+)/)
      if (m) { clearTimeout(timer); resolve(Number(m[1])) }
    })
    proc.once('exit', (code) => { clearTimeout(timer); reject(new Error(`${name} exited with ${code}`)) })
  })
  return {
    port,
    async stop () {
      if (proc.exitCode !== null) return
      proc.kill('SIGTERM')
      const exited = new Promise((resolve) => proc.once('exit', resolve))
      const timer = setTimeout(() => proc.kill('SIGKILL'), 8000)
      await exited
      clearTimeout(timer)
    }
  }
}

/**
 * Starts the load generator; `ready` resolves once every connection has its head;
 * with `hold`, `met` resolves once every connection has its `expect` events (the
 * connections stay open until stop()). `acceptEncoding` (gzip, deflate) asks for
 * compressed responses and decodes them. `batch` is how many connections are in
 * flight at once (the load generator's default: 256; the storm: all of them).
 */
// cpu: run the load generator on that CPU only (taskset), where a scenario
// pins the server to the others.
function loadgen ({ port, n, path: p = '/events?topics=all', expect = 0, duration = 60, dataPrefix, headers = [], hold = false, acceptEncoding = null, batch = null, cpu = null }) {
  const bin = path.join(buildDir, 'loadgen')
  const proc = spawnChild(cpu === null ? bin : 'taskset', [
    ...(cpu === null ? [] : ['-c', String(cpu), bin]),
    '--port', String(port), '--connections', String(n), '--path', p,
    '--expect', String(expect), '--duration', String(duration), '--json',
    ...(dataPrefix ? ['--data-prefix', dataPrefix] : []),
    ...headers.flatMap((h) => ['--header', h]),
    ...(hold ? ['--hold'] : []),
    ...(acceptEncoding ? ['--accept-encoding', acceptEncoding] : []),
    ...(batch ? ['--batch', String(batch)] : [])
  ], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  proc.stdout.on('data', (c) => { out += c })
  const line = (re, what) => {
    const seen = new Promise((resolve, reject) => {
      proc.stderr.on('data', () => {
        const m = err.match(re)
        if (m) resolve(Number(m[1]))
      })
      proc.once('exit', () => reject(new Error(`loadgen ended before ${what}: ${err.trim()}`)))
    })
    seen.catch(() => {})
    return seen
  }
  proc.stderr.on('data', (c) => { err += c })
  const ready = line(/READY (\d+)/, 'it was ready')
  const met = line(/DONE (\d+)/, 'every connection had its events')
  // 'close', not 'exit': 'exit' may come before the last of stdout was read,
  // and a report cut short read as "no output" (a bench smoke run once
  // failed with only the loadgen's READY line for an error).
  const done = new Promise((resolve) => {
    proc.once('close', (code, signal) => {
      try {
        resolve(JSON.parse(out))
      } catch {
        const why = signal ? `killed by ${signal}` : `exit code ${code}`
        resolve({ error: `${err.trim() || 'no output'} (${why}, ${out.length} bytes of report)` })
      }
    })
  })
  return { ready, met, done, stop: () => proc.kill('SIGTERM') }
}

// ---- scenarios -------------------------------------------------------------

const EVENT_BYTES = 256

async function burst (server) {
  const lg = loadgen({ port: server.port, n: N, expect: 20, duration: 60 })
  const connected = await lg.ready
  await sleep(300)
  await request(server.port, 'POST', `/publish?topic=all&count=20&size=${EVENT_BYTES}`)
  const r = await lg.done
  return {
    connected,
    complete: r.complete_connections,
    deliveriesPerS: r.deliveries_per_s,
    timeToLastMs: r.duration_s * 1000,
    p50Ms: r.latency_us?.p50 / 1000,
    p99Ms: r.latency_us?.p99 / 1000,
    inOrderViolations: r.in_order_violations
  }
}

async function steady (server) {
  const publishes = steadySeconds * 5
  const lg = loadgen({ port: server.port, n: N, expect: publishes, duration: steadySeconds + 60 })
  const connected = await lg.ready
  await sleep(300)
  await request(server.port, 'GET', '/stats?reset=1')
  const start = Date.now()
  for (let i = 0; i < publishes; i++) {
    const wait = start + i * 200 - Date.now()
    if (wait > 0) await sleep(wait)
    await request(server.port, 'POST', `/publish?topic=all&count=1&size=${EVENT_BYTES}`)
  }
  const stats = await request(server.port, 'GET', '/stats')
  const r = await lg.done
  return {
    connected,
    complete: r.complete_connections,
    p50Ms: r.latency_us?.p50 / 1000,
    p99Ms: r.latency_us?.p99 / 1000,
    eldP99Ms: stats.eldP99Ms,
    elu: stats.elu
  }
}

async function topics (server) {
  // Every connection: one of 1000 exact topics and one of 50 patterns.
  const lg = loadgen({ port: server.port, n: N, path: '/events?topics=t{mod:1000},g{mod:50}/*', duration: quick ? 15 : 30 })
  const connected = await lg.ready
  await sleep(300)
  let expected = 0
  const rounds = quick ? 20 : 100
  let seed = 12345
  const random = (k) => { seed = (seed * 1103515245 + 12345) % 2147483648; return seed % k }
  const per = (k) => Math.floor(N / k) + (random(N % k ? 2 : 1) ? 0 : 0)
  for (let i = 0; i < rounds; i++) {
    const exact = `t${random(1000)}`
    const pattern = `g${random(50)}/news`
    await request(server.port, 'POST', `/publish?topic=${exact}&count=20&size=${EVENT_BYTES}`)
    await request(server.port, 'POST', `/publish?topic=${pattern}&count=20&size=${EVENT_BYTES}`)
    expected += 20 * (per(1000) + per(50))
  }
  const cost = await request(server.port, 'POST', `/cost?topic=t${random(1000)}&n=2000&size=${EVENT_BYTES}`)
  await sleep(2000)
  lg.stop()
  const r = await lg.done
  return {
    connected,
    deliveries: r.events,
    expectedAtLeast: expected,
    deliveriesPerS: r.deliveries_per_s,
    publishNs: cost.nsPerPublish
  }
}

async function memory (server) {
  // Before the baseline, n requests go through the server's plain HTTP path
  // (GET /warm, answered and closed at once), so V8's young generation, malloc
  // arenas and Node's pools have grown as far as accepting n connections makes
  // them grow. What the figure then shows is what each open SSE connection holds.
  const out = {}
  for (const n of option('connections') ? [N] : quick ? [1000] : [1000, 10000]) {
    const warm = loadgen({ port: server.port, n, path: '/warm', duration: 60 })
    await warm.ready.catch(() => {})
    warm.stop()
    await warm.done
    const base = await request(server.port, 'GET', '/stats?gc=1')
    const lg = loadgen({ port: server.port, n, duration: 120 })
    const connected = await lg.ready
    await sleep(1000)
    const s = await request(server.port, 'GET', '/stats?gc=1')
    out[`rssPerConnKiB@${n}`] = (s.rss - base.rss) / connected / 1024
    if (s.heapUsed !== undefined) out[`heapPerConnKiB@${n}`] = (s.heapUsed - base.heapUsed) / connected / 1024
    lg.stop()
    await lg.done
    await waitForConnections(server, 0)
  }
  return out
}

// The figure as users see it: the server runs with Node's default flags (no
// pinned young generation), nothing warms it first and no GC is forced. RSS is
// read once before the load generator connects and once MEMORY_DEFAULT_SETTLE_MS
// after the last connection has its head, and the difference is divided by the
// connections. V8's young generation keeps the pages it grew under the accept
// burst, and they count here, as they do on a user's server.
const MEMORY_DEFAULT_SETTLE_MS = 45000

async function memoryDefault (server) {
  const out = {}
  const n = N
  const base = await request(server.port, 'GET', '/stats')
  const lg = loadgen({ port: server.port, n, duration: MEMORY_DEFAULT_SETTLE_MS / 1000 + 120 })
  const connected = await lg.ready
  await sleep(MEMORY_DEFAULT_SETTLE_MS)
  const s = await request(server.port, 'GET', '/stats')
  out.connected = connected
  out.rssBeforeMiB = base.rss / 2 ** 20
  out.rssAfterMiB = s.rss / 2 ** 20
  out[`rssPerConnKiB@${n}`] = (s.rss - base.rss) / connected / 1024
  if (s.heapUsed !== undefined) out[`heapPerConnKiB@${n}`] = (s.heapUsed - base.heapUsed) / connected / 1024
  lg.stop()
  await lg.done
  await waitForConnections(server, 0)
  return out
}

async function waitForConnections (server, n) {
  const deadline = Date.now() + 20000
  while (Date.now() < deadline) {
    const s = await request(server.port, 'GET', '/stats')
    if (s.connections === n) return
    await sleep(100)
  }
}

async function cost (server) {
  if (server.name === 'floor') return { note: 'no JS thread' }
  // Connection i subscribes to all (N subscribers), s<i%10> (N/10) and d<i%1000> (N/1000).
  const lg = loadgen({ port: server.port, n: N, path: '/events?topics=all,s{mod:10},d{mod:1000}', duration: 120 })
  await lg.ready
  await sleep(500)
  // Warm-up on a topic nobody has, so the JIT has compiled the publish path.
  await request(server.port, 'POST', `/cost?topic=nobody&n=50000&size=${EVENT_BYTES}`)
  const out = {}
  for (const [topic, subs] of [['d1', N / 1000], ['s1', N / 10], ['all', N]]) {
    // Enough calls to time, few enough that the plain loop finishes.
    const n = Math.max(10, Math.min(2000, Math.floor(200000 / subs)))
    const r = await request(server.port, 'POST', `/cost?topic=${topic}&n=${n}&size=${EVENT_BYTES}`)
    out[`ns@${subs}`] = r.nsPerPublish
    await sleep(1500)
  }
  lg.stop()
  await lg.done
  return out
}

// PocketBase realtime (lib/pocketbase.js) on the native server: connection i is a
// realtime client given, server-side, the subscription of the variant for key
// i % 100 (see servers/node-server.js); every record reaches every client.
//   plain     every client on posts/*: one key, listRule "" (no rule, no filter)
//   keys      posts/*?options={query:{key:"K"}}: 100 keys without a filter (a frame
//             per key, as filtered, but nothing to evaluate)
//   filtered  posts/*?options={query:{filter:"views > K"}}: 100 keys, 100 filters
//   rule      posts/* as one of 100 users; listRule reads @request.auth: one key,
//             100 identities (groups), the rule evaluated once per identity
// Per variant: a burst of PB_RECORDS records to fresh connections (deliveries/s,
// order), then PB calls timed one by one to fresh connections (JS thread time).
const PB_VARIANTS = ['plain', 'keys', 'filtered', 'rule']
const PB_RECORDS = 20
const PB_DATA_PREFIX = '{"record":{"ts":'

async function pocketbase (server) {
  const calls = Math.max(200, Math.min(2000, Math.floor(4e6 / N)))
  const path = (v) => `/api/realtime?v=${v}&k={mod:100}`
  const variants = {}
  for (const v of PB_VARIANTS) {
    const lg = loadgen({ port: server.port, n: N, path: path(v), expect: PB_RECORDS, duration: 60, dataPrefix: PB_DATA_PREFIX })
    const connected = await lg.ready
    await sleep(300)
    const b = await request(server.port, 'POST', `/pb/burst?v=${v}&count=${PB_RECORDS}`)
    const r = await lg.done
    await waitForConnections(server, 0)
    const lc = loadgen({ port: server.port, n: N, path: path(v), expect: calls, duration: 120, dataPrefix: PB_DATA_PREFIX })
    const costConnected = await lc.ready
    await sleep(300)
    const c = await request(server.port, 'POST', `/pb/cost?v=${v}&n=${calls}`)
    const rc = await lc.done
    await waitForConnections(server, 0)
    variants[v] = {
      keys: b.stats?.keys,
      groups: b.stats?.groups,
      identities: b.stats?.identities,
      connected,
      complete: r.complete_connections,
      deliveries: r.events,
      expected: connected * PB_RECORDS,
      deliveriesPerS: r.deliveries_per_s,
      timeToLastMs: r.duration_s * 1000,
      p50Ms: r.latency_us?.p50 / 1000,
      p99Ms: r.latency_us?.p99 / 1000,
      burstJsMs: b.totalNs / 1e6,
      burstCallUs: b.totalNs / PB_RECORDS / 1e3,
      callMedianUs: c.medianNs / 1e3,
      callP99Us: c.p99Ns / 1e3,
      calls: c.n,
      inOrderViolations: r.in_order_violations + rc.in_order_violations,
      untimed: r.untimed_events + rc.untimed_events,
      connectEvents: r.skipped_events,
      costConnected,
      costComplete: rc.complete_connections
    }
  }
  // Rule and filter evaluation: the extra JS time (medians) over the plain
  // broadcast (one key, no rule, no filter), per subscriber and per key or
  // identity; filtered − keys is the filters alone (the keys variant has the
  // same frames to encode and hand over), keys − plain the frame per key.
  const ns = (v) => variants[v].callMedianUs * 1e3
  return {
    variants,
    filterNsPerSubscriber: (ns('filtered') - ns('plain')) / variants.filtered.connected,
    filterNsPerKey: (ns('filtered') - ns('plain')) / variants.filtered.keys,
    filterOnlyNsPerKey: (ns('filtered') - ns('keys')) / variants.filtered.keys,
    frameNsPerKey: (ns('keys') - ns('plain')) / variants.keys.keys,
    ruleNsPerSubscriber: (ns('rule') - ns('plain')) / variants.rule.connected,
    ruleNsPerIdentity: (ns('rule') - ns('plain')) / variants.rule.identities
  }
}
pocketbase.nativeOnly = 'no PocketBase layer: the pure-JS baselines and the floor have none'

// The hostile PocketBase guest of issue 10 (bench/pb-hostile.js, in a process
// of its own that is the app): the JS-thread time of one 10 KB
// broadcastRecord() per attack, the best round's median; the target is 5 ms.
async function pocketbaseHostile () {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'pb-hostile.js'), '--json', '--rounds', quick ? '1' : '3'], { encoding: 'utf8', timeout: 300000 })
  if (r.status !== 0) throw new Error(`pb-hostile.js failed: ${(r.stderr || r.error?.message || '').slice(-500)}`)
  const out = JSON.parse(r.stdout.trim().split('\n').pop())
  const values = { targetMs: out.targetMs, worstMedianMs: out.worstMedianMs }
  for (const row of out.rows) values[`${row.attack} (${row.subscriptions} subs) ms`] = row.medianMs
  return values
}
pocketbaseHostile.nativeOnly = pocketbase.nativeOnly
pocketbaseHostile.ownServers = true

// memory-default and storm are not in the default list (nor in --quick): they
// wait 45 s per server.
// A scenario may name the servers it runs on (`servers`, the others get its
// `note`), arguments for them (`serverArgs`), or start its own (`ownServers`).
const SCENARIOS = {
  burst,
  steady,
  topics,
  memory,
  'memory-default': memoryDefault,
  cost,
  pocketbase,
  'pocketbase-hostile': pocketbaseHostile,
  ...historyScenarios({ request, startServer, loadgen, waitForConnections, sleep, N, EVENT_BYTES }),
  ...busScenarios({ request, startServer, loadgen, sleep, N, EVENT_BYTES, quick }),
  ...mercureScenarios({ request, startServer, loadgen, sleep, N, EVENT_BYTES, quick }),
  ...compressionScenarios({ request, startServer, loadgen, sleep, N, quick }),
  ...stormScenarios({ request, spawnChild, loadgen, sleep, N, EVENT_BYTES, first: option('storm-first', 'replay'), only: option('storm-rows', null), tokenAlg: option('storm-token', null) })
}

// ---- report ----------------------------------------------------------------

function fmt (v) {
  if (v === undefined || v === null || Number.isNaN(v)) return '–'
  if (typeof v !== 'number') return String(v)
  if (Math.abs(v) >= 1e6) return `${(v / 1e6).toFixed(2)}M`
  if (Math.abs(v) >= 1e4) return `${(v / 1e3).toFixed(0)}k`
  if (Math.abs(v) >= 100) return v.toFixed(0)
  if (Math.abs(v) >= 1) return v.toFixed(2)
  return v.toFixed(3)
}

function table (title, rows, columns, format = fmt) {
  const keys = columns || [...new Set(rows.flatMap((r) => Object.keys(r.values)))]
  const lines = [`### ${title}`, '', `| server | ${keys.join(' | ')} |`, `| --- |${keys.map(() => ' --- |').join('')}`]
  for (const r of rows) lines.push(`| ${r.server} | ${keys.map((k) => format(r.values[k])).join(' | ')} |`)
  return lines.join('\n')
}

// The pocketbase scenario: one row per variant ("native: plain" is the variant,
// not the plain server), and a note for the servers without a PocketBase layer.
function pocketbaseTable (rows) {
  const flat = []
  for (const r of rows) {
    if (r.values.variants) {
      for (const [v, values] of Object.entries(r.values.variants)) flat.push({ server: `${r.server}: ${v}`, values })
    } else {
      flat.push(r)
    }
  }
  // The rest of each variant's figures are in the results file.
  const columns = ['keys', 'groups', 'identities', 'connected', 'complete', 'deliveries', 'deliveriesPerS', 'timeToLastMs',
    'p50Ms', 'p99Ms', 'burstJsMs', 'burstCallUs', 'callMedianUs', 'callP99Us', 'inOrderViolations']
  if (flat.some((r) => r.values.note)) columns.push('note')
  if (flat.some((r) => r.values.error)) columns.push('error')
  return table('pocketbase', flat, columns, fmtCount)
}

// Counts as integers (0 events out of order, not 0.000).
function fmtCount (v) {
  return Number.isInteger(v) && Math.abs(v) < 1e4 ? String(v) : fmt(v)
}

function ratios (results) {
  const lines = []
  const get = (scenario, server, key) => results[scenario]?.find((r) => r.server === server)?.values[key]
  const ratio = (a, b) => (a && b ? (a / b).toFixed(2) + '×' : '–')
  if (results.burst) {
    const d = (s) => get('burst', s, 'deliveriesPerS')
    lines.push(`- burst throughput, native vs plain: ${ratio(d('native'), d('plain'))}, vs better-sse: ${ratio(d('native'), d('better-sse'))}, vs floor: ${ratio(d('native'), d('floor'))}; js transport vs plain: ${ratio(d('js'), d('plain'))}`)
  }
  if (results.steady) {
    lines.push(`- steady delivery p99, native / floor: ${ratio(get('steady', 'native', 'p99Ms'), get('steady', 'floor', 'p99Ms'))}; event-loop delay p99 native: ${fmt(get('steady', 'native', 'eldP99Ms'))} ms, plain: ${fmt(get('steady', 'plain', 'eldP99Ms'))} ms`)
  }
  if (results.memory) {
    const measured = Object.keys(results.memory[0]?.values || {}).filter((key) => key.startsWith('rssPerConnKiB@'))
    const k = measured.sort((a, b) => Number(a.split('@')[1]) - Number(b.split('@')[1])).pop() || 'rssPerConnKiB@0'
    lines.push(`- idle RSS per connection (${k.split('@')[1]} conns): native ${fmt(get('memory', 'native', k))} KiB, plain ${fmt(get('memory', 'plain', k))} KiB, better-sse ${fmt(get('memory', 'better-sse', k))} KiB, floor ${fmt(get('memory', 'floor', k))} KiB`)
  }
  if (results['memory-default']) {
    const k = `rssPerConnKiB@${N}`
    const measured = results['memory-default'].map((r) => `${r.server} ${fmt(r.values[k])} KiB`).join(', ')
    lines.push(`- idle RSS per connection as users see it (${N} conns, default flags, no GC, ${MEMORY_DEFAULT_SETTLE_MS / 1000} s after the last connect): ${measured}`)
  }
  const pb = results.pocketbase?.find((r) => r.server === 'native')?.values
  if (pb?.variants) {
    const v = pb.variants
    const n = v.plain.connected
    lines.push(`- pocketbase broadcastRecord to ${n} subscribers, JS thread per call (median): plain ${fmt(v.plain.callMedianUs)} µs, filtered (${v.filtered.keys} keys) ${fmt(v.filtered.callMedianUs)} µs = ${ratio(v.filtered.callMedianUs, v.plain.callMedianUs)}, rule (${v.rule.identities} identities) ${fmt(v.rule.callMedianUs)} µs = ${ratio(v.rule.callMedianUs, v.plain.callMedianUs)}`)
    lines.push(`- pocketbase extra JS time over plain: filtered ${fmt(pb.filterNsPerSubscriber)} ns per subscriber, ${fmt(pb.filterNsPerKey)} ns per key (of which the filter ${fmt(pb.filterOnlyNsPerKey)} ns, the key's own frame ${fmt(pb.frameNsPerKey)} ns: keys variant, ${ratio(v.keys.callMedianUs, v.plain.callMedianUs)} plain); rule ${fmt(pb.ruleNsPerSubscriber)} ns per subscriber, ${fmt(pb.ruleNsPerIdentity)} ns per identity`)
    const burstNative = get('burst', 'native', 'deliveriesPerS')
    lines.push(`- pocketbase deliveries/s, filtered vs plain: ${ratio(v.filtered.deliveriesPerS, v.plain.deliveriesPerS)}, rule vs plain: ${ratio(v.rule.deliveriesPerS, v.plain.deliveriesPerS)}${burstNative ? `; plain vs burst/native: ${ratio(v.plain.deliveriesPerS, burstNative)}` : ''}`)
  }
  const hostile = results['pocketbase-hostile']?.find((r) => r.server === 'native')?.values
  if (hostile?.targetMs) lines.push(`- pocketbase hostile guest, one 10 KB broadcastRecord, worst attack's median JS-thread time: ${fmt(hostile.worstMedianMs)} ms (target ${hostile.targetMs} ms)`)
  lines.push(...historyRatios(results, { fmt, ratio }))
  lines.push(...busRatios(results, { fmt, ratio }))
  lines.push(...mercureRatios(results, { fmt, ratio }))
  lines.push(...compressionRatios(results, { fmt, ratio }))
  lines.push(...stormRatios(results, { fmt, ratio }))
  return lines.join('\n')
}

async function main () {
  build()
  const meta = {
    date: new Date().toISOString(),
    node: process.version,
    cpus: `${os.cpus().length} × ${os.cpus()[0]?.model}`,
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    connections: N,
    quick
  }
  console.log(`sse-fanout benchmark ${meta.date}, ${meta.cpus}, Node ${meta.node}, ${N} connections${quick ? ' (quick)' : ''}`)
  const results = {}
  for (const scenario of scenarios) {
    if (!SCENARIOS[scenario]) throw new Error(`unknown scenario ${scenario}`)
    results[scenario] = []
    for (const name of servers) {
      const run = SCENARIOS[scenario]
      if (run.nativeOnly && name !== 'native') {
        results[scenario].push({ server: name, values: { note: run.nativeOnly } })
        continue
      }
      if (run.servers && !run.servers.includes(name)) {
        results[scenario].push({ server: name, values: { note: run.note } })
        continue
      }
      process.stderr.write(`${scenario} / ${name} ... `)
      // The memory scenario pins V8's young generation at 1 MiB per semi-space:
      // otherwise it grows by up to 32 MiB under the accept burst and keeps the
      // pages, which would be counted against every connection. memory-default
      // keeps Node's defaults: that growth is part of what users see.
      const server = run.ownServers
        ? { name, stop: async () => {} }
        : await startServer(name, scenario === 'memory' ? ['--max-semi-space-size=1'] : [], run.serverArgs)
      server.name = name
      let values
      try {
        values = await run(server)
      } catch (err) {
        values = { error: err.message }
      } finally {
        await server.stop()
      }
      process.stderr.write('done\n')
      results[scenario].push({ server: name, values })
    }
    const spec = SCENARIOS[scenario]
    console.log('\n' + (scenario === 'pocketbase'
      ? pocketbaseTable(results[scenario])
      : spec.table ? spec.table(scenario, results[scenario], { table, fmtCount }) : table(scenario, results[scenario], undefined, spec.counts ? fmtCount : fmt)))
  }
  console.log('\n' + ratios(results))
  const dir = path.join(__dirname, 'results')
  fs.mkdirSync(dir, { recursive: true })
  const file = path.join(dir, `${meta.date.replace(/[:.]/g, '-')}${quick ? '-quick' : ''}.json`)
  fs.writeFileSync(file, JSON.stringify({ meta, results }, null, 2))
  console.log(`\nresults: ${path.relative(root, file)}`)
  if (flag('check')) {
    const problems = []
    for (const [scenario, rows] of Object.entries(results)) {
      for (const r of rows) {
        if (r.values.error) problems.push(`${scenario}/${r.server}: ${r.values.error}`)
        if (scenario === 'burst' && r.values.complete !== r.values.connected) problems.push(`burst/${r.server}: ${r.values.complete} of ${r.values.connected} clients got every event`)
        if (scenario === 'resume' && !r.values.note) {
          const v = r.values
          if (!(v.connected > 0) || v.complete !== v.connected || v.deliveries !== v.expected) problems.push(`resume/${r.server}: ${v.complete} of ${v.connected} clients caught up (${v.deliveries} of ${v.expected} events)`)
          if (v.inOrderViolations !== 0 || v.untimed !== 0) problems.push(`resume/${r.server}: ${v.inOrderViolations} events out of order, ${v.untimed} not replayed events (a reset?)`)
        }
        for (const [v, x] of Object.entries(r.values.variants || {})) {
          const where = `${scenario}/${r.server} ${v}`
          if (!(x.connected > 0)) problems.push(`${where}: no client connected`)
          if (x.complete !== x.connected || x.deliveries !== x.expected) problems.push(`${where}: ${x.complete} of ${x.connected} clients got every record (${x.deliveries} of ${x.expected} deliveries)`)
          if (x.costComplete !== x.costConnected) problems.push(`${where}: ${x.costComplete} of ${x.costConnected} clients got every record of the timed calls`)
          if (x.inOrderViolations !== 0) problems.push(`${where}: ${x.inOrderViolations} records out of order`)
          if (x.untimed !== 0) problems.push(`${where}: ${x.untimed} events without a record timestamp`)
          if (x.connectEvents !== x.connected) problems.push(`${where}: ${x.connectEvents} PB_CONNECT events for ${x.connected} clients`)
        }
      }
    }
    problems.push(...busProblems(results))
    problems.push(...mercureProblems(results))
    problems.push(...compressionProblems(results))
    problems.push(...stormProblems(results))
    if (problems.length) {
      console.error(`bench check failed:\n  ${problems.join('\n  ')}`)
      process.exit(1)
    }
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
