'use strict'
// Fault test: injection. Hostile payloads (CR, LF, CRLF, NUL, other C0/C1
// controls, U+2028/2029, BOM, lone surrogates, invalid UTF-8 byte sequences,
// embedded "data:", "event:", "id:", "retry:" lines, blank lines, comments)
// in every field a caller controls:
//   - data (string and Buffer): always accepted, split into data: lines, and
//     received exactly (CR and CRLF become LF, invalid UTF-8 decodes to U+FFFD);
//   - event names, event ids, topics (publish, subscribe), streamId: refused
//     (the right error code, nothing sent, nothing registered) when they hold
//     CR, LF or NUL; otherwise received exactly as given;
//   - retry: only non-negative integers;
//   - users: never written to the wire;
//   - PocketBase: subscriptions with CR, LF or NUL get 400 and change nothing;
//     other hostile subscriptions become event names verbatim; record fields
//     and custom messages are JSON (escaped).
// Three clients read each stream: the `eventsource` package (a real
// EventSource, HTTP/1.1 through fetch), and raw sockets with HTTP/1.0 and
// HTTP/1.1 (the body checked byte by byte: no CR anywhere, every line a known
// field, a comment or empty). Each must see exactly the expected events: no
// forged event, type, id or retry. Native and JS transports.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const net = require('node:net')
const { EventSource } = require('eventsource')
const { Hub } = require('../..')
const { Realtime } = require('../../lib/pocketbase')
const { SseParser } = require('../helpers/sse-parser')
const { cleanup, waitFor } = require('../helpers/wait')
const { SCALE, Dechunker, record, fig } = require('../helpers/stress-common')

const STRINGS = [
  // line breaks
  'a\rb', 'a\nb', 'a\r\nb', 'a\n\rb', '\r', '\n', '\r\n', '\n\n', '\r\r', '\r\n\r\n', 'trailing\n', 'trailing\r',
  '\nleading', 'x\n\n\n\ny',
  // NUL and other controls
  'a\0b', '\0', '\0\n\0', 'a\x01b', '\x07bell', '\b', '\t tab', '\x0b vt', '\x0c ff', '\x1b[31mred\x1b[0m', '\x1f', '\x7f del',
  '\x85 nel', '\u2028 ls', '\u2029 ps',
  // BOM, surrogates, non-ASCII
  '\ufeff', '\ufeffbom first', 'mid\ufeffbom', '\ud800 lone high', 'lone low \udc00', 'pair \ud83d\ude00', 'é\n日本語',
  // forged fields
  'data: forged', '\ndata: forged', '\n\ndata: forged\n\n', 'x\n\nevent: forged\ndata: x', 'x\r\rid: forged\r\r',
  'x\r\n\r\nretry: 1\r\n\r\n', '\n:comment\n', ':starts like a comment', 'event: forged', 'id: forged', 'retry: 1',
  'data:', 'data', ' leading space', '  two spaces', 'x\n\nid\n\n', '\r\nevent:forged\r\ndata:x\r\n\r\n',
  'a'.repeat(3000) + '\n\nevent: forged\n' + 'b'.repeat(3000)
]
const BYTES = [
  [0xff], [0xfe, 0xff], [0xc0, 0xaf], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x0a, 0x41],
  [0xe2, 0x0d, 0x0a, ...Buffer.from('data: forged')], [0xef, 0xbb, 0xbf], [0xef, 0xbb, 0xbf, 0x0a, 0x0a], [0x00, 0x0a, 0x00],
  [0xc3, ...Buffer.from('\n\nevent: forged\ndata: x\n\n')], [0xf0, 0x9f, 0x0d, 0x41], [0x80, 0x80, 0x0d], [0xc3, 0xa9]
].map((b) => Buffer.from(b))
const BREAK = /[\r\n\0]/
const wellFormed = (s) => Buffer.from(s, 'utf8').toString('utf8') // lone surrogates -> U+FFFD, as the addon encodes
const lines = (s) => s.replace(/\r\n|\r/g, '\n')
const utf8 = (b) => new TextDecoder('utf-8', { ignoreBOM: true }).decode(b) // a BOM inside the stream is data

