'use strict'
// Builds the native addon without downloading Node headers.
//
// node-gyp normally fetches headers from nodejs.org. Distribution builds of Node
// (Debian's /usr/bin/node, nvm, the official tarballs) ship them next to the
// binary in <prefix>/include/node, so we point node-gyp there with --nodedir
// when the headers match the running Node. Without matching headers we let
// node-gyp fall back to its usual behaviour (download or cache).
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const debug = process.argv.includes('--debug')

function nodeDir () {
  const prefix = path.join(path.dirname(process.execPath), '..')
  const versionHeader = path.join(prefix, 'include', 'node', 'node_version.h')
  let text
  try { text = fs.readFileSync(versionHeader, 'utf8') } catch { return null }
  const part = (name) => (text.match(new RegExp(`#define ${name} (\\d+)`)) || [])[1]
  const headerVersion = `${part('NODE_MAJOR_VERSION')}.${part('NODE_MINOR_VERSION')}.${part('NODE_PATCH_VERSION')}`
  return headerVersion === process.versions.node ? path.resolve(prefix) : null
}

function nodeGypScript () {
  const candidates = [
    process.env.npm_config_node_gyp,
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js')
  ]
  try { candidates.push(require.resolve('node-gyp/bin/node-gyp.js')) } catch {}
  return candidates.find((p) => p && fs.existsSync(p))
}

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
