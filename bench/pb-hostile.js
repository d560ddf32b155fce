'use strict'
// The hostile PocketBase guest (issue 10) as a benchmark: the JS-thread time
// of one 10 KB broadcastRecord() while a guest holds the most expensive
// subscriptions its budgets allow (test/helpers/pb-hostile.js has the
// attacks), and while one address holds 256 streams. The target is
// 5 ms (median); run by bench/run.js's pocketbase-hostile scenario, or alone:
//
//   node bench/pb-hostile.js [--rounds R] [--json]
//
// Each attack is timed R times (3 by default) and its figure is the best
// round's median: noise on a shared machine only ever adds time. Prints a
// table, or one JSON line with --json.

const { startRealtimeApp } = require('../test/helpers/pb-http')
const { ATTACKS, EXTRA, META, openStream, post, holdMost, fillOneAddress, timeBroadcasts } = require('../test/helpers/pb-hostile')

const TARGET_MS = 5
const arg = (name, def) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : def
}
const ROUNDS = Number(arg('rounds', 3))

async function best (app, frames, perBroadcast, what, extra) {
  let b = null
  for (let r = 0; r < ROUNDS; r++) {
    const x = await timeBroadcasts(app, frames, perBroadcast, what, extra)
    if (!b || x.median < b.median) b = x
  }
  return b
}

async function main () {
  const rows = []
  const app = await startRealtimeApp('http', { hubOptions: { maxQueueBytes: 8 * 1024 * 1024 } })
  try {
    for (const [name, make] of Object.entries(ATTACKS)) {
      const s = await openStream(app.port)
      const clientId = await s.connected()
      const held = await holdMost(app.port, clientId, make)
      const { median, max } = await best(app, () => s.events.length, held, name, EXTRA[name])
      rows.push({ attack: name, subscriptions: held, medianMs: median, maxMs: max })
      await post(app.port, { clientId, subscriptions: [] })
      s.close()
    }
    const { streams, holding, held } = await fillOneAddress(app.port, '127.0.0.2')
    const frames = () => holding.reduce((n, s) => n + s.events.length, 0)
    const { median, max } = await best(app, frames, held, '256 streams', { meta: META })
    rows.push({ attack: `256 streams of one address (${holding.length} hold)`, subscriptions: held, medianMs: median, maxMs: max })
    for (const s of streams) s.close()
  } finally {
    await app.close()
  }
  const worst = Math.max(...rows.map((r) => r.medianMs))
  if (process.argv.includes('--json')) {
    console.log(JSON.stringify({ targetMs: TARGET_MS, worstMedianMs: worst, rows }))
  } else {
    console.table(rows.map((r) => ({ ...r, medianMs: r.medianMs.toFixed(3), maxMs: r.maxMs.toFixed(3) })))
    console.log(`worst median ${worst.toFixed(3)} ms, target ${TARGET_MS} ms: ${worst <= TARGET_MS ? 'met' : 'NOT met'}`)
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
