'use strict'
// The native sources, written once. A layer is a folder of src/ and its
// sources are every .cpp directly in it (src/<layer>/*.cpp, sorted): the rule
// CMakeLists.txt applies (sse_fanout_layer_sources) and binding.gyp expands
// through this script, so a new file in a layer lands in both builds without
// editing either. scripts/check-sources.js (npm test) compares the two.
//
//   node scripts/sources.js core http compress pocketbase history mercure auth io listener addon   one path a line, relative to the package root
//
// Needs nothing but Node: binding.gyp runs it at `npm install`.
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')

// The layers, innermost first; CMake builds all but the addon as libraries
// (ssefanout_core, ssefanout_http, ssefanout_compress, ssefanout_pocketbase, ssefanout_history, ssefanout_mercure,
// ssefanout_auth, ssefanout_io), the addon is gyp's.
const LAYERS = ['core', 'http', 'compress', 'pocketbase', 'history', 'mercure', 'auth', 'io', 'listener', 'addon']

function layerSources (layer, base = root) {
  const dir = path.join(base, 'src', layer)
  return fs.readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.cpp'))
    .map((e) => `src/${layer}/${e.name}`)
    .sort()
}

module.exports = { LAYERS, layerSources }

if (require.main === module) {
  const layers = process.argv.slice(2)
  if (layers.length === 0) {
    console.error(`usage: node scripts/sources.js <layer>... (layers: ${LAYERS.join(', ')})`)
    process.exit(2)
  }
  for (const layer of layers) {
    if (!LAYERS.includes(layer)) {
      console.error(`sources: unknown layer ${layer} (layers: ${LAYERS.join(', ')})`)
      process.exit(2)
    }
  }
  process.stdout.write(layers.flatMap((l) => layerSources(l)).join('\n') + '\n')
}
