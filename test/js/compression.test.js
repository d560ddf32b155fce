'use strict'
// Compressed streams (issue 16) over real sockets, for gzip and deflate:
//  1. zlib's streaming decoder, fed each chunk as it arrives, gets every event
//     before the next one is published; the decoded body equals, byte for
//     byte, what an identity subscriber on the same topics received (256 B and
//     1 KiB JSON, a 200 KiB event, events under minBytes, `compress: false`
//     events, whose plaintext is in the compressed bytes as-is when no other
//     event's is); gzip and deflate streams carry the same deflate bytes.
//  2. Endings: hub.close() and kick() end with a valid trailer (the decoder's
//     'end', and the CRC-32/ISIZE or Adler-32 checked by a one-shot decode);
//     a slow consumer is cut without crashing the hub while the others go on;
//     a reconnect with Last-Event-ID replays compressed; heartbeats decode.
//  3. Negotiation: no Accept-Encoding, identity, gzip;q=0, br -> identity with
//     Vary; accept({ compress }) both ways; an app's own Content-Encoding;
//     HTTP/1.0 (no chunked framing).
//  4. curl --compressed -N receives the events live.
//  5. hub.stats().compression: connections, bytesIn and bytesOut, exactly.
//  6. Option errors (ERR_SSE_INVALID_ARGUMENT).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const crypto = require('node:crypto')
const { spawn } = require('node:child_process')
const { Hub } = require('../..')
const { eventsPath, startEventsServer, openStream, decodeWhole, headerLines } = require('../helpers/compressed')
const { recordDisconnects } = require('../helpers/server')
const { cleanup, waitFor, within } = require('../helpers/wait')
const { unsanitizedEnv } = require('../helpers/sanitized')

const CODINGS = ['gzip', 'deflate']
const KIB = 1024

/**
 * JSON text of exactly `size` bytes (ASCII), shaped like an API record: an
 * order with line items; k makes each one different.
 */
function jsonOf (size, k) {
  const head = { seq: k, type: 'order.updated', user: { id: `user-${k % 7}`, name: 'Ada Lovelace', roles: ['admin', 'editor'] } }
  const items = []
  let length = JSON.stringify({ ...head, items: [], pad: '' }).length
  for (let i = 0; ; i++) {
    const item = JSON.stringify({ sku: `SKU-${(k * 31 + i) % 1000}`, qty: (i % 5) + 1, price: Number((9.99 + i).toFixed(2)), currency: 'EUR' })
    if (length + item.length + 1 > size) break
    items.push(item)
    length += item.length + (items.length > 1 ? 1 : 0)
  }
  const body = JSON.stringify(head).slice(0, -1) + `,"items":[${items.join(',')}],"pad":"`
  return body + 'x'.repeat(size - body.length - 2) + '"}'
}

/** Base64 text of `size` bytes from random bytes: compresses little. */
function randomText (size) {
  return crypto.randomBytes(Math.ceil(size * 3 / 4)).toString('base64').slice(0, size)
}

/** A hub closed after the test (threads: 2, so streams sit on both I/O threads). */
function startHub (t, options) {
  const hub = new Hub({ threads: 2, heartbeatMs: 0, compression: true, ...options })
  cleanup(t)(() => hub.close(), 'hub.close()')
  return hub
}

/** Opens a stream and destroys it after the test. */
async function open (t, port, path, options) {
  const s = await openStream(port, path, options)
  cleanup(t)(() => s.close(), `close ${path}`)
  assert.equal(s.status, 200, `GET ${path}: status`)
  return s
}

/** a and b are the same bytes; otherwise says where they first differ. */
function assertSameBytes (a, b, what) {
  if (a.equals(b)) return
  let i = 0
  while (i < a.length && i < b.length && a[i] === b[i]) i++
  assert.fail(`${what}: ${a.length} and ${b.length} bytes, first difference at ${i}: ` +
    `${JSON.stringify(a.subarray(Math.max(0, i - 40), i + 40).toString('latin1'))} vs ` +
    `${JSON.stringify(b.subarray(Math.max(0, i - 40), i + 40).toString('latin1'))}`)
}

/**
 * Publishes each entry of plan ({ topic (null: broadcast), data, options })
 * and waits until every stream decoded it before the next: an event held in
 * a buffer until the next one comes fails here.
 */
