'use strict'
// C++ format check (.clang-format: Google style, 120 columns) over src/,
// test/cpp/, fuzz/ and bench/cpp/; run by npm test and .ci/run.
//
//   node scripts/check-format.js          clang-format --dry-run --Werror, names each file that differs
//   node scripts/check-format.js --fix    clang-format -i on the same files (npm run format)
//
// bench/loadgen.cpp and bench/floor.c keep styles of their own (floor.c is C
// written to be read beside the kernel's man pages) and are not checked.
// Needs clang-format (Debian: clang-format; CI uses Debian 12's, version 14:
// other versions may format a few constructs differently).
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const DIRS = ['src', 'test/cpp', 'fuzz', 'bench/cpp']
const SOURCE = /\.(c|cc|cpp|h|hpp)$/

// Files skipped by the check (none today: keep it so).
const PENDING = []

function files () {
  const out = []
  const walk = (d) => {
    if (!fs.existsSync(d)) return
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (SOURCE.test(e.name)) out.push(path.relative(root, p).split(path.sep).join('/'))
    }
  }
  for (const d of DIRS) walk(path.join(root, d))
  return out.sort()
}

function clangFormat (args) {
  const r = spawnSync('clang-format', args, { cwd: root, encoding: 'utf8', maxBuffer: 64 << 20 })
  if (r.error) {
    console.error(`check-format: cannot run clang-format (${r.error.message}); install it (Debian: apt-get install clang-format)`)
    process.exit(1)
  }
  return r
}

const fix = process.argv.includes('--fix')
const all = files()
if (fix) {
  const r = clangFormat(['-i', '--style=file', ...all])
  if (r.status !== 0) {
    console.error(r.stderr)
    process.exit(r.status || 1)
  }
  console.log(`format: ${all.length} files formatted in place (${DIRS.join(', ')})`)
  process.exit(0)
}

const version = clangFormat(['--version']).stdout.trim()
const checked = all.filter((f) => !PENDING.includes(f))
const r = clangFormat(['--dry-run', '--Werror', '--style=file', ...checked])
const bad = [...new Set([...`${r.stderr}`.matchAll(/^(.+?):\d+:\d+: (?:error|warning): code should be clang-formatted/gm)].map((m) => m[1]))]
  .map((f) => path.relative(root, path.resolve(root, f)).split(path.sep).join('/'))
if (r.status !== 0 && bad.length === 0) {
  console.error(r.stderr)
  process.exit(r.status || 1)
}
const pending = PENDING.filter((f) => all.includes(f))
const nowClean = pending.filter((f) => clangFormat(['--dry-run', '--Werror', '--style=file', f]).status === 0)
console.log(`check-format: ${checked.length} files under ${DIRS.join(', ')} checked with ${version}`)
if (pending.length) {
  console.log(`check-format: ${pending.length} files not yet formatted, skipped (PENDING in scripts/check-format.js): ${pending.join(', ')}`)
}
for (const f of nowClean) console.log(`check-format: ${f} conforms now: delete it from PENDING`)
if (bad.length) {
  for (const f of bad) console.error(`check-format: ${f} is not formatted (clang-format --dry-run ${f} shows where)`)
  console.error('check-format: run `npm run format` to fix')
  process.exit(1)
}
console.log('check-format: ok')
