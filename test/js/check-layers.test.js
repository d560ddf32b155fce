'use strict'
// scripts/check-layers.js, the layer rules of src/, on small trees of its own:
// each forbidden include or use is reported as file:line, comments do not
// count, a header is matched to the layer whose folder holds it, and a known
// offence that is gone fails until it is deleted.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { checkLayers } = require('../../scripts/check-layers')

function tree (t, files) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'check-layers-'))
  t.after(() => fs.rmSync(root, { recursive: true, force: true }))
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true })
    fs.writeFileSync(path.join(root, name), text)
  }
  return root
}

const clean = {
  'src/core/frame.hpp': '// Frames. No napi.h here: #include <napi.h> in a comment does not count.\n#include <string>\n',
  'src/core/frame.cpp': '#include "frame.hpp"\n',
  'src/pocketbase/pb_filter.hpp': '#include "frame.hpp"\n#include "simdjson.h"\nsimdjson::dom::parser p;\n',
  'src/io/shard.hpp': '#include <uv.h>\n#include "frame.hpp"\n',
  'src/addon/hub.cpp': '#include <napi.h>\n#include "pb_filter.hpp"\n#include "shard.hpp"\nconst char* s = "simdjson::";\n'
}

test('a tree that keeps the rules passes, and every include is counted', (t) => {
  const r = checkLayers(tree(t, clean), [])
  assert.deepEqual(r.offences, [])
  assert.deepEqual(r.stale, [])
  assert.equal(r.includes, 9)
  assert.equal(r.files.core.length, 2)
})

test('each forbidden include is reported with file:line', (t) => {
  const root = tree(t, {
    ...clean,
    'src/core/bad.cpp': '#include "frame.hpp"\n#include <napi.h>\n# include <uv.h>\n#include "simdjson.h"\n#include "shard.hpp"\n#include <node_api.h>\n',
    'src/pocketbase/bad.cpp': '#include <uv.h>\n#include "shard.hpp"\n',
    'src/io/bad.cpp': '#include "napi.h"\n#include "pb_filter.hpp"\n#include "hub.hpp"\nvoid f() { simdjson::dom::parser p; }\n',
    'src/addon/hub.hpp': '\n#include "simdjson.h"\n',
    'src/listener/bad.cpp': '#include <openssl/evp.h>\n#include "jwt.hpp"\n',
    'src/auth/jwt.hpp': '#include <openssl/evp.h>\n#include "simdjson.h"\n#include "selector.hpp"\n'
  })
  const r = checkLayers(root, [])
  const where = r.offences.map((o) => o.slice(0, o.indexOf(': ')))
  assert.deepEqual(where, [
    'src/core/bad.cpp:2', 'src/core/bad.cpp:3', 'src/core/bad.cpp:4', 'src/core/bad.cpp:5', 'src/core/bad.cpp:6',
    'src/pocketbase/bad.cpp:1', 'src/pocketbase/bad.cpp:2',
    'src/io/bad.cpp:1', 'src/io/bad.cpp:2', 'src/io/bad.cpp:3', 'src/io/bad.cpp:4',
    'src/listener/bad.cpp:1',
    'src/addon/hub.hpp:2'
  ])
  assert.match(r.offences[0], /src\/core includes napi\.h: no Node-API/)
  assert.match(r.offences[3], /src\/core includes shard\.hpp of src\/io: src\/core may include no other layer/)
  assert.match(r.offences[9], /src\/io includes hub\.hpp of src\/addon/)
  assert.match(r.offences[11], /src\/listener includes openssl\/evp\.h: no OpenSSL/)
  assert.match(r.offences[10], /src\/io uses simdjson: only src\/pocketbase and src\/auth may/)
})

test('a known offence is reported as known; once gone, it must be deleted', (t) => {
  const known = [{ file: 'src/addon/filter.cpp', what: 'simdjson', why: 'moving' }]
  const root = tree(t, { ...clean, 'src/addon/filter.cpp': 'simdjson::dom::parser parser;\n' })
  let r = checkLayers(root, known)
  assert.deepEqual(r.offences, [])
  assert.deepEqual(r.known, known)
  fs.writeFileSync(path.join(root, 'src/addon/filter.cpp'), '#include "pb_filter.hpp"\n')
  r = checkLayers(root, known)
  assert.deepEqual(r.offences, [])
  assert.equal(r.stale.length, 1)
  assert.match(r.stale[0], /src\/addon\/filter\.cpp: no longer uses simdjson: delete its entry/)
})