/** A raw HTTP/1.x SSE client: keeps every body byte, parses events. */
function rawClient (port, path, version) {
  const c = { events: [], body: [], parser: null, ended: false, head: null, error: null }
  c.parser = new SseParser((ev) => c.events.push(ev))
  const socket = net.connect({ host: '127.0.0.1', port })
  let head = Buffer.alloc(0)
  let dechunk = null
  const onBody = (b) => { c.body.push(Buffer.from(b)); c.parser.push(b) }
  socket.on('connect', () => socket.write(`GET ${path} HTTP/${version}\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`))
  socket.on('data', (buf) => {
    try {
      if (c.head === null) {
        head = Buffer.concat([head, buf])
        const at = head.indexOf('\r\n\r\n')
        if (at < 0) return
        c.head = head.toString('latin1', 0, at)
        if (/\r\ntransfer-encoding: chunked/i.test(c.head)) dechunk = new Dechunker(onBody, () => { c.ended = true })
        buf = head.subarray(at + 4)
      }
      if (dechunk) dechunk.push(buf)
      else onBody(buf)
    } catch (err) {
      c.error = err.message
    }
  })
  socket.on('error', (err) => { c.error = err.code })
  c.close = () => socket.destroy()
  c.text = () => Buffer.concat(c.body).toString('utf8')
  c.bytes = () => Buffer.concat(c.body)
  return c
}

/** An EventSource that records every event it dispatches (all types). */
function eventSource (url) {
  const es = new EventSource(url)
  const events = []
  const dispatch = es.dispatchEvent.bind(es)
  es.dispatchEvent = (ev) => {
    if (ev.type !== 'open' && ev.type !== 'error') events.push({ event: ev.type, data: ev.data, lastEventId: ev.lastEventId })
    if (ev.type === 'error') events.errors = (events.errors || 0) + 1
    return dispatch(ev)
  }
  return { es, events }
}

/**
 * The wire grammar of a body the hub wrote: no CR byte at all (the hub ends
 * lines with LF only, and refuses CR in every single-line field), and every
 * line is a field the hub writes (data, event, id, retry), a comment, or empty.
 */
function checkWire (bytes, what) {
  assert.equal(bytes.indexOf(13), -1, `${what}: a CR byte on the wire`)
  const text = bytes.toString('latin1')
  const bad = text.split('\n').filter((l) => l !== '' && !/^(data|event|id|retry):/.test(l) && !l.startsWith(':'))
  assert.deepEqual(bad.slice(0, 3), [], `${what}: lines that are no field the hub writes`)
  for (const l of text.split('\n')) {
    if (/^(event|id|retry):/.test(l)) assert.ok(!l.includes('\0'), `${what}: NUL in ${JSON.stringify(l.slice(0, 20))}`)
  }
}

async function listen (handler) {
  const server = http.createServer(handler)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return server
}