async function publishEach (hub, plan, streams, already = 0) {
  for (let k = 0; k < plan.length; k++) {
    const { topic, data, options } = plan[k]
    if (topic === null) hub.broadcast(data, options)
    else hub.publish(topic, data, options)
    for (const s of streams) {
      await s.waitEvents(already + k + 1, 5000)
      assert.equal(s.events[already + k].data, data, `event ${k} (${s.coding || 'identity'}) decoded intact before the next publish`)
    }
  }
}

/** The stream ended cleanly: the decoder saw the whole compressed stream, and its trailer checks. */
function assertCleanEnd (s, what) {
  assert.equal(s.ended, true, `${what}: the body ended (not cut)`)
  assert.equal(s.decodeError, null, `${what}: the streaming decoder failed: ${s.decodeError}`)
  if (s.coding !== null) assert.equal(s.decoderEnded, true, `${what}: the streaming decoder reached the end of the compressed stream`)
  // A one-shot decode checks the trailer: CRC-32 and ISIZE (gzip) or Adler-32 (deflate).
  assertSameBytes(decodeWhole(s.coding, s.body()), s.decoded(), `${what}: zlib's one-shot decode (trailer checked)`)
}

const THE_PLAN = () => {
  const plan = []
  for (let k = 0; k < 5; k++) plan.push({ topic: 'a', data: jsonOf(256, k) })
  for (let k = 0; k < 5; k++) plan.push({ topic: 'b', data: jsonOf(KIB, k), options: { event: 'update', id: `order-${k}` } })
  for (let k = 0; k < 3; k++) plan.push({ topic: 'a', data: `tiny ${k}` })
  plan.push({ topic: 'b', data: `{"secret":"${'s3cr3t-'.repeat(40)}"}`, options: { compress: false } })
  plan.push({ topic: 'a', data: 'line one\nline two\n\nline four' })
  plan.push({ topic: 'a', data: jsonOf(200 * KIB, 99) })
  plan.push({ topic: 'b', data: randomText(200 * KIB), options: { compress: false, event: 'blob' } })
  plan.push({ topic: null, data: jsonOf(KIB, 100) })
  plan.push({ topic: 'a', data: jsonOf(KIB, 101) })
  return plan
}

