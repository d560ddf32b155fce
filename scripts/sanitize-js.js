'use strict'
// Runs the whole JS test suite against an addon built with AddressSanitizer
// and UndefinedBehaviorSanitizer.
//
//   node scripts/sanitize-js.js                  build, then node --test test/js/
//   node scripts/sanitize-js.js --no-build       reuse build-cmake/asan-addon/ as it is
//   node scripts/sanitize-js.js --build-only
//   node scripts/sanitize-js.js test/js/slow.test.js ...   only these test files
//
// Build: binding.gyp and src/ are copied to build-cmake/asan-addon/ (beside
// the CMake trees; the normal build/Release used by `npm test` is left alone;
// the layers' source lists, scripts/sources.js, are expanded into the copied
// binding.gyp) and node-gyp builds there,
// offline, with --nodedir pointing at the headers next to the running node,
// as scripts/build-addon.js does. Every target gets
//   -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -g1
// (-fno-sanitize-recover=all: the first UBSan finding aborts), RTTI on (so
// -fsanitize=vptr checks our virtual calls) and -D_GLIBCXX_SANITIZE_VECTOR
// (ASan sees the unused capacity of std::vector too), as the CMake ASan build does.
//
// Run: node is not instrumented, so the ASan runtime must be the first
// library of every node process: LD_PRELOAD=libasan.so libubsan.so (the
// paths `gcc -print-file-name` gives). SSE_FANOUT_ADDON (read by
// lib/native.js) names the sanitized addon. Child processes the tests fork and
// worker threads inherit all of it. NODE_OPTIONS=--require
// scripts/sanitizers/guard.js leaves, at each process exit, a note of which
// sse_fanout.node files it had mapped, so the run can prove the sanitized
// addon was the one used.
//
// ASan and LSan reports go to build-cmake/asan-addon/logs/ (log_path), not only to
// the stderr of whichever process hit it: a finding in a forked client or in
// a process whose exit status nobody checks still fails the run. GCC's
// libubsan, loaded next to libasan, ignores log_path: its reports go to
// stderr, and the test output (passed through and kept) is searched for them.
//
// Leaks: LeakSanitizer is off by default (see detect_leaks below for why it
// is no check of the addon under Node 20); test/js counts live native frames
// (liveFrames()) and fds itself. With ASAN_OPTIONS=detect_leaks=1 given by
// the caller, the leak records with a frame in the addon (src/,
// node-addon-api, simdjson) fail the run and the others (Node's, V8's and
// OpenSSL's memory still held at exit) are only counted: see classify() for
// why this is not a suppressions file.
//
// UBSan: scripts/sanitizers/ubsan.supp (one node-addon-api pattern).
//
// Exit status: 0 only when node --test passed, no sanitizer error and no
// leak of the addon was reported by any process, and the sanitized addon was
// mapped by at least one process.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { nodeDir, nodeGypScript } = require('./node-gyp-env')
const { layerSources } = require('./sources')

const root = path.join(__dirname, '..')
const work = path.join(root, 'build-cmake', 'asan-addon')
const logDir = path.join(work, 'logs')
const addonPath = path.join(work, 'build', 'Release', 'sse_fanout.node')
const sanitizers = 'address,undefined'
const sanFlags = [`-fsanitize=${sanitizers}`, '-fno-sanitize-recover=all', '-fno-omit-frame-pointer', '-g1'] // line tables: full -g triples the build time

const argv = process.argv.slice(2)
const noBuild = argv.includes('--no-build')
const buildOnly = argv.includes('--build-only')
const testFiles = argv.filter((a) => !a.startsWith('--'))

function die (msg) {
  console.error(`sanitize-js: ${msg}`)
  process.exit(1)
}

function gccFile (name) {
  const r = spawnSync('gcc', [`-print-file-name=${name}`], { encoding: 'utf8' })
  const file = r.status === 0 ? r.stdout.trim() : ''
  // gcc prints the bare name back when it has no such file.
  if (!file || !path.isAbsolute(file) || !fs.existsSync(file)) die(`gcc has no ${name} (is g++ installed?)`)
  return fs.realpathSync(file)
}