for (const transport of ['auto', 'js']) {
  test(`injection [${transport}]: ${STRINGS.length} hostile strings and ${BYTES.length} byte sequences in every field; no forged event`, async (t) => {
    assert.ok(STRINGS.length + BYTES.length >= 40)
    const defer = cleanup(t)
    const hub = new Hub({ transport, heartbeatMs: 0 })
    defer(() => hub.close(), 'hub.close()')
    const conns = new Map()
    const server = await listen((req, res) => {
      const url = new URL(req.url, 'http://x')
      const k = Number(url.searchParams.get('k'))
      try {
        if (url.pathname === '/sse') {
          conns.set(url.searchParams.get('tag'), hub.accept(req, res, { topics: ['inj'], retry: 4321, user: 'u\r\nevent: forged\r\n' }))
        } else if (url.pathname === '/sid') {
          const conn = hub.accept(req, res, { streamId: STRINGS[k] })
          hub.send(conn.id, `sid${k}`)
        }
      } catch (err) {
        res.statusCode = 400
        res.end(err.code)
      }
    })
    defer(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }), 'server.close()')
    const port = server.address().port

    const { es, events: esEvents } = eventSource(`http://127.0.0.1:${port}/sse?tag=es`)
    defer(() => es.close(), 'es.close()')
    const raw10 = rawClient(port, '/sse?tag=r10', '1.0')
    const raw11 = rawClient(port, '/sse?tag=r11', '1.1')
    defer(() => { raw10.close(); raw11.close() }, 'raw clients')
    await waitFor(() => conns.size === 3 && es.readyState === 1, 10000, 'the three clients connected')
    const ids = [...conns.values()].map((c) => c.id)

    // What each client must see. `lastEventId` as the standard says (it
    // persists: the raw parsers); `own` is the event's own id, which is what
    // eventsource@4 reports as MessageEvent.lastEventId.
    const expected = []
    let lastId = ''
    const expect = (event, data, id) => {
      if (id !== undefined) lastId = id
      expected.push({ event, data, lastEventId: lastId, own: id === undefined ? '' : id })
    }
    const refused = { event: 0, id: 0, topicPublish: 0, topicSubscribe: 0, streamId: 0, retry: 0 }
    const published = hub.stats().published

    for (let k = 0; k < STRINGS.length; k++) {
      const p = STRINGS[k]
      // data: always accepted, as a string and as bytes.
      hub.publish('inj', p, { event: 'd', id: `d${k}` })
      expect('d', lines(wellFormed(p)), `d${k}`)
      hub.publish('inj', Buffer.from(p))
      expect('message', lines(wellFormed(p)))
      // event name
      if (BREAK.test(p)) {
        assert.throws(() => hub.publish('inj', `e${k}`, { event: p }), { code: 'ERR_SSE_INVALID_EVENT' }, `event ${JSON.stringify(p)}`)
        assert.throws(() => hub.broadcast(`e${k}`, { event: p }), { code: 'ERR_SSE_INVALID_EVENT' })
        assert.throws(() => hub.send(ids[0], `e${k}`, { event: p }), { code: 'ERR_SSE_INVALID_EVENT' })
        refused.event++
      } else {
        hub.publish('inj', `e${k}`, { event: p })
        expect(wellFormed(p), `e${k}`)
      }
      // event id
      if (BREAK.test(p)) {
        assert.throws(() => hub.publish('inj', `i${k}`, { id: p }), { code: 'ERR_SSE_INVALID_ID' }, `id ${JSON.stringify(p)}`)
        assert.throws(() => hub.broadcast(`i${k}`, { id: p }), { code: 'ERR_SSE_INVALID_ID' })
        refused.id++
      } else {
        hub.publish('inj', `i${k}`, { id: p })
        expect('message', `i${k}`, wellFormed(p))
      }
      // topic: refused everywhere, or subscribed, published to and unsubscribed.
      if (BREAK.test(p)) {
        assert.throws(() => hub.publish(p, `t${k}`), { code: 'ERR_SSE_INVALID_TOPIC' }, `topic ${JSON.stringify(p)}`)
        refused.topicPublish++
        for (const id of ids) {
          assert.throws(() => hub.subscribe(id, ['ok', p]), { code: 'ERR_SSE_INVALID_TOPIC' })
          assert.deepEqual(hub.subscriptions(id), ['inj'], 'a refused subscribe changed nothing')
        }
        refused.topicSubscribe++
      } else {
        for (const id of ids) hub.subscribe(id, [p])
        for (const id of ids) assert.deepEqual(hub.subscriptions(id), ['inj', wellFormed(p)].sort())
        hub.publish(p, `t${k}`)
        expect('message', `t${k}`)
        for (const id of ids) hub.unsubscribe(id, [p])
      }
    }
    for (let k = 0; k < BYTES.length; k++) {
      hub.publish('inj', BYTES[k], { event: 'b' })
      expect('b', lines(utf8(BYTES[k])))
    }
    // retry: only non-negative integers (accept() refuses the rest).
    for (const bad of ['1\n', '100', 1.5, -1, NaN, 'retry: 1']) {
      assert.throws(() => hub.accept({ headers: {}, method: 'GET' }, { writeHead () {} }, { retry: bad }), { code: 'ERR_SSE_INVALID_RETRY' })
      refused.retry++
    }
    hub.publish('inj', 'END', { event: 'end', id: 'end' })
    expect('end', 'END', 'end')
    assert.equal(hub.stats().published - published, expected.length, 'published counts only what was accepted')

    // Every client: exactly the expected events, nothing else.
    const want = expected.map(({ event, data, lastEventId }) => ({ event, data, lastEventId }))
    await waitFor(() => raw10.events.length >= want.length && raw11.events.length >= want.length && esEvents.length >= want.length,
      15000, () => `all events (${raw10.events.length}/${raw11.events.length}/${esEvents.length} of ${want.length})`)
    await new Promise((resolve) => setTimeout(resolve, 100)) // anything extra would arrive now
    for (const [name, c] of [['HTTP/1.0', raw10], ['HTTP/1.1', raw11]]) {
      assert.equal(c.error, null, `${name}: ${c.error}`)
      assert.deepEqual(c.events, want, `${name} raw client: the events`)
      assert.equal(c.parser.retry, 4321, `${name}: retry as accept() set it, never forged`)
      checkWire(c.bytes(), name)
      assert.ok(!c.text().includes('u\r\nevent: forged'), 'the user name never reaches the wire')
    }
    assert.equal(esEvents.errors, undefined, 'the EventSource never errored or reconnected')
    assert.deepEqual(esEvents, expected.map(({ event, data, own }) => ({ event, data, lastEventId: own })), 'EventSource: the events')
    const types = new Set(expected.map((e) => e.event))
    const forged = esEvents.filter((e) => !types.has(e.event) || /^forged$|^x$/.test(e.data))
    assert.equal(forged.length, 0, 'no forged event')

    // streamId: refused with CR/LF/NUL (no connection registered), else it is
    // the id: line of every event on that stream, exactly.
    const before = hub.stats().connections
    for (let k = 0; k < STRINGS.length; k++) {
      const p = STRINGS[k]
      const c = rawClient(port, `/sid?k=${k}`, '1.0')
      try {
        await waitFor(() => c.head !== null && (c.events.length > 0 || !c.head.startsWith('HTTP/1.1 200')), 5000, `streamId ${k}`)
        if (BREAK.test(p)) {
          assert.match(c.head, /^HTTP\/1\.1 400/, `streamId ${JSON.stringify(p)} refused`)
          refused.streamId++
        } else {
          assert.match(c.head, /^HTTP\/1\.1 200/)
          assert.deepEqual(c.events, [{ event: 'message', data: `sid${k}`, lastEventId: wellFormed(p) }], `streamId ${JSON.stringify(p)}`)
          checkWire(c.bytes(), `streamId ${k}`)
        }
      } finally {
        c.close()
      }
    }
    await waitFor(() => hub.stats().connections === before, 5000, 'streamId connections gone')

    record('injection', t.name, {
      transport,
      payloads: fig(STRINGS.length + BYTES.length, '>= 40'),
      eventsChecked: want.length,
      refused,
      forgedEvents: fig(forged.length, 0),
      scale: SCALE
    })
  })
}

