'use strict'
// Builds the C++ core and I/O layer with CMake and runs their GoogleTest suite
// through CTest. Extra arguments go to CTest (e.g. `-R topic`).
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const os = require('node:os')

const root = path.join(__dirname, '..')
const dir = process.env.SSE_FANOUT_CMAKE_DIR || path.join(root, 'build-ctest')
const jobs = String(Math.max(1, os.availableParallelism()))

function run (cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
  if (r.error) {
    console.error(`cpp-tests: cannot run ${cmd}: ${r.error.message} (see README.md, "Development")`)
    process.exit(1)
  }
  if (r.status !== 0) process.exit(r.status || 1)
}

run('cmake', ['-S', root, '-B', dir, '-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DSSE_FANOUT_BUILD_TESTS=ON'])
run('cmake', ['--build', dir, '-j', jobs])
run('ctest', ['--test-dir', dir, '--output-on-failure', '-j', jobs, ...process.argv.slice(2)])
