'use strict'
// Builds the native addon without downloading Node headers.
//
// node-gyp normally fetches headers from nodejs.org. Distribution builds of Node
// (Debian's /usr/bin/node, nvm, the official tarballs) ship them next to the
// binary in <prefix>/include/node, so we point node-gyp there with --nodedir
// when the headers match the running Node. Without matching headers we let
// node-gyp fall back to its usual behaviour (download or cache).
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const { nodeDir, nodeGypScript } = require('./node-gyp-env')

const root = path.join(__dirname, '..')
const debug = process.argv.includes('--debug')

const gyp = nodeGypScript()
if (!gyp) {
  console.error('sse-fanout: node-gyp was not found (it ships with npm); cannot build the native addon.')
  process.exit(1)
}
const args = [gyp, 'rebuild', `--jobs=${Math.max(1, require('node:os').availableParallelism())}`]
if (debug) args.push('--debug')
const dir = nodeDir()
if (dir) args.push(`--nodedir=${dir}`)
else console.warn(`sse-fanout: no headers for Node ${process.versions.node} next to ${process.execPath}; node-gyp will try to fetch them`)

const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
if (result.status !== 0) {
  console.error('sse-fanout: building the native addon failed (see the compiler output above).')
  process.exit(result.status || 1)
}
