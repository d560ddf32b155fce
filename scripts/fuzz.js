'use strict'
// Builds the libFuzzer targets (fuzz/*_fuzz.cpp) with clang, ASan and UBSan
// through the fuzz preset (CMakePresets.json, tree build-cmake/fuzz/) and
// runs each for a set time, two at a time.
//
//   node scripts/fuzz.js [target...] [--seconds N] [--jobs N] [--no-build]
//
// Targets are named without the _fuzz suffix (frame_encoder, outbox, ...);
// none named = all. Each run starts from a scratch copy of the committed seed
// corpus (fuzz/corpus/<name>/ -> build-cmake/fuzz/work/<name>/corpus/), so the
// committed corpus never grows; fuzz/<name>.dict is used when it exists.
// Any finding (crash, assertion, sanitizer report, leak, timeout, OOM) makes
// the exit status non-zero and its file (build-cmake/fuzz/work/<name>/artifacts/)
// is printed with the command that reproduces it. Needs clang and libFuzzer's
// runtime (Debian: clang libclang-rt-14-dev); FUZZ_CC and FUZZ_CXX name
// other clang binaries than the preset's clang and clang++.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const buildDir = path.join(root, 'build-cmake', 'fuzz')
const workDir = path.join(buildDir, 'work')

// Largest input per target: enough for a few dozen operations or a long
// expression, small enough to keep executions fast.
const MAX_LEN = {
  frame_encoder: 4096,
  outbox: 2048,
  topic_index: 1024,
  pb_filter: 4096,
  pb_subscription: 2048,
  pb_index: 2048,
  like: 2048,
  cursor: 256,
  history: 2048,
  // over 1 KiB: templates past the template bound are reached
  mercure_template: 1280,
  // frame contents grow from a short seed (up to 200 KB a frame from a few
  // bytes): 1 KiB is dozens of parts, and every input stays fast to deflate
  body_coding: 1024,
  // request heads: past the small limits' 256-byte head (431) with room for
  // a pipelined second head; the default limits' 8 KiB is the unit tests'
  http_request: 2048,
  // a token: header, claims and signature of a few dozen selectors (the
  // 8 KiB budget is the unit tests')
  jwt: 2048
}
const DEFAULT_MAX_LEN = 4096

function usage (message) {
  if (message) console.error(`fuzz: ${message}`)
  console.error('usage: node scripts/fuzz.js [target...] [--seconds N] [--jobs N] [--no-build]')
  process.exit(2)
}

function parseArgs (argv) {
  const opts = { seconds: 60, jobs: 2, build: true, names: [] }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      const v = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[++i]
      const n = Number(v)
      if (!Number.isInteger(n) || n < 1) usage(`${a.split('=')[0]} needs a positive integer, got ${v}`)
      return n
    }
    if (a === '--seconds' || a.startsWith('--seconds=')) opts.seconds = value()
    else if (a === '--jobs' || a.startsWith('--jobs=')) opts.jobs = value()
    else if (a === '--no-build') opts.build = false
    else if (a === '--help' || a === '-h') usage()
    else if (a.startsWith('-')) usage(`unknown option ${a}`)
    else opts.names.push(a.replace(/_fuzz$/, ''))
  }
  return opts
}

function run (cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
  if (r.error) {
    console.error(`fuzz: cannot run ${cmd}: ${r.error.message}`)
    process.exit(1)
  }
  if (r.status !== 0) {
    console.error(`fuzz: ${cmd} ${args.join(' ')} failed (exit ${r.status})`)
    process.exit(r.status || 1)
  }
}

function allTargets () {
  return fs.readdirSync(path.join(root, 'fuzz'))
    .filter((f) => f.endsWith('_fuzz.cpp'))
    .map((f) => f.slice(0, -'_fuzz.cpp'.length))
    .sort()
}

function listFiles (dir) {
  try {
    return fs.readdirSync(dir).filter((f) => fs.statSync(path.join(dir, f)).isFile())
  } catch {
    return []
  }
}