test('injection [pocketbase]: hostile subscriptions are refused with 400 or become event names verbatim; records are JSON', async (t) => {
  const defer = cleanup(t)
  const realtime = new Realtime()
  defer(() => realtime.close(), 'realtime.close()')
  const server = await listen(realtime.handler)
  defer(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }), 'server.close()')
  const port = server.address().port
  const url = `http://127.0.0.1:${port}/api/realtime`
  const { es, events } = eventSource(url)
  defer(() => es.close(), 'es.close()')
  await waitFor(() => events.length > 0, 10000, 'PB_CONNECT')
  const clientId = JSON.parse(events[0].data).clientId
  const post = async (subscriptions) => {
    const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId, subscriptions }) })
    return { status: r.status, body: r.status === 204 ? null : await r.json() }
  }
  assert.equal((await post(['posts/*'])).status, 204)
  const stats0 = realtime.stats()

  // Refused: any subscription with CR, LF or NUL, even among valid ones; nothing applied.
  let refused = 0
  for (const p of STRINGS.filter((s) => BREAK.test(s))) {
    const r = await post(['posts/*', 'other', p])
    assert.equal(r.status, 400, `subscription ${JSON.stringify(p)}`)
    // (the 6000-character one fails PocketBase's length rule first)
    assert.equal(r.body.data.subscriptions['2'].code, p.length > 2500 ? 'validation_length_too_long' : 'validation_invalid_value')
    assert.deepEqual(realtime.client(clientId).subscriptions, ['posts/*'], 'nothing applied')
    assert.deepEqual(realtime.stats(), stats0, 'the native index did not change')
    refused++
  }
  // Accepted: the rest, all at once; each becomes the event name of its messages.
  const ok = STRINGS.filter((s) => !BREAK.test(s))
  assert.equal((await post(['posts/*', ...ok])).status, 204)
  const expected = []
  for (let k = 0; k < ok.length; k++) {
    realtime.publish(ok[k], { k, text: ok[k] })
    expected.push({ event: wellFormed(ok[k]), data: JSON.stringify({ k, text: ok[k] }), lastEventId: clientId })
  }
  // Record fields: every hostile string, JSON-escaped in one frame (lone
  // surrogates arrive as U+FFFD: see the regression test below).
  const fields = STRINGS
  const hostileRecord = { id: 'r1', fields, bytes: BYTES.map((b) => b.toString('latin1')) }
  realtime.broadcastRecord({ name: 'posts', id: 'pbc_posts', listRule: '', viewRule: '' }, 'create', hostileRecord)
  realtime.publish('posts/*', 'END', { event: 'end' })
  await waitFor(() => events.length >= 1 + expected.length + 2, 10000, () => `PocketBase events (${events.length})`)
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(events.length, 1 + expected.length + 2, 'no extra event')
  assert.deepEqual(events.slice(1, 1 + expected.length), expected)
  const rec = events[1 + expected.length]
  assert.equal(rec.event, 'posts/*')
  assert.equal(rec.lastEventId, clientId)
  const parsed = JSON.parse(rec.data)
  assert.equal(parsed.action, 'create')
  assert.deepEqual(parsed.record.fields, fields.map((x) => x.toWellFormed()), 'record fields arrive exactly (lone surrogates as U+FFFD)')
  assert.deepEqual(parsed.record.bytes, hostileRecord.bytes)
  assert.deepEqual(events[events.length - 1], { event: 'end', data: 'END', lastEventId: clientId })
  assert.equal(events.errors, undefined)
  record('injection', t.name, { refusedSubscriptions: refused, acceptedSubscriptions: ok.length, forgedEvents: fig(0, 0) })
})

