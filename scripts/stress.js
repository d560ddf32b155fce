'use strict'
// The fault tests (test/stress/*.stress.js), one process per scenario, in order,
// at a scale:
//
//   node scripts/stress.js [--scale ci|full] [--only slow,churn,...] [--soak-seconds S]
//
//   --scale ci    (default) smaller versions of each scenario, about 3 minutes
//                 in all: 1k clients, 10 churn cycles, 1k fd-reuse cycles, 60 s soak
//   --scale full  the figures: 10k clients (1k stalled), 100 churn cycles
//                 of 2k/4k connections, 10k fd-reuse cycles, a 10-minute soak at 10k
//   --only        a comma-separated subset of: injection, limits, fd-reuse, churn,
//                 shutdown, slow, soak
//   --soak-seconds overrides the soak's length (SSE_STRESS_SOAK_S)
//
// The scale reaches the tests as SSE_STRESS_SCALE. Each test writes its measured
// figures to test/stress/results/<scenario>.json; at the end they are printed as
// one table and gathered in test/stress/results/summary-<scale>.json, with each
// scenario's outcome, its wall time and the machine's load average (the figures
// are noisy on a shared machine). Exits non-zero when a scenario failed or timed
// out. Tests marked todo (known bugs) are reported by node:test and do not fail
// the run. The load generator (bench/loadgen.cpp) is built first, by the bench
// preset into build-cmake/bench/, when missing or stale.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')

const root = path.join(__dirname, '..')
const dir = path.join(root, 'test', 'stress')
const results = path.join(dir, 'results')
const ORDER = ['injection', 'limits', 'fd-reuse', 'churn', 'shutdown', 'slow', 'soak']