for (const coding of CODINGS) {
  test(`[${coding}] zlib's streaming decoder gets each event before the next publish; the body equals the identity subscriber's, byte for byte`, async (t) => {
    const hub = startHub(t)
    const { port } = await startEventsServer(t, hub, { acceptOptions: { retry: 2500 } })
    const path = eventsPath(['a', 'b'])
    const coded = await open(t, port, path, { acceptEncoding: coding })
    const identity = await open(t, port, path)
    await waitFor(() => hub.stats().connections === 2, 5000, 'both streams accepted')

    assert.equal(coded.coding, coding)
    assert.deepEqual(headerLines(coded, 'content-encoding'), [coding])
    assert.deepEqual(headerLines(coded, 'vary'), ['accept-encoding'])
    assert.deepEqual(headerLines(coded, 'transfer-encoding'), ['chunked'])
    assert.match(coded.headers['content-type'], /^text\/event-stream/)
    assert.deepEqual(headerLines(identity, 'content-encoding'), [])
    assert.deepEqual(headerLines(identity, 'vary'), ['accept-encoding'], 'the answer depends on Accept-Encoding')

    const plan = THE_PLAN()
    await publishEach(hub, plan, [coded, identity])
    await hub.close()
    await coded.waitEnd()
    await identity.waitEnd()

    assertCleanEnd(coded, coding)
    assert.equal(identity.ended, true)
    assertSameBytes(coded.decoded(), identity.body(), 'decoded body vs the identity body')
    assert.deepEqual(coded.events.map((e) => [e.event, e.data, e.lastEventId]), identity.events.map((e) => [e.event, e.data, e.lastEventId]))
    assert.equal(coded.events.length, plan.length)
    assert.deepEqual(coded.events.map((e) => e.event), plan.map((p) => (p.options && p.options.event) || 'message'))
    // 200 KiB of it is the random compress:false event: the rest shrinks.
    assert.equal(coded.body().length < identity.body().length * 0.6, true,
      `compressed ${coded.body().length} bytes for ${identity.body().length}`)
    assert.equal(coded.decoded().toString('latin1', 0, 13), 'retry: 2500\n\n', 'the retry line, as a stored block')

    // What went out as-is: the compress:false events and those under
    // minBytes (stored blocks); what did not: every compressed event.
    const raw = coded.body().toString('latin1')
    const text = identity.body().toString('latin1')
    const frames = text.split('\n\n').slice(0, -1).map((f) => f + '\n\n')
    const secret = frames.find((f) => f.includes('s3cr3t-'))
    assert.equal(raw.includes(secret), true, 'the compress:false event is in the compressed body as-is')
    const blob = plan.find((p) => p.options && p.options.event === 'blob').data
    assert.equal(raw.includes(blob.slice(0, 60000)), true, 'the 200 KiB compress:false event goes out in stored blocks')
    for (const f of frames.filter((f) => f.includes('tiny '))) assert.equal(raw.includes(f), true, `${JSON.stringify(f)} (under minBytes) as a stored block`)
    for (const p of plan.filter((p) => !(p.options && p.options.compress === false) && p.data.length >= 256)) {
      assert.equal(raw.includes(p.data.slice(0, 48)), false, `a compressed event's plaintext is not in the body: ${p.data.slice(0, 48)}`)
    }
  })

  test(`[${coding}] hub.kick() ends the stream with a valid trailer; the other stream goes on`, async (t) => {
    const hub = startHub(t, { threads: 1 })
    const disconnects = recordDisconnects(hub)
    const { port, accepted } = await startEventsServer(t, hub)
    const kicked = await open(t, port, eventsPath(['a']), { acceptEncoding: coding })
    const other = await open(t, port, eventsPath(['a']), { acceptEncoding: coding })
    await waitFor(() => accepted.length === 2, 5000, 'both streams accepted')
    const plan = [0, 1, 2].map((k) => ({ topic: 'a', data: jsonOf(KIB, k) }))
    await publishEach(hub, plan, [kicked, other])

    hub.kick(accepted[0].id)
    await kicked.waitEnd()
    assertCleanEnd(kicked, 'the kicked stream')
    assert.deepEqual(kicked.events.map((e) => e.data), plan.map((p) => p.data))
    await waitFor(() => disconnects.byId.has(accepted[0].id), 5000, 'the kick reported')
    assert.deepEqual(disconnects.byId.get(accepted[0].id), ['kicked'])

    const more = [3, 4].map((k) => ({ topic: 'a', data: jsonOf(256, k) }))
    await publishEach(hub, more, [other], plan.length)
    assert.equal(kicked.events.length, plan.length, 'nothing after the kick')
    // send() to the one stream: compressed, and as-is with compress: false.
    const sent = [jsonOf(KIB, 5), `{"token":"${'t0k3n-'.repeat(30)}"}`]
    hub.send(accepted[1].id, sent[0], { event: 'direct' })
    await other.waitEvents(6)
    hub.send(accepted[1].id, sent[1], { event: 'direct', compress: false })
    await other.waitEvents(7)
    assert.deepEqual(other.events.slice(5).map((e) => [e.event, e.data]), sent.map((d) => ['direct', d]))
    await hub.close()
    await other.waitEnd()
    assertCleanEnd(other, 'the other stream, at hub.close()')
    assert.equal(other.events.length, 7)
    const raw = other.body().toString('latin1')
    assert.equal(raw.includes(`event: direct\ndata: ${sent[1]}\n\n`), true, 'send({ compress: false }) as-is')
    assert.equal(raw.includes(sent[0].slice(0, 48)), false, 'send() compressed')
  })

  test(`[${coding}] reconnecting with Last-Event-ID on a history hub replays compressed: equal to an identity replay`, async (t) => {
    const hub = startHub(t, { history: true })
    const { port } = await startEventsServer(t, hub)
    const path = eventsPath(['a', 'b'])
    const first = await open(t, port, path, { acceptEncoding: coding })
    await waitFor(() => hub.stats().connections === 1, 5000, 'the first stream accepted')
    const seen = [0, 1, 2].map((k) => ({ topic: k % 2 ? 'b' : 'a', data: jsonOf(KIB, k) }))
    await publishEach(hub, seen, [first])
    const cursor = first.events.at(-1).lastEventId
    assert.match(cursor, new RegExp(`^${hub.options.history.epoch}-\\d+$`))
    first.close()
    await waitFor(() => hub.stats().connections === 0, 5000, 'the first stream gone')

    const missed = [
      { topic: 'a', data: jsonOf(256, 3) },
      { topic: 'b', data: jsonOf(KIB, 4), options: { event: 'update' } },
      { topic: 'a', data: 'tiny 5' },
      { topic: 'b', data: `{"secret":"${'p4ss-'.repeat(40)}"}`, options: { compress: false } },
      { topic: 'a', data: jsonOf(64 * KIB, 6) }
    ]
    const ids = missed.map(({ topic, data, options }) => hub.publish(topic, data, options))
    const coded = await open(t, port, path, { acceptEncoding: coding, headers: { 'last-event-id': cursor } })
    const identity = await open(t, port, path, { headers: { 'last-event-id': cursor } })
    assert.equal(coded.coding, coding)
    await coded.waitEvents(missed.length)
    await identity.waitEvents(missed.length)
    const live = [{ topic: 'a', data: jsonOf(KIB, 7) }]
    await publishEach(hub, live, [coded, identity], missed.length)

    await hub.close()
    await coded.waitEnd()
    await identity.waitEnd()
    assertCleanEnd(coded, 'the resumed stream')
    assertSameBytes(coded.decoded(), identity.body(), 'resumed: decoded body vs the identity body')
    assert.deepEqual(coded.events.map((e) => [e.data, e.lastEventId]),
      [...missed.map((p, k) => [p.data, ids[k]]), [live[0].data, coded.events.at(-1).lastEventId]])
    assert.equal(hub.stats().history.replays >= 2, true)
    assert.equal(coded.body().toString('latin1').includes(missed[3].data), true, 'a replayed compress:false event stays as-is')
    assert.equal(coded.body().toString('latin1').includes(missed[1].data.slice(0, 48)), false, 'a replayed event is compressed')
  })

  test(`[${coding}] heartbeats on a compressed stream decode as they come`, async (t) => {
    const hub = startHub(t, { threads: 1, heartbeatMs: 50 })
    const { port } = await startEventsServer(t, hub)
    const s = await open(t, port, eventsPath(['a']), { acceptEncoding: coding })
    await waitFor(() => s.comments() >= 3, 5000, () => `three heartbeats decoded (got ${s.comments()})`)
    await publishEach(hub, [{ topic: 'a', data: jsonOf(KIB, 0) }], [s])
    await waitFor(() => s.comments() >= 5, 5000, () => `heartbeats after an event (got ${s.comments()})`)
    await hub.close()
    await s.waitEnd()
    assertCleanEnd(s, 'with heartbeats')
  })

  test(`[${coding}] HTTP/1.0 (no chunked framing): the compressed body runs to EOF and ends with a valid trailer`, async (t) => {
    const hub = startHub(t, { threads: 1 })
    const { port } = await startEventsServer(t, hub)
    const s = await open(t, port, eventsPath(['a']), { acceptEncoding: coding, http10: true })
    assert.equal(s.httpVersion, '1.1')
    assert.equal(s.coding, coding)
    assert.deepEqual(headerLines(s, 'transfer-encoding'), [])
    assert.deepEqual(headerLines(s, 'connection'), ['close'])
    await waitFor(() => hub.stats().connections === 1, 5000, 'accepted')
    const plan = [jsonOf(256, 0), jsonOf(KIB, 1), 'tiny', jsonOf(100 * KIB, 2)].map((data) => ({ topic: 'a', data }))
    await publishEach(hub, plan, [s])
    await hub.close()
    await s.waitEnd()
    assertCleanEnd(s, 'HTTP/1.0')
    assert.equal(s.decoded().toString(), plan.map((p) => `data: ${p.data}\n\n`).join(''))
  })

  test(`[${coding}] curl --compressed -N receives each event live, and the end of the stream`, async (t) => {
    const hub = startHub(t, { threads: 1 })
    const { port } = await startEventsServer(t, hub)
    const args = ['--compressed', '-N', '-sS', '--max-time', '30', '-D', '-']
    if (coding === 'deflate') args.push('-H', 'Accept-Encoding: deflate')
    args.push(`http://127.0.0.1:${port}${eventsPath(['a'])}`)
    const curl = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'], env: unsanitizedEnv() })
    const exited = new Promise((resolve) => curl.once('exit', (code, signal) => resolve({ code, signal })))
    cleanup(t)(() => { if (curl.exitCode === null) curl.kill('SIGKILL'); return exited }, 'curl')
    let out = Buffer.alloc(0)
    let err = ''
    curl.stdout.on('data', (b) => { out = Buffer.concat([out, b]) })
    curl.stderr.on('data', (b) => { err += b })
    await waitFor(() => hub.stats().connections === 1, 10000, 'curl connected')
    await waitFor(() => out.includes('\r\n\r\n'), 5000, 'the response head')
    const head = out.subarray(0, out.indexOf('\r\n\r\n')).toString('latin1').toLowerCase()
    assert.match(head, new RegExp(`\r\ncontent-encoding: ${coding}\r\n`))

    const body = () => out.subarray(out.indexOf('\r\n\r\n') + 4).toString()
    const plan = [jsonOf(256, 0), jsonOf(KIB, 1), 'tiny', jsonOf(KIB, 2), jsonOf(200 * KIB, 3), jsonOf(KIB, 4)]
    let expected = ''
    for (const data of plan) {
      hub.publish('a', data)
      expected += `data: ${data}\n\n`
      await waitFor(() => body() === expected, 5000, () => `curl printed the event before the next publish (stderr ${err})`, 5)
    }
    await hub.close()
    const { code } = await within(exited, 10000, 'curl exits at the end of the stream')
    assert.equal(code, 0, `curl's exit code (stderr: ${err})`)
    assert.equal(body(), expected)
  })
}