function sanitizedGyp () {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8'))
  for (const t of gyp.targets) {
    // The copy builds in another directory, without scripts/: its source list is written out.
    t.sources = (t.sources || []).flatMap((s) => {
      const m = /^<!@\(node scripts\/sources\.js ([a-z ]+)\)$/.exec(s)
      return m ? m[1].split(' ').flatMap((layer) => layerSources(layer)) : [s]
    })
    t.cflags = [...(t.cflags || []), ...sanFlags]
    t.cflags_cc = [...(t.cflags_cc || []), '-frtti']
    t['cflags_cc!'] = [...(t['cflags_cc!'] || []), '-fno-rtti']
    // node exports its own (uninstrumented) copies of the std:: templates it
    // instantiated, and without this the addon's calls to, say,
    // vector<string>::push_back bind to node's copy: unchecked code, and false
    // container-overflow reports (node's copy does not update the vector
    // annotations the addon's copy set). Bind the addon's calls to its own code.
    t.ldflags = [...(t.ldflags || []), `-fsanitize=${sanitizers}`, '-Wl,-Bsymbolic-functions']
    t.defines = [...(t.defines || []), '_GLIBCXX_SANITIZE_VECTOR']
  }
  return JSON.stringify(gyp, null, 2) + '\n'
}

function build () {
  const gypScript = nodeGypScript()
  if (!gypScript) die('node-gyp was not found (it ships with npm)')
  const dir = nodeDir()
  if (!dir) die(`no headers for Node ${process.versions.node} next to ${process.execPath} (<prefix>/include/node)`)
  fs.mkdirSync(work, { recursive: true })
  // Sources copied with their timestamps, so make rebuilds only what changed
  // (do not edit the copies in build-cmake/asan-addon/src: an edit there
  // older than its object file would not be rebuilt; delete that directory).
  fs.rmSync(path.join(work, 'src'), { recursive: true, force: true })
  fs.cpSync(path.join(root, 'src'), path.join(work, 'src'), { recursive: true, preserveTimestamps: true })
  const gypFile = path.join(work, 'binding.gyp')
  const text = sanitizedGyp()
  if (!fs.existsSync(gypFile) || fs.readFileSync(gypFile, 'utf8') !== text) fs.writeFileSync(gypFile, text)
  const jobs = Math.max(1, os.availableParallelism())
  const env = { ...process.env, CC: 'gcc', CXX: 'g++' }
  for (const step of [['configure'], ['build', `--jobs=${jobs}`]]) {
    const r = spawnSync(process.execPath, [gypScript, ...step, `--nodedir=${dir}`], { cwd: work, env, stdio: 'inherit' })
    if (r.status !== 0) die(`node-gyp ${step[0]} failed (see the compiler output above)`)
  }
  // The addon must really be instrumented: it calls into both runtimes.
  const nm = spawnSync('nm', ['-D', '--undefined-only', addonPath], { encoding: 'utf8' })
  if (nm.status !== 0) die(`nm ${addonPath} failed: ${nm.stderr}`)
  for (const sym of ['__asan_init', '__ubsan_handle_']) {
    if (!nm.stdout.includes(sym)) die(`${addonPath} has no ${sym}* references: not built with the sanitizers`)
  }
}

const t0 = Date.now()
if (!noBuild) build()
if (!fs.existsSync(addonPath)) die(`${addonPath} does not exist: run without --no-build`)
const builtSecs = (Date.now() - t0) / 1000
if (buildOnly) {
  console.log(`sanitize-js: built ${addonPath} in ${builtSecs.toFixed(0)} s`)
  process.exit(0)
}

const libasan = gccFile('libasan.so')
const libubsan = gccFile('libubsan.so')
fs.rmSync(logDir, { recursive: true, force: true })
fs.mkdirSync(logDir, { recursive: true })
const guard = path.join(__dirname, 'sanitizers', 'guard.js')

