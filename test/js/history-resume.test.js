'use strict'
// History and resume over real sockets: a client that drops while publishing
// goes on resumes with Last-Event-ID and gets every event it missed once, in
// order (exact topics, prefix patterns, private events for their user only),
// 1000 clients at once against a hub in its own process; the reset cases;
// the position frames and heartbeats; retry ranges; the JS transport.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const path = require('node:path')
const { fork } = require('node:child_process')
const { once } = require('node:events')
const { SseParser } = require('../helpers/sse-parser')
const { waitFor, sleep, cleanup, within } = require('../helpers/wait')
const { matches, PROFILES } = require('../helpers/history-events')

/** One GET; resolves { res, parser, events, raw, close } once the head arrived. */
function open (port, path, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const events = []
      let raw = ''
      const parser = new SseParser((ev) => events.push(ev))
      res.setEncoding('utf8')
      res.on('data', (chunk) => { raw += chunk; parser.push(chunk) })
      res.on('error', () => {})
      resolve({ res, parser, events, get raw () { return raw }, close: () => req.destroy() })
    })
    req.on('error', reject)
  })
}

// One resuming client: connects with no cursor, then `drops` times: reads for
// a while, destroys its connection, waits, reconnects with the last id it
// saw; then stays until the "end" event. Resolves what it received.
async function resumingClient (port, profile, drops, onFinalConnection) {
  const query = `/events?topics=${profile.topics.join(',')}${profile.user ? `&user=${profile.user}` : ''}`
  const received = [] // k of every message, across connections
  let first = null // the position the first connection started at
  let cursor
  let end = null
  for (let c = 0; c <= drops; c++) {
    const conn = await open(port, query, cursor === undefined ? {} : { 'last-event-id': cursor })
    assert.equal(conn.res.statusCode, 200)
    let seen = 0
    const take = () => {
      for (; seen < conn.events.length; seen++) {
        const ev = conn.events[seen]
        if (ev.event === 'end') end = Number(ev.data)
        else if (ev.event === 'message') received.push(Number(ev.data))
        else throw new Error(`unexpected event ${ev.event}: ${ev.data}`)
      }
    }
    await waitFor(() => conn.parser.sourceLastEventId !== '', 10000, 'the position frame')
    if (first === null) {
      // A stream with no cursor begins with the position frame alone.
      const position = /^id: [A-Za-z0-9]+-(\d+)\n\n/.exec(conn.raw)
      assert.ok(position, `the first bytes are the position frame: ${JSON.stringify(conn.raw.slice(0, 60))}`)
      first = Number(position[1])
    }
    if (c < drops) {
      await sleep(20 + Math.floor(Math.random() * 80))
      conn.close()
      take()
      cursor = conn.parser.sourceLastEventId // what EventSource would send
      await sleep(Math.floor(Math.random() * 40))
    } else {
      onFinalConnection()
      await waitFor(() => { take(); return end !== null }, 30000, 'the end event')
      conn.close()
    }
  }
  return { first, received, end }
}

function expected (profile, first, end) {
  const out = []
  for (let k = first + 1; k <= end; k++) if (matches(k, profile.topics, profile.user)) out.push(k)
  return out
}

// perMs: events published a millisecond during the storm (0: as fast as the
// hub's I/O threads take them).
async function resumeStorm (t, { transport, clients, drops, perMs }) {
  const defer = cleanup(t, 20000)
  const child = fork(path.join(__dirname, '../helpers/history-server.js'), [transport], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  defer(() => { child.disconnect(); return once(child, 'exit') }, 'the hub process')
  const [{ port }] = await once(child, 'message')
  child.send({ start: perMs })
  const t0 = Date.now()
  let final = 0
  const runs = []
  for (let i = 0; i < clients; i++) runs.push(resumingClient(port, PROFILES[i % PROFILES.length], drops, () => final++))
  const failed = Promise.race(runs.map((p) => p.then(() => new Promise(() => {}))))
  // Publishing goes on until every client has made its drops and is on its
  // last connection; "end" follows the last event.
  await Promise.race([failed, waitFor(() => final === clients, 60000, 'every client on its last connection')])
  if (process.env.DEBUG_TIMING) console.log('last connections after', Date.now() - t0)
  child.send('stop')
  const [{ published, stats }] = await once(child, 'message')
  const results = await within(Promise.all(runs), 60000, 'every client got its events')
  assert.ok(published > 1000, `published ${published} events during the storm`)
  let replayedTotal = 0
  for (let i = 0; i < results.length; i++) {
    const { first, received, end } = results[i]
    const profile = PROFILES[i % PROFILES.length]
    assert.equal(end, published, `client ${i}: the end event`)
    const want = expected(profile, first, published)
    if (received.length !== want.length || received.some((k, j) => k !== want[j])) {
      const got = new Set(received)
      const missing = want.filter((k) => !got.has(k))
      const dup = received.filter((k, j) => received.indexOf(k) !== j)
      assert.fail(`client ${i} (${JSON.stringify(profile)}): ${received.length} events, want ${want.length}; missing ${missing.slice(0, 5)}, duplicated ${dup.slice(0, 5)}`)
    }
    replayedTotal += received.length
  }
  assert.equal(stats.resets.unknown + stats.resets.epoch + stats.resets.expired + stats.resets.limit, 0, 'no reset')
  assert.ok(stats.replays >= clients * drops, `${stats.replays} resumes served from the history`)
  assert.ok(replayedTotal > 0)
}

// The rates keep what the test process parses (every client's events, in
// JS) within what it can read as fast as they come.
test('1000 clients drop and resume with Last-Event-ID at once while publishing goes on: every missed event once, in order', { timeout: 120000 }, async (t) => {
  await resumeStorm(t, { transport: 'auto', clients: 1000, drops: 2, perMs: 0.2 })
})

test('8 clients drop and resume while publishing at full rate (as fast as the I/O threads take events)', { timeout: 120000 }, async (t) => {
  await resumeStorm(t, { transport: 'auto', clients: 8, drops: 3, perMs: 0 })
})

test('the JS transport resumes the same way (100 clients)', { timeout: 60000 }, async (t) => {
  await resumeStorm(t, { transport: 'js', clients: 100, drops: 2, perMs: 1 })
})