test('idleTimeoutMs and maxLifetimeMs end a compressed stream with a valid trailer', async (t) => {
  const hub = startHub(t, { threads: 1 })
  const disconnects = recordDisconnects(hub)
  const lifetime = await startEventsServer(t, hub, { acceptOptions: { maxLifetimeMs: 400 } })
  const idle = await startEventsServer(t, hub, { acceptOptions: { idleTimeoutMs: 400 } })
  const streams = [
    await open(t, lifetime.port, eventsPath(['a']), { acceptEncoding: 'gzip' }),
    await open(t, idle.port, eventsPath(['a']), { acceptEncoding: 'deflate' })
  ]
  await waitFor(() => hub.stats().connections === 2, 5000, 'both accepted')
  await publishEach(hub, [{ topic: 'a', data: jsonOf(KIB, 0) }], streams)
  for (const s of streams) {
    await s.waitEnd(5000)
    assertCleanEnd(s, `${s.coding} timed out`)
    assert.equal(s.events.length, 1)
  }
  await waitFor(() => disconnects.list.length === 2, 5000, 'both reported')
  assert.deepEqual(disconnects.list.map((d) => d.reason), ['timeout', 'timeout'])
  assert.equal(hub.stats().compression.connections, 0)
})

test('a stream on the JS transport stays identity (no Content-Encoding, no Vary) on a hub with compression', async (t) => {
  const hub = startHub(t, { threads: 1, transport: 'js' })
  const { port } = await startEventsServer(t, hub)
  const s = await open(t, port, eventsPath(['a']), { acceptEncoding: 'gzip' })
  assert.equal(s.coding, null)
  assert.deepEqual(headerLines(s, 'vary'), [])
  await waitFor(() => hub.stats().connections === 1, 5000, 'accepted')
  const data = jsonOf(KIB, 0)
  await publishEach(hub, [{ topic: 'a', data }], [s])
  assert.equal(hub.stats().compression.connections, 0)
  await hub.close()
  await s.waitEnd()
  assert.equal(s.body().toString(), `data: ${data}\n\n`)
})

