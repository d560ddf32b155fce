'use strict'
// Builds the end-to-end benchmark's own programs, the load generator
// (bench/loadgen.cpp) and the C floor (bench/floor.c), one way: CMake targets
// of the bench preset (CMakePresets.json, tree build-cmake/bench/). bench/run.js
// and the stress tests (test/helpers/stress-common.js) use it. A program newer
// than its source is used as it is, without running CMake.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const dir = path.join(root, 'build-cmake', 'bench')
const SOURCES = { loadgen: 'loadgen.cpp', floor: 'floor.c' }

function newer (target, source) {
  try { return fs.statSync(target).mtimeMs >= fs.statSync(source).mtimeMs } catch { return false }
}

function run (args) {
  const r = spawnSync('cmake', args, { cwd: root, encoding: 'utf8', timeout: 600000 })
  if (r.error) throw new Error(`cannot run cmake ${args.join(' ')}: ${r.error.message}`)
  if (r.status !== 0) {
    process.stderr.write(r.stdout + r.stderr)
    throw new Error(`cmake ${args.join(' ')} failed (exit ${r.status})`)
  }
}

/** Builds the named programs when missing or stale; returns their paths by name. */
function buildTools (names = Object.keys(SOURCES)) {
  const bins = Object.fromEntries(names.map((n) => [n, path.join(dir, n)]))
  const stale = names.filter((n) => !newer(bins[n], path.join(__dirname, SOURCES[n])))
  if (stale.length) {
    if (!fs.existsSync(path.join(dir, 'CMakeCache.txt'))) run(['--preset', 'bench'])
    run(['--build', '--preset', 'bench', '--target', ...stale])
  }
  return bins
}

/**
 * The median of a scenario's rounds: the middle of the finite values (the
 * upper of the two middle ones for an even count); null when there are none.
 */
function median (values) {
  const xs = values.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b)
  return xs.length === 0 ? null : xs[xs.length >> 1]
}

module.exports = { buildTools, dir, median }
