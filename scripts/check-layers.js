'use strict'
// Checks the layer rules of src/ (docs/ARCHITECTURE.md) on every #include and
// every use of simdjson:
//   src/core        pure C++: no Node-API, libuv, simdjson, nor any other layer's header
//   src/http        HTTP/1.1 request heads, queries, Accept-Encoding: the core only
//   src/pocketbase  the PocketBase protocol: the core and simdjson; no Node-API, no libuv
//   src/compress    body codings (gzip/deflate variants of frames): the core and zlib only
//   src/history     history and resume: the core only (no Node-API, libuv, simdjson)
//   src/mercure     the Mercure protocol: the core and history (no Node-API, libuv, simdjson)
//   src/auth        JWT verification (the listener's token path): the core, src/mercure, src/history,
//                   simdjson and OpenSSL; no Node-API, no libuv
//   src/io          the libuv I/O threads: the core, src/compress, src/history and libuv; no Node-API,
//                   no simdjson, nothing of src/pocketbase or src/addon
//   src/listener    the native HTTP listener (issue 17): the core, src/http, src/io, src/compress,
//                   src/history, src/auth (the verifier's interface), src/mercure (selectors) and
//                   libuv; no Node-API, no simdjson, no OpenSSL
//   src/addon       the Node-API glue: any layer; no simdjson nor OpenSSL of its own (only
//                   src/pocketbase and src/auth include or use simdjson, only src/auth OpenSSL)
// A quoted include is matched to a layer by the folder that holds the header
// (the layers' include paths are flat). Prints what it checked and each
// offence as file:line. Run by npm test.
//
//   node scripts/check-layers.js
const fs = require('node:fs')
const path = require('node:path')

const NAPI = { name: 'Node-API (napi.h)', include: /^napi\.h$/ }
const NODE_API = { name: 'Node-API (node_api.h)', include: /^(node_api|js_native_api)(_types)?\.h$/ }
const UV = { name: 'libuv (uv.h)', include: /^uv(\.h$|\/)/ }
const SIMDJSON = { name: 'simdjson', include: /^simdjson(\.h)?$|^simdjson\//, use: /\bsimdjson::/ }
const OPENSSL = { name: 'OpenSSL', include: /^openssl\// }

const RULES = {
  core: { layers: [], forbid: [NAPI, NODE_API, UV, SIMDJSON, OPENSSL] },
  http: { layers: ['core'], forbid: [NAPI, NODE_API, UV, SIMDJSON, OPENSSL] },
  compress: { layers: ['core'], forbid: [NAPI, NODE_API, UV, SIMDJSON, OPENSSL] },
  pocketbase: { layers: ['core'], forbid: [NAPI, NODE_API, UV, OPENSSL] },
  history: { layers: ['core'], forbid: [NAPI, NODE_API, UV, SIMDJSON, OPENSSL] },
  mercure: { layers: ['core', 'history'], forbid: [NAPI, NODE_API, UV, SIMDJSON, OPENSSL] },
  auth: { layers: ['core', 'mercure', 'history'], forbid: [NAPI, NODE_API, UV] },
  io: { layers: ['core', 'compress', 'history'], forbid: [NAPI, NODE_API, SIMDJSON, OPENSSL] },
  listener: { layers: ['core', 'http', 'io', 'compress', 'history', 'auth', 'mercure'], forbid: [NAPI, NODE_API, SIMDJSON, OPENSSL] },
  addon: { layers: ['core', 'http', 'compress', 'pocketbase', 'history', 'mercure', 'auth', 'io', 'listener'], forbid: [SIMDJSON, OPENSSL] }
}

// Offences known when the rule was written, each to go with the change that
// fixes it; one that no longer occurs fails the check until it is deleted
// here, so the rule only tightens.
const KNOWN = []

const SOURCE = /\.(c|cc|cpp|h|hpp)$/

function listLayer (root, layer) {
  const dir = path.join(root, 'src', layer)
  if (!fs.existsSync(dir)) return []
  const out = []
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name)
      if (e.isDirectory()) walk(p)
      else if (SOURCE.test(e.name)) out.push(p)
    }
  }
  walk(dir)
  return out.sort()
}

