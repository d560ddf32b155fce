'use strict'
// Checks that the addon ships the code the C++ tests cover: the sources of
// binding.gyp's sse_fanout target, as gyp expands them, must be exactly the
// sources of CMake's layer libraries (ssefanout_core, ssefanout_http, ssefanout_pocketbase,
// ssefanout_history, ssefanout_mercure, ssefanout_auth, ssefanout_io, ssefanout_listener, as CMake's file API
// reports them for the test preset) plus src/addon/*.cpp, and every .cpp under
// src/ must be one of them. Run by npm test; each missing file is named with
// the build that lacks it.
//
//   node scripts/check-sources.js
const { execSync, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { layerSources } = require('./sources')

const root = path.join(__dirname, '..')
const tree = path.join(root, 'build-cmake', 'test')
const CMAKE_LIBRARIES = { core: 'ssefanout_core', http: 'ssefanout_http', compress: 'ssefanout_compress', pocketbase: 'ssefanout_pocketbase', history: 'ssefanout_history', mercure: 'ssefanout_mercure', auth: 'ssefanout_auth', io: 'ssefanout_io', listener: 'ssefanout_listener' }

function die (message) {
  console.error(`check-sources: ${message}`)
  process.exit(1)
}

// gyp's expansions: <!@(cmd) is the command's output split on whitespace,
// <!(cmd) the output as one string; both run in the directory of the .gyp file.
function gypSources () {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8'))
  const target = gyp.targets.find((t) => t.target_name === 'sse_fanout')
  if (!target) die('binding.gyp has no sse_fanout target')
  return target.sources.flatMap((s) => {
    const m = /^<!(@?)\((.*)\)$/s.exec(s)
    if (!m) return [s]
    const out = execSync(m[2], { cwd: root, encoding: 'utf8' })
    return m[1] ? out.split(/\s+/).filter(Boolean) : [out.trim()]
  }).map((s) => path.posix.normalize(s.split(path.sep).join('/')))
}

// CMake's sources per layer library, from the file API reply of a fresh
// configure of the test preset (the configure npm test's C++ step does anyway).
function cmakeSources () {
  const query = path.join(tree, '.cmake', 'api', 'v1', 'query', 'codemodel-v2')
  fs.mkdirSync(path.dirname(query), { recursive: true })
  fs.writeFileSync(query, '')
  const r = spawnSync('cmake', ['--preset', 'test'], { cwd: root, encoding: 'utf8' })
  if (r.error) die(`cannot run cmake: ${r.error.message}`)
  if (r.status !== 0) die(`cmake --preset test failed:\n${r.stdout}${r.stderr}`)
  const reply = path.join(tree, '.cmake', 'api', 'v1', 'reply')
  const index = fs.readdirSync(reply).filter((f) => f.startsWith('index-')).sort().pop()
  if (!index) die(`no CMake file API reply in ${reply}`)
  const read = (f) => JSON.parse(fs.readFileSync(path.join(reply, f), 'utf8'))
  const codemodel = read(index).reply['codemodel-v2']
  if (!codemodel) die('the CMake file API reply has no codemodel')
  const targets = read(codemodel.jsonFile).configurations[0].targets
  const result = {}
  for (const [layer, name] of Object.entries(CMAKE_LIBRARIES)) {
    const t = targets.find((x) => x.name === name)
    if (!t) die(`CMake defines no ${name} (is libuv installed? see CMakeLists.txt)`)
    result[layer] = read(t.jsonFile).sources
      .map((s) => path.relative(root, path.resolve(root, s.path)).split(path.sep).join('/'))
      .filter((s) => !s.startsWith('..') && !s.startsWith('node_modules/'))
  }
  return result
}

function walk (dir) {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name)
    return e.isDirectory() ? walk(p) : e.name.endsWith('.cpp') ? [path.relative(root, p).split(path.sep).join('/')] : []
  })
}

const gyp = gypSources()
const cmake = cmakeSources()
const addon = layerSources('addon')
const expected = [...Object.values(cmake).flat(), ...addon]
const problems = []
for (const f of expected) {
  if (!gyp.includes(f)) problems.push(`${f}: built by ${f.startsWith('src/addon/') ? 'the src/addon layer' : 'CMake'} but not by binding.gyp`)
}
for (const f of gyp) {
  if (!expected.includes(f)) problems.push(`${f}: built by binding.gyp but by no CMake layer library (nor src/addon)`)
}
for (const f of walk(path.join(root, 'src'))) {
  if (!gyp.includes(f) && !expected.includes(f)) problems.push(`${f}: in src/ but in neither build (a layer's sources are src/<layer>/*.cpp)`)
}
const dupes = gyp.filter((f, i) => gyp.indexOf(f) !== i)
for (const f of new Set(dupes)) problems.push(`${f}: listed twice in binding.gyp`)

const counts = `${Object.entries(cmake).map(([layer, files]) => `${layer} ${files.length}`).join(' + ')} (CMake) + addon ${addon.length}`
if (problems.length) {
  console.error(`check-sources: binding.gyp (${gyp.length} files) differs from ${counts}:`)
  for (const p of problems) console.error(`  ${p}`)
  process.exit(1)
}
console.log(`check-sources: binding.gyp builds ${gyp.length} files = ${counts}: ok`)
