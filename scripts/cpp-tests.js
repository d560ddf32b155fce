'use strict'
// Builds the C++ core, PocketBase and I/O layers with CMake and runs their
// GoogleTest suite through CTest, all through a preset of CMakePresets.json
// (default `test`, tree build-cmake/test):
//
//   node scripts/cpp-tests.js [--preset NAME] [ctest arguments, e.g. -R topic]
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const os = require('node:os')

const root = path.join(__dirname, '..')
const jobs = String(Math.max(1, os.availableParallelism()))
const argv = process.argv.slice(2)
let preset = 'test'
const at = argv.findIndex((a) => a === '--preset' || a.startsWith('--preset='))
if (at >= 0) {
  const a = argv[at]
  preset = a.includes('=') ? a.slice(a.indexOf('=') + 1) : argv[at + 1]
  argv.splice(at, a.includes('=') ? 1 : 2)
  if (!preset) {
    console.error('cpp-tests: --preset needs a name (test, asan, tsan: see CMakePresets.json)')
    process.exit(2)
  }
}

function run (cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
  if (r.error) {
    console.error(`cpp-tests: cannot run ${cmd}: ${r.error.message} (see README.md, "Development")`)
    process.exit(1)
  }
  if (r.status !== 0) process.exit(r.status || 1)
}

run('cmake', ['--preset', preset])
run('cmake', ['--build', '--preset', preset, '-j', jobs])
run('ctest', ['--preset', preset, '-j', jobs, ...argv])
