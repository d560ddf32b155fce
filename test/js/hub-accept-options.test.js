'use strict'
// accept() options streamId, idleTimeoutMs and maxLifetimeMs (what the
// PocketBase layer builds on), over real sockets, for both transports.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { startHub } = require('../helpers/fixture')
const { within, waitFor } = require('../helpers/wait')

/** Opens a stream; collects its (de-chunked) body until it ends. */
function open (port) {
  const stream = { body: '', ended: false, statusCode: 0 }
  stream.done = new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/' }, (res) => {
      stream.statusCode = res.statusCode
      res.setEncoding('utf8')
      res.on('data', (d) => { stream.body += d })
      res.on('end', () => { stream.ended = true; resolve(stream) })
      res.on('error', reject)
    })
    req.on('error', reject)
    stream.request = req
  })
  return stream
}

function disconnects (hub) {
  const list = []
  hub.on('disconnect', (d) => list.push(d))
  return list
}

for (const transport of ['auto', 'js']) {
  test(`[${transport}] streamId goes before every event as id:, not before heartbeats`, async (t) => {
    const { hub, port, conns } = await startHub(t, { hub: { threads: 1, transport, heartbeatMs: 40 }, accept: { topics: ['t'], streamId: 'abcXYZ019' } })
    const s = open(port)
    await waitFor(() => conns.length === 1, 5000, 'accepted')
    hub.send(conns[0].id, 'one', { event: 'e' })
    hub.publish('t', 'two\nlines')
    hub.publish('t', 'own id', { id: '7' })
    await waitFor(() => (s.body.match(/: \n\n/g) || []).length >= 2, 5000, () => `heartbeats in ${JSON.stringify(s.body)}`)
    hub.kick(conns[0].id)
    await within(s.done, 5000, 'stream end')
    const events = s.body.replace(/: \n\n/g, '')
    assert.equal(events,
      'id:abcXYZ019\nevent: e\ndata: one\n\n' +
      'id:abcXYZ019\ndata: two\ndata: lines\n\n' +
      'id:abcXYZ019\nid: 7\ndata: own id\n\n')
    assert.match(s.body, /(?:^|\n\n): \n\n/, 'heartbeats carry no id line')
    assert.doesNotMatch(s.body, /id:abcXYZ019\n: /)
  })

  test(`[${transport}] idleTimeoutMs ends a stream without events (reason timeout); events keep another open`, async (t) => {
    const { hub, port, conns, defer } = await startHub(t, {
      hub: { threads: 1, transport, heartbeatMs: 50, closeTimeoutMs: 400 }, accept: { topics: ['t'], idleTimeoutMs: 600 }
    })
    const reasons = disconnects(hub)
    const idle = open(port)
    await waitFor(() => conns.length === 1, 5000, 'accepted idle')
    const busy = open(port)
    await waitFor(() => conns.length === 2, 5000, 'accepted busy')
    const started = Date.now()
    const timer = setInterval(() => hub.send(conns[1].id, 'tick'), 100)
    defer(() => clearInterval(timer), 'stop ticking')
    await within(idle.done, 5000, 'idle stream ends')
    const elapsed = Date.now() - started
    assert.ok(elapsed >= 500, `ended after ${elapsed} ms, not before its idle limit`)
    await waitFor(() => reasons.length >= 1, 5000, 'disconnect event')
    assert.deepEqual(reasons, [{ id: conns[0].id, reason: 'timeout' }], 'heartbeats do not count as events')
    assert.equal(busy.ended, false, 'events reset the idle clock')
    clearInterval(timer)
    await within(busy.done, 5000, 'busy stream ends once events stop')
    await waitFor(() => reasons.length >= 2, 5000, 'disconnect events')
    assert.deepEqual(reasons.map((r) => r.reason), ['timeout', 'timeout'])
    assert.equal(hub.stats().connections, 0)
  })

  test(`[${transport}] maxLifetimeMs ends a stream however busy`, async (t) => {
    const { hub, port, conns, defer } = await startHub(t, { hub: { threads: 1, transport, closeTimeoutMs: 400 }, accept: { topics: ['t'], maxLifetimeMs: 700 } })
    const reasons = disconnects(hub)
    const s = open(port)
    await waitFor(() => conns.length === 1, 5000, 'accepted')
    const started = Date.now()
    let n = 0
    const timer = setInterval(() => hub.publish('t', String(n++)), 50)
    defer(() => clearInterval(timer), 'stop publishing')
    await within(s.done, 5000, 'stream ends')
    clearInterval(timer)
    assert.ok(Date.now() - started >= 600)
    await waitFor(() => reasons.length >= 1, 5000, 'disconnect event')
    assert.deepEqual(reasons, [{ id: conns[0].id, reason: 'timeout' }])
    const got = s.body.split('\n\n').filter(Boolean).map((e) => e.replace('data: ', ''))
    assert.ok(got.length >= 5, `received ${got.length} events before the end`)
    assert.deepEqual(got, got.map((_, i) => String(i)), 'every event up to the end, in order')
  })
}

test('accept() validates streamId, idleTimeoutMs and maxLifetimeMs before taking anything over', async (t) => {
  const bad = [
    [{ streamId: '' }, 'ERR_SSE_INVALID_ID'],
    [{ streamId: 'a\nb' }, 'ERR_SSE_INVALID_ID'],
    [{ streamId: 'a\0b' }, 'ERR_SSE_INVALID_ID'],
    [{ streamId: 'x'.repeat(257) }, 'ERR_SSE_INVALID_ID'],
    [{ streamId: 5 }, 'ERR_SSE_INVALID_ID'],
    [{ idleTimeoutMs: -1 }, 'ERR_SSE_INVALID_ARGUMENT'],
    [{ idleTimeoutMs: 1.5 }, 'ERR_SSE_INVALID_ARGUMENT'],
    [{ maxLifetimeMs: 2 ** 31 }, 'ERR_SSE_INVALID_ARGUMENT'],
    [{ maxLifetimeMs: '10' }, 'ERR_SSE_INVALID_ARGUMENT']
  ]
  let i = 0
  const results = []
  const { hub, port } = await startHub(t, {
    hub: { threads: 1 },
    handler: (hub) => (req, res) => {
      const [options, code] = bad[i++]
      try {
        hub.accept(req, res, options)
        results.push('accepted')
      } catch (err) {
        results.push(err.code === code ? 'ok' : `${err.code}: ${err.message}`)
      }
      res.statusCode = 400
      res.end('refused')
    }
  })
  for (let k = 0; k < bad.length; k++) {
    const s = open(port)
    await within(s.done, 5000, 'refused response')
    assert.equal(s.statusCode, 400, 'the response stayed with the app')
    assert.equal(s.body, 'refused')
  }
  assert.deepEqual(results, bad.map(() => 'ok'))
  assert.equal(hub.stats().connections, 0)
})