const args = process.argv.slice(2)
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`)
  if (i < 0) return fallback
  if (args[i + 1] === undefined) usage(`--${name} needs a value`)
  return args[i + 1]
}
function usage (message) {
  process.stderr.write(`stress: ${message}\nusage: node scripts/stress.js [--scale ci|full] [--only ${ORDER.join(',')}] [--soak-seconds S]\n`)
  process.exit(2)
}
for (let i = 0; i < args.length; i += 2) {
  if (!['--scale', '--only', '--soak-seconds'].includes(args[i])) usage(`unknown argument ${args[i]}`)
}
const scale = option('scale', 'ci')
if (scale !== 'ci' && scale !== 'full') usage(`--scale must be ci or full, not ${scale}`)
const only = option('only', ORDER.join(',')).split(',')
for (const name of only) if (!ORDER.includes(name)) usage(`unknown scenario ${name}`)
const soakSeconds = option('soak-seconds', '')
if (soakSeconds && !(Number(soakSeconds) >= 10)) usage('--soak-seconds must be at least 10')

// Per-scenario time limits (the tests bound their own waits; this is the backstop).
function limitMs (name) {
  if (name === 'soak') return ((Number(soakSeconds) || (scale === 'full' ? 600 : 60)) + 300) * 1000
  return (scale === 'full' ? 900 : 240) * 1000
}

let current = null // the scenario process running now
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    if (current) try { process.kill(-current.pid, 'SIGTERM') } catch {}
    process.exit(130)
  })
}

// The addon may be rebuilt by another job meanwhile (build/Release is then
// missing for a minute or two): wait until it loads before a scenario starts.
async function addonLoads (timeoutMs = 5 * 60 * 1000) {
  const deadline = Date.now() + timeoutMs
  for (let said = false; ; said = true) {
    const r = spawnSync(process.execPath, ['-e', 'require(process.argv[1])', root], { stdio: 'ignore', timeout: 30000 })
    if (r.status === 0) return true
    if (Date.now() > deadline) return false
    if (!said) process.stdout.write('stress: the addon does not load (being rebuilt?); waiting\n')
    await new Promise((resolve) => setTimeout(resolve, 5000))
  }
}

function runScenario (name) {
  const file = path.join(dir, `${name}.stress.js`)
  fs.rmSync(path.join(results, `${name}.json`), { force: true })
  const env = { ...process.env, SSE_STRESS_SCALE: scale }
  if (soakSeconds) env.SSE_STRESS_SOAK_S = soakSeconds
  const t0 = Date.now()
  const load0 = os.loadavg()[0]
  return new Promise((resolve) => {
    // Its own process group, so a timeout can end it and whatever it started.
    const child = spawn(process.execPath, ['--test-reporter=spec', file], { cwd: root, env, stdio: 'inherit', detached: true })
    current = child
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      process.stderr.write(`stress: ${name} did not finish within ${limitMs(name) / 1000} s; ending it\n`)
      try { process.kill(-child.pid, 'SIGKILL') } catch {}
    }, limitMs(name))
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      current = null
      resolve({ name, ok: code === 0 && !timedOut, code, signal, timedOut, seconds: Number(((Date.now() - t0) / 1000).toFixed(1)), loadavg1: [Number(load0.toFixed(2)), Number(os.loadavg()[0].toFixed(2))] })
    })
  })
}

function show (v) {
  if (v === null || v === undefined) return '-'
  if (Array.isArray(v)) return v.join(',')
  if (typeof v === 'object') return JSON.stringify(v)
  return String(v)
}

function table (outcomes) {
  const rows = [['', 'figure', 'value', 'bound']]
  for (const o of outcomes) {
    rows.push([`${o.name}: ${o.ok ? 'pass' : (o.timedOut ? 'TIMEOUT' : 'FAIL')} in ${o.seconds} s (load ${o.loadavg1.join(' -> ')})`, '', '', ''])
    let doc = null
    try { doc = JSON.parse(fs.readFileSync(path.join(results, `${o.name}.json`), 'utf8')) } catch {}
    if (!doc) continue
    for (const [testName, figures] of Object.entries(doc.tests)) {
      rows.push([`  ${testName.length > 70 ? testName.slice(0, 67) + '...' : testName}`, '', '', ''])
      for (const [k, v] of Object.entries(figures)) {
        if (k === 'load' || k === 'samples' || k === 'rssByCycleMiB') continue
        const isFig = v && typeof v === 'object' && !Array.isArray(v) && 'value' in v && 'bound' in v
        rows.push(['', k, show(isFig ? v.value : v), isFig ? show(v.bound) : ''])
      }
    }
  }
  const width = [0, 1, 2, 3].map((c) => Math.min(80, Math.max(...rows.map((r) => (r[1] === '' && r[2] === '' ? 0 : r[c].length)))))
  const lines = rows.map((r) => (r[1] === '' && r[2] === '' && r[3] === '')
    ? r[0]
    : '    ' + r.slice(1).map((cell, c) => (c === 1 ? cell.padStart(Math.min(width[c + 1], 24)) : cell.padEnd(width[c + 1]))).join('  ').trimEnd())
  return lines.join('\n')
}

async function main () {
  fs.mkdirSync(results, { recursive: true })
  const { buildLoadgen } = require('../test/helpers/stress-common')
  buildLoadgen()
  const started = new Date()
  const t0 = Date.now()
  const outcomes = []
  for (const name of ORDER.filter((n) => only.includes(n))) {
    process.stdout.write(`\n=== ${name} (scale ${scale}) ===\n`)
    if (!(await addonLoads())) {
      outcomes.push({ name, ok: false, code: null, signal: null, timedOut: false, seconds: 0, loadavg1: [os.loadavg()[0], os.loadavg()[0]], error: 'the addon does not load' })
      continue
    }
    outcomes.push(await runScenario(name))
  }
  const wallSeconds = Number(((Date.now() - t0) / 1000).toFixed(1))
  process.stdout.write(`\n=== stress results (scale ${scale}, ${wallSeconds} s, ${os.availableParallelism()} cores, load ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}) ===\n`)
  process.stdout.write('bounds: a number is a maximum for sizes and times, an exact value for counts (0 = none); ">= x" a minimum\n')
  process.stdout.write(table(outcomes) + '\n')
  const summary = { scale, started: started.toISOString(), wallSeconds, node: process.version, cores: os.availableParallelism(), outcomes, scenarios: {} }
  for (const o of outcomes) {
    try { summary.scenarios[o.name] = JSON.parse(fs.readFileSync(path.join(results, `${o.name}.json`), 'utf8')) } catch {}
  }
  fs.writeFileSync(path.join(results, `summary-${scale}.json`), JSON.stringify(summary, null, 2) + '\n')
  const failed = outcomes.filter((o) => !o.ok)
  process.stdout.write(failed.length ? `\nFAILED: ${failed.map((o) => o.name).join(', ')}\n` : '\nall scenarios passed\n')
  process.exit(failed.length ? 1 : 0)
}

main().catch((err) => {
  process.stderr.write(`stress: ${err.stack}\n`)
  process.exit(2)
})