test('gzip and deflate streams carry the same deflate bytes: each event compressed once', async (t) => {
  const hub = startHub(t)
  const { port } = await startEventsServer(t, hub)
  const path = eventsPath(['a', 'b'])
  const streams = [
    await open(t, port, path, { acceptEncoding: 'gzip' }),
    await open(t, port, path, { acceptEncoding: 'deflate' }),
    await open(t, port, path, { acceptEncoding: 'gzip' }),
    await open(t, port, path, { acceptEncoding: 'deflate, gzip;q=0.5' })
  ]
  await waitFor(() => hub.stats().connections === 4, 5000, 'every stream accepted')
  assert.deepEqual(streams.map((s) => s.coding), ['gzip', 'deflate', 'gzip', 'deflate'])
  await publishEach(hub, THE_PLAN(), streams)
  await hub.close()
  for (const s of streams) {
    await s.waitEnd()
    assertCleanEnd(s, s.coding)
  }
  const [gzip, deflate, gzip2, deflate2] = streams.map((s) => s.body())
  // gzip: 10-byte header, 8-byte trailer; zlib: 2-byte header, 4-byte trailer.
  assertSameBytes(gzip.subarray(10, -8), deflate.subarray(2, -4), 'the deflate data of the gzip and the deflate stream')
  assertSameBytes(gzip, gzip2, 'two gzip streams')
  assertSameBytes(deflate, deflate2, 'two deflate streams')
  assertSameBytes(streams[0].decoded(), streams[1].decoded(), 'decoded gzip vs decoded deflate')
})

