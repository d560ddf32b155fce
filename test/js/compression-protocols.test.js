'use strict'
// Compressed streams (issue 16) under the protocol layers, for gzip and
// deflate: a PocketBase realtime stream (sse-fanout/pocketbase) and a Mercure
// subscription (sse-fanout/mercure) on a hub with compression decode, event
// by event, to exactly the stream an identity client of the same kind gets:
// PocketBase's `id:<clientId>` line before each event (a stored block of the
// connection's own) included, and a Mercure resume with Last-Event-ID. The
// compressed stream ends with a valid trailer when the app closes, and
// hub.stats().compression counts its bytes exactly.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startRealtimeApp, openStream: openPbStream, post } = require('../helpers/pb-http')
const { startMercure, query } = require('../helpers/mercure')
const { openStream, decodeWhole } = require('../helpers/compressed')
const { cleanup, waitFor } = require('../helpers/wait')

const CODINGS = ['gzip', 'deflate']
const POSTS = { name: 'posts', id: 'pbc_1125843985', listRule: '', viewRule: '' }

/** A record of about `size` bytes of JSON. */
function record (k, size) {
  const text = `Post ${k}: ` + 'the quick brown fox jumps over the lazy dog; '.repeat(Math.ceil(size / 45))
  return { id: `rec${String(k).padStart(12, '0')}`, title: `Title ${k}`, views: k * 3, body: text.slice(0, size) }
}

/** The compressed stream ended with its trailer: the decoder's end, and a one-shot decode that checks it. */
function assertCleanEnd (s, what) {
  assert.equal(s.ended, true, `${what}: the body ended`)
  assert.equal(s.decodeError, null, `${what}: decoder error ${s.decodeError}`)
  assert.equal(s.decoderEnded, true, `${what}: the decoder reached the end of the compressed stream`)
  assert.equal(decodeWhole(s.coding, s.body()).equals(s.decoded()), true, `${what}: one-shot decode (trailer checked)`)
}