// Any finding is fatal: ASan reports go to logDir/asan.<pid>, UBSan reports
// to stderr (see above).
const env = {
  ...process.env,
  LD_PRELOAD: [libasan, libubsan, process.env.LD_PRELOAD].filter(Boolean).join(' '),
  ASAN_OPTIONS: [
    `log_path=${path.join(logDir, 'asan')}`,
    'halt_on_error=1',
    'abort_on_error=1',
    'disable_coredump=1',
    // LeakSanitizer is off: under Node 20 it is no check of the addon. At a
    // natural exit node never runs it; through process.exit() it reports only
    // Node's, V8's and OpenSSL's memory still held at exit (thousands of
    // records a run), and a leak planted in the addon for the test (10
    // malloc(100000) whose pointers were dropped) went unreported. The
    // addon's leaks are checked by the tests instead: liveFrames() (native
    // Frame count) and fd counts before and after. detect_leaks=1 in the
    // caller's ASAN_OPTIONS (appended below, so it wins) turns LSan on; its
    // records are then sorted by classify(), and only those with a frame in
    // the addon fail the run.
    'detect_leaks=0',
    // With LSan on, a leak must not change a process's exit status (Node's
    // own memory is reported too): classify() decides. Every other finding
    // aborts the process (abort_on_error) whatever exitcode says.
    'exitcode=0',
    'detect_stack_use_after_return=1',
    'check_initialization_order=1',
    'strict_init_order=1',
    'strict_string_checks=1',
    'detect_invalid_pointer_pairs=0',
    // V8 and Node install SIGSEGV/SIGBUS handlers of their own (WebAssembly
    // bounds checks through guard pages); ASan must leave them in place.
    'allow_user_segv_handler=1',
    process.env.ASAN_OPTIONS
  ].filter(Boolean).join(':'),
  UBSAN_OPTIONS: [
    `suppressions=${path.join(__dirname, 'sanitizers', 'ubsan.supp')}`,
    'halt_on_error=1',
    'abort_on_error=1',
    'print_stacktrace=1',
    'report_error_type=1',
    process.env.UBSAN_OPTIONS
  ].filter(Boolean).join(':'),
  SSE_FANOUT_ADDON: addonPath,
  SSE_FANOUT_SANITIZED: '1', // test/helpers/sanitized.js: no timing or RSS bounds
  SSE_SANITIZE_LOG_DIR: logDir,
  NODE_OPTIONS: [`--require=${guard}`, process.env.NODE_OPTIONS].filter(Boolean).join(' ')
}

// Preflight: a process with this environment loads the sanitized addon
// through lib/native.js, with the ASan runtime mapped.
const check = spawnSync(process.execPath, ['-e', `
  const native = require(${JSON.stringify(path.join(root, 'lib', 'native.js'))})
  const maps = require('node:fs').readFileSync('/proc/self/maps', 'utf8')
  const has = (f) => maps.split('\\n').some((l) => l.endsWith(' ' + f))
  if (typeof native.NativeHub !== 'function') throw new Error('lib/native.js gave no NativeHub')
  if (!has(process.env.SSE_FANOUT_ADDON)) throw new Error('the sanitized addon is not mapped')
  for (const lib of process.env.LD_PRELOAD.split(' ')) if (!has(lib)) throw new Error(lib + ' is not mapped')
  if (maps.split('\\n').some((l) => /sse_fanout[^/]*\\.node$/.test(l) && !l.endsWith(' ' + process.env.SSE_FANOUT_ADDON))) {
    throw new Error('another sse_fanout.node is mapped too')
  }
`], { env, encoding: 'utf8' })
if (check.status !== 0) die(`preflight failed:\n${check.stdout}${check.stderr}`)
console.log(`sanitize-js: addon ${addonPath}`)
console.log(`sanitize-js: LD_PRELOAD=${env.LD_PRELOAD}`)
console.log('sanitize-js: preflight: lib/native.js loaded it, with libasan and libubsan mapped')

const files = testFiles.length ? testFiles : ['test/js/']
const t1 = Date.now()
const child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...files], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
// The output is passed through as it comes and kept, to be searched for
// reports afterwards (UBSan's, and any ASan report printed to a stderr).
const seen = []
const keep = (out) => (chunk) => { out.write(chunk); seen.push(chunk) }
child.stdout.on('data', keep(process.stdout))
child.stderr.on('data', keep(process.stderr))
child.on('close', (code, signal) => finish(code, signal))