test('a slow consumer of a compressed stream is cut (no trailer); the hub and the other compressed streams go on', async (t) => {
  const hub = startHub(t, { maxQueueBytes: 64 * KIB, sndbufBytes: 16384 })
  const disconnects = recordDisconnects(hub)
  const { port, accepted } = await startEventsServer(t, hub)
  const healthy = [
    await open(t, port, eventsPath(['feed']), { acceptEncoding: 'gzip' }),
    await open(t, port, eventsPath(['feed']), { acceptEncoding: 'deflate' }),
    await open(t, port, eventsPath(['feed']))
  ]
  const stalled = [
    await open(t, port, eventsPath(['feed']), { acceptEncoding: 'gzip' }),
    await open(t, port, eventsPath(['feed']), { acceptEncoding: 'deflate' })
  ]
  for (const s of stalled) s.pause()
  await waitFor(() => accepted.length === 5, 5000, 'every stream accepted')
  const stalledIds = accepted.slice(3).map((a) => a.id)

  // 4 KiB events that compress little, in rounds the healthy streams read
  // before the next: only the stalled ones fall behind.
  let published = 0
  for (let round = 0; !stalledIds.every((id) => disconnects.byId.has(id)); round++) {
    assert.ok(round < 400, `the stalled streams were not cut after ${published} events`)
    const batch = []
    for (let b = 0; b < 8; b++) batch.push({ topic: 'feed', data: `${published + b}:${randomText(4 * KIB)}` })
    for (const { topic, data } of batch) hub.publish(topic, data)
    published += batch.length
    for (const s of healthy) await s.waitEvents(published, 10000)
  }
  for (const id of stalledIds) assert.deepEqual(disconnects.byId.get(id), ['slow'])
  assert.equal(hub.stats().compression.connections, 2, 'the two healthy compressed streams')

  const after = [0, 1, 2].map((k) => ({ topic: 'feed', data: jsonOf(KIB, k) }))
  await publishEach(hub, after, healthy, published)
  published += after.length
  await hub.close()
  for (const s of healthy) {
    await s.waitEnd()
    assertCleanEnd(s, `healthy ${s.coding || 'identity'}`)
    assert.equal(s.events.length, published)
    assert.deepEqual(s.events.slice(0, published - 3).map((e) => Number(e.data.split(':')[0])),
      Array.from({ length: published - 3 }, (_, k) => k), 'in order')
  }
  // The cut streams, once they read, find a compressed stream cut short.
  for (const s of stalled) {
    s.resume()
    await s.waitEnd(10000)
    assert.equal(s.events.length < published, true, `a cut stream got ${s.events.length} of ${published}`)
    assert.throws(() => decodeWhole(s.coding, s.body()), /unexpected end of file/, 'no trailer')
  }
  assertSameBytes(healthy[0].decoded(), healthy[2].body(), 'healthy gzip vs identity')
  assertSameBytes(healthy[1].decoded(), healthy[2].body(), 'healthy deflate vs identity')
})

test('negotiation: no Accept-Encoding, identity, gzip;q=0, br, x-gzip -> identity (with Vary); q-values pick gzip or deflate', async (t) => {
  const hub = startHub(t, { threads: 1 })
  const { port } = await startEventsServer(t, hub)
  const cases = [
    [undefined, null],
    ['identity', null],
    ['gzip;q=0', null],
    ['br', null],
    ['x-gzip', null],
    ['gzip;q=0, deflate;q=0', null],
    ['gzip', 'gzip'],
    ['GZIP', 'gzip'],
    ['deflate', 'deflate'],
    ['deflate, gzip;q=0.5', 'deflate'],
    ['gzip;q=0, *', 'deflate'],
    ['gzip, deflate, br, zstd', 'gzip'],
    ['*', 'gzip']
  ]
  const streams = []
  for (const [header, coding] of cases) {
    const s = await open(t, port, eventsPath(['a']), { acceptEncoding: header })
    streams.push(s)
    assert.equal(s.coding, coding, `Accept-Encoding ${header}`)
    assert.deepEqual(headerLines(s, 'content-encoding'), coding === null ? [] : [coding], `Accept-Encoding ${header}: Content-Encoding`)
    assert.deepEqual(headerLines(s, 'vary'), ['accept-encoding'], `Accept-Encoding ${header}: Vary`)
  }
  await waitFor(() => hub.stats().connections === cases.length, 5000, 'every stream accepted')
  assert.equal(hub.stats().compression.connections, cases.filter(([, c]) => c !== null).length)
  const plan = [{ topic: 'a', data: jsonOf(KIB, 0) }, { topic: 'a', data: 'tiny' }]
  await publishEach(hub, plan, streams)
  await hub.close()
  for (const s of streams) {
    await s.waitEnd()
    assertCleanEnd(s, s.coding || 'identity')
    assert.equal(s.decoded().toString(), plan.map((p) => `data: ${p.data}\n\n`).join(''))
  }
})