// Runs one target; resolves with its figures.
function fuzzOne (name, seconds) {
  const bin = path.join(buildDir, `${name}_fuzz`)
  const dir = path.join(workDir, name)
  const corpus = path.join(dir, 'corpus')
  const artifacts = path.join(dir, 'artifacts')
  fs.rmSync(dir, { recursive: true, force: true })
  fs.mkdirSync(corpus, { recursive: true })
  fs.mkdirSync(artifacts, { recursive: true })
  const seeds = path.join(root, 'fuzz', 'corpus', name)
  for (const f of listFiles(seeds)) fs.copyFileSync(path.join(seeds, f), path.join(corpus, f))

  const args = [
    corpus,
    `-max_total_time=${seconds}`,
    `-max_len=${MAX_LEN[name] || DEFAULT_MAX_LEN}`,
    '-timeout=20',
    '-rss_limit_mb=2560',
    '-print_final_stats=1',
    `-artifact_prefix=${artifacts}${path.sep}`
  ]
  const dict = path.join(root, 'fuzz', `${name}.dict`)
  if (fs.existsSync(dict)) args.push(`-dict=${dict}`)

  const logPath = path.join(dir, 'fuzz.log')
  const log = fs.openSync(logPath, 'w')
  const started = Date.now()
  return new Promise((resolve) => {
    const child = spawn(bin, args, {
      cwd: dir,
      stdio: ['ignore', log, log],
      env: {
        ...process.env,
        // Short allocation stacks: unwinding 30 frames per malloc halves the speed.
        ASAN_OPTIONS: 'abort_on_error=1:detect_leaks=1:symbolize=1:malloc_context_size=8',
        UBSAN_OPTIONS: 'print_stacktrace=1:halt_on_error=1'
      }
    })
    // libFuzzer stops itself; this only guards against a hang outside it.
    const watchdog = setTimeout(() => child.kill('SIGKILL'), (seconds + 180) * 1000)
    child.on('error', (err) => {
      clearTimeout(watchdog)
      fs.closeSync(log)
      resolve({ name, error: `cannot run ${bin}: ${err.message}`, findings: [], logPath })
    })
    child.on('exit', (code, signal) => {
      clearTimeout(watchdog)
      fs.closeSync(log)
      const text = fs.readFileSync(logPath, 'utf8')
      const stat = (key) => {
        const m = text.match(new RegExp(`^stat::${key}:\\s*(\\d+)`, 'm'))
        return m ? Number(m[1]) : null
      }
      let cov = null
      let ft = null
      for (const m of text.matchAll(/^#\d+\s+\S+\s+cov: (\d+) ft: (\d+)/gm)) {
        cov = Number(m[1])
        ft = Number(m[2])
      }
      const findings = listFiles(artifacts).map((f) => path.join(artifacts, f))
      for (const m of text.matchAll(/Test unit written to (\S+)/g)) {
        const p = path.resolve(dir, m[1])
        if (!findings.includes(p)) findings.push(p)
      }
      const failed = code !== 0 || signal !== null || findings.length > 0
      resolve({
        name,
        seconds: (Date.now() - started) / 1000,
        execs: stat('number_of_executed_units'),
        execPerSec: stat('average_exec_per_sec'),
        cov,
        ft,
        corpus: listFiles(corpus).length,
        seeds: listFiles(seeds).length,
        findings,
        failed,
        exit: signal ? `signal ${signal}` : `exit ${code}`,
        logPath,
        text
      })
    })
  })
}

function table (rows) {
  const head = ['target', 'seconds', 'executions', 'exec/s', 'cov', 'features', 'corpus (seeds)', 'findings']
  const body = rows.map((r) => [
    r.name,
    r.seconds != null ? r.seconds.toFixed(0) : '-',
    r.execs != null ? String(r.execs) : '-',
    r.execPerSec != null ? String(r.execPerSec) : '-',
    r.cov != null ? String(r.cov) : '-',
    r.ft != null ? String(r.ft) : '-',
    r.corpus != null ? `${r.corpus} (${r.seeds})` : '-',
    r.error ? 'error' : String(r.failed && r.findings.length === 0 ? 1 : r.findings.length)
  ])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i].length)))
  const line = (cells) => '| ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join(' | ') + ' |'
  return [line(head), '|' + widths.map((w, i) => (i === 0 ? ':' : '-') + '-'.repeat(w) + (i === 0 ? '-' : ':')).join('|') + '|', ...body.map(line)].join('\n')
}

async function main () {
  const opts = parseArgs(process.argv.slice(2))
  const known = allTargets()
  const names = opts.names.length ? opts.names : known
  for (const n of names) {
    if (!known.includes(n)) usage(`unknown target ${n} (have: ${known.join(', ')})`)
  }

  if (opts.build) {
    const compilers = []
    if (process.env.FUZZ_CC) compilers.push(`-DCMAKE_C_COMPILER=${process.env.FUZZ_CC}`)
    if (process.env.FUZZ_CXX) compilers.push(`-DCMAKE_CXX_COMPILER=${process.env.FUZZ_CXX}`)
    run('cmake', ['--preset', 'fuzz', ...compilers])
    run('cmake', ['--build', '--preset', 'fuzz', '-j', String(opts.jobs), '--target', ...names.map((n) => `${n}_fuzz`)])
  }

  console.log(`fuzz: ${names.length} target(s), ${opts.seconds} s each, ${opts.jobs} at a time`)
  const results = []
  const queue = [...names]
  async function worker () {
    while (queue.length) {
      const name = queue.shift()
      const r = await fuzzOne(name, opts.seconds)
      const status = r.error ? r.error : r.failed ? `FAILED (${r.exit})` : 'ok'
      console.log(`fuzz: ${name}: ${status}, log ${path.relative(root, r.logPath)}`)
      results.push(r)
    }
  }
  await Promise.all(Array.from({ length: Math.min(opts.jobs, names.length) }, worker))
  results.sort((a, b) => names.indexOf(a.name) - names.indexOf(b.name))

  console.log('\n' + table(results) + '\n')
  let bad = 0
  for (const r of results) {
    if (!r.error && !r.failed) continue
    bad++
    console.error(`fuzz: ${r.name}: ${r.error || 'finding'}`)
    if (r.text) {
      const lines = r.text.split('\n')
      const at = lines.findIndex((l) => /FUZZ_CHECK|ERROR: |runtime error|SUMMARY: /.test(l))
      const excerpt = lines.slice(Math.max(0, at), Math.max(0, at) + 25).join('\n')
      console.error(excerpt.replace(/^/gm, '  '))
    }
    for (const f of r.findings) {
      console.error(`  crash file: ${f}`)
      console.error(`  reproduce:  ${path.relative(root, path.join(buildDir, `${r.name}_fuzz`))} ${f}`)
    }
    console.error(`  full log:   ${r.logPath}`)
  }
  if (bad) {
    console.error(`fuzz: ${bad} target(s) with findings`)
    process.exit(1)
  }
  console.log('fuzz: no findings')
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