// Which layer holds the header a quoted include names: resolved next to the
// including file, then under src/, then by name in each layer's folder.
function headerLayer (root, from, name, headers) {
  const rel = (p) => path.relative(path.join(root, 'src'), p).split(path.sep)
  for (const p of [path.resolve(path.dirname(from), name), path.resolve(root, 'src', name)]) {
    if (fs.existsSync(p) && !rel(p)[0].startsWith('..')) return rel(p)[0]
  }
  return headers.get(path.basename(name)) || null
}

function checkLayers (root, known = KNOWN) {
  const rel = (p) => path.relative(root, p).split(path.sep).join('/')
  const files = {}
  const headers = new Map()
  for (const layer of Object.keys(RULES)) {
    files[layer] = listLayer(root, layer)
    for (const f of files[layer]) if (!headers.has(path.basename(f))) headers.set(path.basename(f), layer)
  }
  const offences = []
  const seenKnown = new Set()
  let includes = 0
  for (const [layer, rule] of Object.entries(RULES)) {
    for (const file of files[layer]) {
      const lines = fs.readFileSync(file, 'utf8').split('\n')
      let inComment = false
      lines.forEach((raw, i) => {
        // Comments do not count: a preamble may name what a layer must not include.
        let line = raw
        if (inComment) {
          const end = line.indexOf('*/')
          if (end < 0) return
          line = line.slice(end + 2)
          inComment = false
        }
        line = line.replace(/\/\*.*?\*\//g, '')
        const open = line.indexOf('/*')
        if (open >= 0) {
          line = line.slice(0, open)
          inComment = true
        }
        line = line.replace(/\/\/.*$/, '').replace(/"(?:[^"\\]|\\.)*"/g, (s) => (/^\s*#\s*include/.test(line) ? s : '""'))
        const where = `${rel(file)}:${i + 1}`
        const report = (what, text) => {
          const k = known.find((x) => x.file === rel(file) && x.what === what)
          if (k) seenKnown.add(k)
          else offences.push(`${where}: ${text}`)
        }
        const inc = /^\s*#\s*include\s*([<"])([^>"]+)[>"]/.exec(line)
        if (inc) {
          includes++
          const name = inc[2]
          for (const f of rule.forbid) {
            if (f.include.test(name)) report(f.name, `src/${layer} includes ${name}: no ${f.name} in src/${layer}`)
          }
          if (inc[1] === '"') {
            const other = headerLayer(root, file, name, headers)
            if (other && other !== layer && !rule.layers.includes(other)) {
              report(`src/${other}`, `src/${layer} includes ${name} of src/${other}: src/${layer} may include ${rule.layers.length ? rule.layers.map((l) => `src/${l}`).join(', ') : 'no other layer'}`)
            }
          }
          return
        }
        for (const f of rule.forbid) {
          if (f.use && f.use.test(line)) report(f.name, `src/${layer} uses ${f.name}: only src/pocketbase and src/auth may`)
        }
      })
    }
  }
  const stale = known.filter((k) => !seenKnown.has(k))
    .map((k) => `${k.file}: no longer uses ${k.what}: delete its entry from KNOWN in scripts/check-layers.js`)
  return { files, includes, offences, stale, known: [...seenKnown] }
}

module.exports = { checkLayers, RULES, KNOWN }

if (require.main === module) {
  const root = path.join(__dirname, '..')
  const r = checkLayers(root)
  for (const [layer, rule] of Object.entries(RULES)) {
    const may = rule.layers.length ? rule.layers.map((l) => `src/${l}`).join(', ') : 'no other layer'
    console.log(`check-layers: src/${layer} (${r.files[layer].length} files): may include ${may}; no ${rule.forbid.map((f) => f.name).join(', ')}`)
  }
  for (const k of r.known) console.log(`check-layers: known, to fix: ${k.file} (${k.what}): ${k.why}`)
  if (r.offences.length || r.stale.length) {
    for (const o of [...r.offences, ...r.stale]) console.error(`check-layers: ${o}`)
    process.exit(1)
  }
  console.log(`check-layers: ${r.includes} includes checked: ok`)
}
