'use strict'
// The hostile PocketBase guest of issue 10, shared by the test that checks its
// budgets (test/js/pocketbase-hostile.test.js) and the benchmark that times it
// against the 5 ms target (bench/pb-hostile.js, the pocketbase-hostile
// scenario of bench/run.js):
//   ATTACKS            name -> (i) => the i-th subscription string; every one matches BODY
//   EXTRA              fields an attack adds to the record
//   holdMost(...)      as many subscriptions as one client's budgets let it hold
//   fillOneAddress(...) 256 streams of one address, each filling a budget
//   timeBroadcasts(...) the JS-thread time of BROADCASTS 10 KB broadcastRecord() calls
//
// The client's subscriptions are posted over real HTTP to the app; where a
// budget refuses a POST (400 validation_budget_exceeded) the client posts
// fewer, so each attack runs with as much as a guest can really hold. Each
// matching key must also deliver its frame: the streams are read, so the work
// measured includes the real frames.

const assert = require('node:assert/strict')
const { openStream, post } = require('./pb-http')
const { waitFor } = require('./wait')

const BROADCASTS = 15
const BODY = 'a'.repeat(9990) + '~' + 'b'.repeat(9) // 10 KB; the '~' lets the first attack match
// About 10 KB of JSON text; 'a~b' in the last block lets the JSON attack match.
const META = { blocks: [...Array.from({ length: 199 }, (_, i) => ({ type: 'p', text: `block ${i} ${'x'.repeat(20)}` })), { text: 'a~b' }] }
const POSTS = { name: 'posts', id: 'pbc_posts', listRule: '', viewRule: '' }

const sub = (i, query) => `posts/*?options=${encodeURIComponent(JSON.stringify({ query: { ...query, n: String(i) } }))}`

const ATTACKS = {
  // The reproduction: a pattern that backtracked 2400 × 10,000 steps.
  'LIKE %_{2400}~% (the issue)': (i) => sub(i, { filter: `body~'%${'_'.repeat(2400)}~%'` }),
  // As many LIKE nodes as the node budget allows, spread over the keys.
  'LIKE nodes: 2 per key': (i) => sub(i, { filter: 'body~\'%a%b%\' && body!~\'%zz%q%\'' }),
  // The longest wildcard core a literal pattern may have (64 characters).
  'LIKE a_{62}~ core': (i) => sub(i, { filter: `body~'%a${'_'.repeat(62)}~%'` }),
  // A field projection per key: one pick and one 10 KB frame per key.
  'fields per key': (i) => sub(i, { fields: 'id,body' }),
  // A pattern taken from a field at run time (counts 100 nodes).
  'LIKE pattern from a field': (i) => sub(i, { filter: 'body ~ title' }),
  // LIKE on a JSON field (an object is matched as its JSON text): nine
  // nodes per key on the 10 KB meta, the first eight failing so that all
  // are evaluated (10 nodes with the ||: at most 20 keys, 180 scans of meta).
  'LIKE on a 10 KB JSON field': (i) => sub(i, { filter: [...Array.from({ length: 8 }, (_, k) => `meta ~ '%zq${k}%'`), "meta ~ '%a~b%'"].join(' || ') })
}
const EXTRA = { 'LIKE on a 10 KB JSON field': { meta: META } }

// Median and worst of BROADCASTS broadcastRecord() calls; after each, waits
// until `frames()` grew by `perBroadcast`.
async function timeBroadcasts (app, frames, perBroadcast, what, extra = {}) {
  const before = frames()
  const times = []
  for (let k = 0; k < BROADCASTS; k++) {
    // The title is a wildcard pattern (a guest may create posts in an open app).
    const record = { id: `p${k}`, title: `%a${'_'.repeat(1000)}b%`, body: BODY, ...extra }
    const t0 = process.hrtime.bigint()
    app.realtime.broadcastRecord(POSTS, 'create', record)
    times.push(Number(process.hrtime.bigint() - t0) / 1e6)
    // Every key's frame arrives (read before the next broadcast, so that the
    // client stays within maxQueueBytes as a live client would).
    const want = perBroadcast * (k + 1)
    await waitFor(() => frames() - before >= want, 20000, () => `${want} frames for ${what} (got ${frames() - before})`)
  }
  times.sort((a, b) => a - b)
  return { median: times[Math.floor(times.length / 2)], max: times[times.length - 1] }
}

// Posts fewer subscriptions until the client's budgets take them.
async function holdMost (port, clientId, make) {
  let n = 100
  for (;;) {
    const res = await post(port, { clientId, subscriptions: Array.from({ length: n }, (_, i) => make(i)) })
    if (res.status === 204) return n
    assert.equal(res.status, 400, `POST of ${n} subscriptions: ${res.body.slice(0, 300)}`)
    assert.match(res.body, /validation_budget_exceeded|validation_length_too_long/, res.body.slice(0, 300))
    n = n > 10 ? Math.floor(n * 0.9) : n - 1
    assert.ok(n > 0, 'the budget lets a guest hold at least one subscription')
  }
}

// One address opens `count` streams (the hub's maxConnectionsPerIp by
// default) and each tries an attack in turn: as many as the budgets allow,
// fewer while a per-client budget refuses, half while a per-address one does,
// until one fits or one is refused. Keys are distinct across streams (each
// within the 2500 characters the pattern leaves).
async function fillOneAddress (port, localAddress, count = 256) {
  const attacks = Object.entries(ATTACKS)
  const fits = new Map() // attack -> subscriptions one stream may hold (the per-client budgets)
  const full = new Set() // attacks of which the address can take no more
  const streams = []
  let held = 0
  let refused = 0
  for (let c = 0; c < count; c++) {
    const [name, make] = attacks[c % attacks.length]
    const s = await openStream(port, { localAddress })
    streams.push(s)
    const clientId = await s.connected()
    for (let n = full.has(name) ? 1 : fits.get(name) || 100; ;) {
      const subscriptions = Array.from({ length: n }, (_, i) => make((c * 100 + i).toString(36)))
      const res = await post(port, { clientId, subscriptions }, { localAddress })
      if (res.status === 204) {
        s.held = n
        held += n
        break
      }
      assert.equal(res.status, 400, res.body.slice(0, 300))
      if (/PerIp budget/.test(res.body)) {
        if (n === 1) {
          full.add(name)
          refused++
          break
        }
        n = Math.floor(n / 2)
      } else {
        n = n > 10 ? Math.floor(n * 0.9) : n - 1
        assert.ok(n > 0, `stream ${c} (${name}): ${res.body.slice(0, 300)}`)
        fits.set(name, n)
      }
    }
  }
  return { streams, holding: streams.filter((s) => s.held > 0), held, refused }
}

module.exports = { ATTACKS, EXTRA, META, BROADCASTS, openStream, post, holdMost, fillOneAddress, timeBroadcasts }