test('accept({ compress: false }) is identity for a client that accepts gzip; a hub without the option compresses only with accept({ compress: true })', async (t) => {
  const on = startHub(t, { threads: 1 })
  const off = startHub(t, { threads: 1, compression: undefined })
  assert.equal(off.options.compression, null)
  const onServer = await startEventsServer(t, on)
  const offServer = await startEventsServer(t, off)

  const refused = await open(t, onServer.port, eventsPath(['a'], { compress: false }), { acceptEncoding: 'gzip, deflate' })
  const plain = await open(t, offServer.port, eventsPath(['a']), { acceptEncoding: 'gzip, deflate' })
  const forced = await open(t, offServer.port, eventsPath(['a'], { compress: true }), { acceptEncoding: 'gzip, deflate' })
  const forcedNoHeader = await open(t, offServer.port, eventsPath(['a'], { compress: true }))
  assert.equal(refused.coding, null)
  assert.equal(plain.coding, null)
  assert.deepEqual(headerLines(plain, 'vary'), [], 'no compression offered: no Vary')
  assert.equal(forced.coding, 'gzip')
  assert.deepEqual(headerLines(forced, 'vary'), ['accept-encoding'])
  assert.equal(forcedNoHeader.coding, null)
  assert.deepEqual(headerLines(forcedNoHeader, 'vary'), ['accept-encoding'])
  await waitFor(() => on.stats().connections === 1 && off.stats().connections === 3, 5000, 'every stream accepted')
  assert.equal(on.stats().compression.connections, 0)
  assert.equal(off.stats().compression.connections, 1)

  const data = jsonOf(KIB, 0)
  on.publish('a', data)
  off.publish('a', data)
  for (const s of [refused, plain, forced, forcedNoHeader]) await s.waitEvents(1)
  await Promise.all([on.close(), off.close()])
  for (const s of [refused, plain, forced, forcedNoHeader]) {
    await s.waitEnd()
    assertCleanEnd(s, s.coding || 'identity')
    assert.equal(s.decoded().toString(), `data: ${data}\n\n`)
  }
  assert.equal(refused.body().toString(), `data: ${data}\n\n`, 'sent as plain text')
})

test('a Content-Encoding the app set is kept, and the stream is not compressed', async (t) => {
  const hub = startHub(t, { threads: 1 })
  const { port } = await startEventsServer(t, hub, {
    beforeAccept: (req, res) => res.setHeader('Content-Encoding', 'identity')
  })
  const s = await open(t, port, eventsPath(['a']), { acceptEncoding: 'gzip' })
  assert.deepEqual(headerLines(s, 'content-encoding'), ['identity'])
  await waitFor(() => hub.stats().connections === 1, 5000, 'accepted')
  assert.equal(hub.stats().compression.connections, 0)
  const data = jsonOf(KIB, 0)
  hub.publish('a', data)
  await waitFor(() => s.body().toString() === `data: ${data}\n\n`, 5000, 'the event as plain text')
})