for (const coding of CODINGS) {
  test(`[${coding}] PocketBase realtime: the decoded stream equals the identity one, id:<clientId> before each event included`, async (t) => {
    const defer = cleanup(t)
    const app = await startRealtimeApp('http', { hubOptions: { compression: true, heartbeatMs: 0 } })
    defer(() => app.close(), 'app close')
    const { realtime, port } = app
    const identity = await openPbStream(port)
    defer(() => identity.close(), 'identity stream')
    const cidPlain = await identity.connected()
    const coded = await openStream(port, '/api/realtime', { acceptEncoding: coding })
    defer(() => coded.close(), 'coded stream')
    assert.equal(coded.status, 200)
    assert.equal(coded.coding, coding)
    assert.equal(coded.headers.vary?.toLowerCase(), 'accept-encoding')
    assert.equal(identity.headers['content-encoding'], undefined)
    await coded.waitEvents(1)
    const cidCoded = coded.events[0].lastEventId
    assert.match(cidCoded, /^[A-Za-z0-9]{40}$/)
    assert.equal(coded.events[0].event, 'PB_CONNECT')
    assert.equal(realtime.hub.stats().compression.connections, 1)

    const subscriptions = ['posts/*', 'custom-topic']
    for (const cid of [cidPlain, cidCoded]) {
      const res = await post(port, { clientId: cid, subscriptions })
      assert.equal(res.status, 204, res.body)
    }
    // One at a time: each is decoded before the next goes out.
    const steps = [
      () => realtime.broadcastRecord(POSTS, 'create', record(1, 1024)),
      () => realtime.broadcastRecord(POSTS, 'update', record(1, 256)),
      () => realtime.publish('custom-topic', { hi: 1 }),
      () => realtime.broadcastRecord(POSTS, 'create', record(2, 64 * 1024)),
      () => realtime.publish('custom-topic', { note: 'x'.repeat(2000) }, { event: 'note' }),
      () => realtime.broadcastRecord(POSTS, 'delete', record(2, 10))
    ]
    for (let k = 0; k < steps.length; k++) {
      steps[k]()
      await coded.waitEvents(k + 2)
      await identity.wait(k + 2)
    }
    const { compression } = realtime.hub.stats()
    assert.equal(compression.bytesIn, coded.decoded().length, 'bytesIn: the decoded bytes, prefixes included')
    assert.equal(compression.bytesOut, coded.body().length, 'bytesOut: the bytes on the wire')
    assert.equal(compression.bytesOut < compression.bytesIn, true)

    await app.close()
    await coded.waitEnd()
    await waitFor(() => identity.ended, 5000, 'the identity stream ended')
    assertCleanEnd(coded, 'PocketBase')
    const decoded = coded.decoded().toString()
    assert.equal(decoded.replaceAll(cidCoded, cidPlain), identity.raw, 'the decoded stream, its client id for the other one, is the identity stream')
    const frames = decoded.split('\n\n').slice(0, -1)
    assert.equal(frames.length, steps.length + 1)
    for (const f of frames) assert.equal(f.startsWith(`id:${cidCoded}\n`), true, `id:<clientId> first: ${f.slice(0, 80)}`)
    // The prefix is the connection's own, sent as it is; the records are compressed.
    const raw = coded.body().toString('latin1')
    assert.equal(raw.split(`id:${cidCoded}\n`).length - 1, steps.length + 1, 'the id line, as-is, before each event')
    assert.equal(raw.includes('the quick brown fox jumps over'), false, 'the records are compressed')
  })

  test(`[${coding}] Mercure: the decoded subscription equals the identity one, live and resumed with Last-Event-ID`, async (t) => {
    const hub = await startMercure(t, { anonymous: true, hubOptions: { compression: true, heartbeatMs: 0 } })
    const q = query(['https://example.com/books/{id}', 'https://example.com/authors/1'])
    const path = `${hub.path}?${q}`
    const identity = await hub.subscribe(q)
    const coded = await openStream(hub.port, path, { acceptEncoding: coding })
    hub.defer(() => coded.close(), 'coded stream')
    assert.equal(coded.status, 200)
    assert.equal(coded.coding, coding)
    assert.equal(identity.headers['content-encoding'], undefined)
    assert.equal(coded.headers['cache-control'], identity.headers['cache-control'])
    await waitFor(() => hub.mercure.hub.stats().compression.connections === 1, 5000, 'the compressed subscription')

    const updates = [
      { topic: 'https://example.com/books/1', data: JSON.stringify(record(1, 1024)) },
      { topic: 'https://example.com/books/2', data: 'short', type: 'book' },
      { topic: 'https://example.com/authors/1', data: JSON.stringify(record(3, 256)), id: 'urn:example:author-1', retry: '2500' },
      { topic: 'https://example.com/books/3', data: 'line 1\nline 2\n' + 'x'.repeat(500) },
      { topic: 'https://example.com/other', data: 'not for them' },
      { topic: 'https://example.com/books/4', data: JSON.stringify(record(4, 100 * 1024)) }
    ]
    const ids = []
    let expected = 0
    for (const u of updates) {
      const res = await hub.publish(u)
      assert.equal(res.status, 200, res.body)
      ids.push(res.body)
      if (u.topic.endsWith('/other')) continue
      expected++
      await coded.waitEvents(expected)
      await identity.wait(expected)
    }

    // Resumed after the second update: the history replays the rest compressed.
    const headers = { 'last-event-id': ids[1] }
    const resumedPlain = await hub.subscribe(q, { headers })
    const resumed = await openStream(hub.port, path, { acceptEncoding: coding, headers })
    hub.defer(() => resumed.close(), 'resumed stream')
    assert.equal(resumed.coding, coding)
    await resumed.waitEvents(expected - 2)
    await resumedPlain.wait(expected - 2)
    assert.deepEqual(resumed.events.map((e) => e.lastEventId), [ids[2], ids[3], ids[5]])

    await hub.mercure.close()
    for (const s of [coded, resumed]) await s.waitEnd()
    await waitFor(() => identity.ended && resumedPlain.ended, 5000, 'the identity streams ended')
    assertCleanEnd(coded, 'Mercure')
    assertCleanEnd(resumed, 'Mercure resumed')
    assert.equal(coded.decoded().toString(), identity.raw, 'live: decoded vs identity')
    assert.equal(resumed.decoded().toString(), resumedPlain.raw, 'resumed: decoded vs identity')
    assert.deepEqual(coded.events.map((e) => [e.event, e.data, e.lastEventId]), identity.events.map((e) => [e.event, e.data, e.lastEventId]))
    assert.equal(coded.body().toString('latin1').includes('the quick brown fox jumps over'), false, 'the updates are compressed')
  })
}
