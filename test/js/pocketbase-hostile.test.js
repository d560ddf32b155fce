'use strict'
// A hostile PocketBase client must not freeze the app (issue 10's reproduction,
// test/helpers/pb-hostile.js): one guest on one stream fills every
// subscription budget a guest may hold with the most expensive filters it can
// write, and the app broadcasts a post with a 10 KB body. Then one address
// opens 256 streams (the hub's maxConnectionsPerIp) and each tries the same:
// the budgets per address refuse all but the first few.
//
// What is asserted is that the budgets hold and that the work they leave is
// bounded: every frame arrives, and the time broadcastRecord() holds the JS
// thread stays under CEILING_MS. Before the budgets and the linear LIKE
// matcher, the first attack held it 3.1-3.5 s per broadcast; a regression to
// unbounded work lands far above the ceiling, while noise on a shared 2-core
// machine (6.3 ms measured once in CI for 3-5 ms quiet) stays below it. The
// issue's 5 ms target is a speed figure: the pocketbase-hostile scenario of
// bench/run.js measures and prints it (bench/pb-hostile.js).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startRealtimeApp } = require('../helpers/pb-http')
const { ATTACKS, EXTRA, META, BROADCASTS, openStream, post, holdMost, fillOneAddress, timeBroadcasts } = require('../helpers/pb-hostile')
const { sanitized } = require('../helpers/sanitized')

const CEILING_MS = 25

// A round over the ceiling is measured again (up to 3 rounds) before it fails
// the test: noise only ever adds time.
async function timeBest (app, frames, perBroadcast, what, extra) {
  let best = await timeBroadcasts(app, frames, perBroadcast, what, extra)
  const rounds = sanitized ? 1 : 3 // (a sanitized build is not held to the ceiling)
  for (let round = 2; round <= rounds && best.median > CEILING_MS; round++) {
    const again = await timeBroadcasts(app, frames, perBroadcast, what, extra)
    console.log(`# ${what}: round ${round}, median ${again.median.toFixed(3)} ms (before ${best.median.toFixed(3)} ms)`)
    if (again.median < best.median) best = again
  }
  return best
}

test('a guest holding the largest budget: every frame arrives, broadcastRecord stays bounded', async (t) => {
  // Every key of the client gets its own copy of the record: 100 keys × 11 KB
  // pass the default 1 MiB queue of one client, so the queue is larger here.
  const app = await startRealtimeApp('http', { hubOptions: { maxQueueBytes: 8 * 1024 * 1024 } })
  t.after(() => app.close())
  const rows = []
  for (const [name, make] of Object.entries(ATTACKS)) {
    const s = await openStream(app.port)
    const clientId = await s.connected()
    const held = await holdMost(app.port, clientId, make)
    assert.ok(held <= 100, `${name}: ${held} subscriptions held`)
    const { median, max } = await timeBest(app, () => s.events.length, held, name, EXTRA[name])
    rows.push({ attack: name, subscriptions: held, 'median ms': median.toFixed(3), 'max ms': max.toFixed(3) })
    await post(app.port, { clientId, subscriptions: [] })
    if (!sanitized) assert.ok(median <= CEILING_MS, `${name}: broadcastRecord held the JS thread ${median.toFixed(2)} ms (median of ${BROADCASTS})`)
  }
  console.log(`# hostile guest, one 10 KB broadcastRecord, JS thread time${sanitized ? ' (sanitized build: not asserted)' : ''}:`)
  console.table(rows)
})

test('256 streams of one address, each filling a guest budget: per-address budgets refuse, broadcastRecord stays bounded', async (t) => {
  const app = await startRealtimeApp('http', { hubOptions: { maxQueueBytes: 8 * 1024 * 1024 } })
  t.after(() => app.close())
  const { streams, holding, held, refused } = await fillOneAddress(app.port, '127.0.0.2')
  t.after(() => { for (const s of streams) s.close() })
  console.log(`# one address, 256 streams: ${holding.length} hold ${held} subscriptions (${holding.map((s) => s.held).join(', ')}), ${refused} refused by a per-address budget`)
  assert.ok(holding.length <= 12, `${holding.length} streams hold subscriptions`)
  assert.ok(refused >= 256 - 12, `${refused} POSTs refused by a per-address budget`)
  assert.ok(held <= 2 * 100, 'within maxOptionSubscriptionsPerIp')

  const frames = () => holding.reduce((n, s) => n + s.events.length, 0)
  const { median, max } = await timeBest(app, frames, held, '256 streams of one address', { meta: META })
  console.log(`# 256 streams of one address, one 10 KB broadcastRecord: median ${median.toFixed(3)} ms, max ${max.toFixed(3)} ms`)
  if (!sanitized) assert.ok(median <= CEILING_MS, `broadcastRecord held the JS thread ${median.toFixed(2)} ms (median of ${BROADCASTS})`)
})