test('hub.stats().compression: compressed connections, and bytes before and after compression, exactly', async (t) => {
  const hub = startHub(t)
  const { port } = await startEventsServer(t, hub)
  const path = eventsPath(['a'])
  const coded = [
    await open(t, port, path, { acceptEncoding: 'gzip' }),
    await open(t, port, path, { acceptEncoding: 'deflate' }),
    await open(t, port, path, { acceptEncoding: 'gzip' })
  ]
  const identity = await open(t, port, path)
  await waitFor(() => hub.stats().connections === 4, 5000, 'every stream accepted')
  assert.deepEqual(hub.stats().compression, { connections: 3, bytesIn: 0, bytesOut: 2 * 10 + 2 },
    'three compressed streams; out: their headers so far')

  const frames0 = hub.stats().frames // process-wide: other hubs' frames count too
  const plan = Array.from({ length: 20 }, (_, k) => ({ topic: 'a', data: jsonOf(KIB, k) }))
  await publishEach(hub, plan, [...coded, identity])
  // Without history nothing holds an event once it is written: its coded
  // variant goes with it (both are frames).
  await waitFor(() => hub.stats().frames <= frames0, 5000, () => `the frames and their variants freed (${hub.stats().frames} alive, ${frames0} before)`)
  const { compression } = hub.stats()
  const decoded = coded.reduce((n, s) => n + s.decoded().length, 0)
  const wire = coded.reduce((n, s) => n + s.body().length, 0)
  assert.equal(compression.bytesIn, decoded, 'bytesIn: what the compressed streams stand for')
  assert.equal(compression.bytesOut, wire, 'bytesOut: what they carried')
  assert.equal(compression.bytesIn >= 3 * 20 * KIB, true)
  assert.equal(compression.bytesIn > compression.bytesOut, true, JSON.stringify(compression))
  assert.equal(compression.bytesOut <= compression.bytesIn / 2, true, `1 KiB JSON compresses at least 2:1 (${JSON.stringify(compression)})`)
  assert.equal(identity.decoded().length * 3, decoded)

  coded[2].close()
  await waitFor(() => hub.stats().compression.connections === 2, 5000, 'a compressed stream gone')
  identity.close()
  await waitFor(() => hub.stats().connections === 2, 5000, 'the identity stream gone')
  assert.equal(hub.stats().compression.connections, 2)
})

test('minBytes and level: events under minBytes go as stored blocks, level 1..9 all decode', async (t) => {
  for (const level of [1, 9]) {
    const hub = startHub(t, { threads: 1, compression: { level, minBytes: 2000 } })
    assert.deepEqual(hub.options.compression, { level, minBytes: 2000 })
    const { port } = await startEventsServer(t, hub)
    const s = await open(t, port, eventsPath(['a']), { acceptEncoding: 'gzip' })
    await waitFor(() => hub.stats().connections === 1, 5000, 'accepted')
    const small = jsonOf(KIB, 0) // 1030 bytes with its framing: under 2000
    const big = jsonOf(4 * KIB, 1)
    await publishEach(hub, [{ topic: 'a', data: small }, { topic: 'a', data: big }], [s])
    await hub.close()
    await s.waitEnd()
    assertCleanEnd(s, `level ${level}`)
    const raw = s.body().toString('latin1')
    assert.equal(raw.includes(`data: ${small}\n\n`), true, `level ${level}: an event under minBytes is stored`)
    assert.equal(raw.includes(big.slice(0, 48)), false, `level ${level}: an event at minBytes is compressed`)
  }
})

test('option errors: ERR_SSE_INVALID_ARGUMENT for compression, accept({ compress }) and publish({ compress })', async (t) => {
  const code = { code: 'ERR_SSE_INVALID_ARGUMENT' }
  for (const compression of [{ level: 0 }, { level: 10 }, { level: 1.5 }, { minBytes: -1 }, { minBytes: 0.5 }, { foo: 1 }, 'yes', 1, []]) {
    assert.throws(() => new Hub({ compression }), code, `compression: ${JSON.stringify(compression)}`)
  }
  for (const compression of [true, false, { level: 1 }, { level: 9, minBytes: 0 }, {}]) {
    const hub = new Hub({ compression })
    await hub.close()
  }
  const defaults = new Hub({ compression: true })
  assert.deepEqual(defaults.options.compression, { level: 6, minBytes: 128 })
  await defaults.close()

  const hub = startHub(t, { threads: 1 })
  const { port, errors } = await startEventsServer(t, hub, { acceptOptions: { compress: 'x' } })
  const s = await openStream(port, eventsPath(['a']), { acceptEncoding: 'gzip' })
  cleanup(t)(() => s.close())
  assert.equal(s.status, 500)
  assert.equal(errors.length, 1)
  assert.equal(errors[0].code, 'ERR_SSE_INVALID_ARGUMENT')
  assert.match(errors[0].message, /options\.compress/)

  assert.throws(() => hub.publish('a', 'x', { compress: 1 }), code)
  assert.throws(() => hub.publish('a', 'x', { compress: 'false' }), code)
  assert.throws(() => hub.broadcast('x', { compress: null }), code)
  assert.throws(() => hub.send(1, 'x', { compress: 0 }), code)
  hub.publish('a', 'x', { compress: true })
  hub.broadcast('x', { compress: false })
  assert.equal(hub.stats().connections, 0)
})