// ---- regressions: bugs these tests found, fixed -------------------------------

// A streamId with a leading space kept it only if the prefix is written
// "id: " + streamId (a parser drops one space after the colon).
for (const transport of ['auto', 'js']) {
  test(`injection [${transport}]: a streamId with a leading space arrives intact`, async (t) => {
    const defer = cleanup(t)
    const hub = new Hub({ transport, heartbeatMs: 0 })
    defer(() => hub.close(), 'hub.close()')
    const server = await listen((req, res) => {
      const conn = hub.accept(req, res, { streamId: ' leading space' })
      hub.send(conn.id, 'x')
    })
    defer(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }), 'server.close()')
    const c = rawClient(server.address().port, '/', '1.0')
    defer(() => c.close(), 'client')
    await waitFor(() => c.events.length > 0, 5000, 'the event')
    assert.deepEqual(c.events, [{ event: 'message', data: 'x', lastEventId: ' leading space' }])
  })
}

// JSON.stringify writes a lone surrogate as the escape "\ud800", which
// simdjson refuses; broadcastRecord now delivers it as U+FFFD (what
// PocketBase's Go decoder makes of it).
test('injection [pocketbase]: a record field with a lone surrogate is delivered', async (t) => {
  const defer = cleanup(t)
  const realtime = new Realtime()
  defer(() => realtime.close(), 'realtime.close()')
  const server = await listen(realtime.handler)
  defer(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) }), 'server.close()')
  const url = `http://127.0.0.1:${server.address().port}/api/realtime`
  const { es, events } = eventSource(url)
  defer(() => es.close(), 'es.close()')
  await waitFor(() => events.length > 0, 10000, 'PB_CONNECT')
  const clientId = JSON.parse(events[0].data).clientId
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ clientId, subscriptions: ['posts/*'] }) })
  assert.equal(r.status, 204)
  realtime.broadcastRecord({ name: 'posts', id: 'pbc_posts', listRule: '', viewRule: '' }, 'create', { id: 'r1', text: 'lone \ud800' })
  await waitFor(() => events.length >= 2, 5000, 'the record event')
  assert.equal(JSON.parse(events[1].data).record.text, 'lone \ufffd')
})