function finish (code, signal) {
  const testSecs = (Date.now() - t1) / 1000
  // node --test passes a test file's stderr on as "# " comment lines, with
  // "#" escaped as "\#": undo both so the reports read as the sanitizers wrote them.
  const output = Buffer.concat(seen).toString('utf8').split('\n')
    .map((line) => line.replace(/^\s*# ?/, '').replace(/\\#/g, '#')).join('\n')

  // Reports: ASan's and LSan's in logDir (one file per process that had any),
  // and whatever reached the test output (UBSan's always do).
  const sources = [['the test output', output]]
  const logs = fs.readdirSync(logDir)
  for (const f of logs.filter((name) => /^asan\./.test(name))) {
    sources.push([path.join(logDir, f), fs.readFileSync(path.join(logDir, f), 'utf8')])
  }
  let failures = 0
  let nodeLeaks = 0
  let nodeLeakBytes = 0
  for (const [where, text] of sources) {
    const { fatal, ours, other, otherBytes } = classify(text)
    nodeLeaks += other
    nodeLeakBytes += otherBytes
    if (fatal.length) {
      failures += fatal.length
      console.error(`\n==== sanitizer error(s) in ${where}:\n${fatal.join('\n\n')}`)
    }
    if (ours.length) {
      failures += ours.length
      console.error(`\n==== leak(s) of the addon in ${where}:\n${ours.join('\n\n')}`)
    }
  }
  const loaded = logs.filter((f) => f.startsWith('loaded.')).length
  const others = logs.filter((f) => f.startsWith('other.'))
  for (const f of others) {
    console.warn('sanitize-js: warning: a process mapped an uninstrumented sse_fanout.node as well (what it ran through that copy went unchecked):\n  ' +
      fs.readFileSync(path.join(logDir, f), 'utf8').trim().split('\n').join('\n  '))
  }

  console.log(`sanitize-js: LeakSanitizer: ${nodeLeaks} leak record(s) (${nodeLeakBytes} bytes) without a frame in the addon ` +
    '(Node, V8 and OpenSSL memory still held at exit): not ours, not counted')
  console.log(`sanitize-js: node --test exited with ${code ?? signal}; ${failures} sanitizer finding(s) in our code; ` +
    `${loaded} process(es) used the sanitized addon, ${others.length} also mapped another copy; ` +
    `build ${builtSecs.toFixed(0)} s, tests ${testSecs.toFixed(0)} s`)
  if (code !== 0) die('the JS suite failed under the sanitizers')
  if (failures) die(`sanitizer findings (full logs in ${logDir})`)
  if (loaded === 0) die('no process loaded the sanitized addon')
  console.log('sanitize-js: clean')
}

// Sorts the reports in a text: `fatal`, every ASan error (with its stack) and
// UBSan finding, whoever's code it is in; `ours`, the LeakSanitizer records
// with a frame in the addon (a leak of our code); the other leak records
// (Node's, V8's and OpenSSL's own memory still held at exit) are only counted.
//
// Why not an LSan suppressions file: a suppression matches a leak when any
// frame of its stack matches, and every allocation of the addon is made under
// V8's and Node's frames (Builtin_HandleApiCall, the microtask queue, libuv
// callbacks), so suppressing "Node and V8 internals" by function or module
// would hide the addon's leaks as well. Sorting the records by "has a frame
// in our code" keeps the check exact, without a list of V8 function names
// that changes with every Node release.
function classify (text) {
  const ourFrame = /\.\.\/src\/(addon|core|http|compress|pocketbase|history|mercure|auth|io|listener)\/|node-addon-api\/|@nozbe\/simdjson|sse_fanout\.node\+0x|\bssefanout::/
  const leakHeader = /^(Direct|Indirect) leak of (\d+) byte/
  const lines = text.split('\n')
  const fatal = []
  const ours = []
  let other = 0
  let otherBytes = 0
  for (let i = 0; i < lines.length;) {
    const line = lines[i]
    const leak = leakHeader.exec(line)
    if (leak) {
      const record = [lines[i++]]
      while (i < lines.length && lines[i].trim() !== '' && !leakHeader.test(lines[i]) && !/^SUMMARY:/.test(lines[i])) record.push(lines[i++])
      if (record.some((l) => ourFrame.test(l))) {
        ours.push(record.join('\n'))
      } else {
        other++
        otherBytes += Number(leak[2])
      }
    } else if (/ERROR: AddressSanitizer|AddressSanitizer:DEADLYSIGNAL|: runtime error: |ERROR: UndefinedBehaviorSanitizer/.test(line)) {
      // The report runs to its SUMMARY line (or a bounded number of lines).
      const record = [lines[i++]]
      while (i < lines.length && record.length < 200 && !/^SUMMARY:/.test(record[record.length - 1])) record.push(lines[i++])
      fatal.push(record.join('\n'))
    } else {
      i++
    }
  }
  return { fatal, ours, other, otherBytes }
}
