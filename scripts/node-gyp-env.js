'use strict'
// Where node-gyp and the Node headers are, without downloading anything: the
// headers that ship next to the running node (<prefix>/include/node) when they
// match its version, and the node-gyp that ships with npm. Used by
// scripts/build-addon.js (npm install) and scripts/sanitize-js.js.
const fs = require('node:fs')
const path = require('node:path')

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

module.exports = { nodeDir, nodeGypScript }
