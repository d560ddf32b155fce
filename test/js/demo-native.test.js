'use strict'
// The demo contract of issue 17: `NATIVE_PORT=… npm start` (a child process,
// PORT=0 and NATIVE_PORT=0) also serves /events?topics=… on the native port,
// through the native listener: the same stream as PORT's (history ids, resume
// with Last-Event-ID, gzip when asked, CORS *), while /publish and /stats stay
// on PORT. Real HTTP over loopback.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startExample } = require('../helpers/pb-example')
const { openStream } = require('../helpers/compressed')
const { rawConnect } = require('../helpers/raw-http')
const { waitFor } = require('../helpers/wait')

test('NATIVE_PORT: /events on the native port is the same stream; /publish and /stats stay on PORT', { timeout: 30000 }, async (t) => {
  const demo = await startExample(t, 'examples/demo-server.js', { PUBLISH_TOKEN: '', NATIVE_PORT: '0' })
  const m = await waitFor(() => demo.output().match(/native listener: curl -N 'http:\/\/127\.0\.0\.1:(\d+)\/events/), 10000, 'the native port in the output')
  const nativePort = Number(m[1])
  assert.notEqual(nativePort, Number(new URL(demo.url).port))

  const plain = await openStream(nativePort, '/events?topics=news', { headers: { origin: 'https://any.example' } })
  const gzip = await openStream(nativePort, '/events?topics=news', { acceptEncoding: 'gzip' })
  const onPort = await openStream(Number(new URL(demo.url).port), '/events?topics=news')
  assert.equal(plain.status, 200)
  assert.equal(plain.headers['content-type'], 'text/event-stream')
  assert.equal(plain.headers['access-control-allow-origin'], '*')
  assert.equal(gzip.headers['content-encoding'], 'gzip')
  // Served natively: the listener counts them.
  const stats = await (await fetch(`${demo.url}/stats`, { signal: AbortSignal.timeout(5000) })).json()
  assert.equal(stats.nativeListener.port, nativePort)
  assert.equal(stats.nativeListener.streams, 2)
  assert.equal(stats.connections, 3)

  const res = await fetch(`${demo.url}/publish?topic=news`, { method: 'POST', body: 'hello native', signal: AbortSignal.timeout(5000) })
  assert.equal(res.status, 202)
  const { id } = await res.json()
  for (const [name, s] of [['plain', plain], ['gzip', gzip], ['PORT', onPort]]) {
    await waitFor(() => s.events.some((e) => e.lastEventId === id), 5000, `${name}: the published event`)
    assert.equal(s.events.find((e) => e.lastEventId === id).data, 'hello native', name)
  }
  // Resume on the native port: what was published after the cursor, once.
  const second = await (await fetch(`${demo.url}/publish?topic=news`, { method: 'POST', body: 'after', signal: AbortSignal.timeout(5000) })).json()
  const resumed = await openStream(nativePort, '/events?topics=news', { headers: { 'last-event-id': id } })
  await waitFor(() => resumed.events.some((e) => e.lastEventId === second.id), 5000, 'the replayed event')
  assert.deepEqual(resumed.events.filter((e) => e.event === 'message').map((e) => e.data), ['after'])

  // Only /events is there: /publish and /stats are PORT's.
  const c = await rawConnect(nativePort)
  await c.send('GET /stats HTTP/1.1\r\nHost: x\r\n\r\n')
  await c.waitClosed()
  assert.equal(c.heads()[0].status, 404)
  for (const s of [plain, gzip, onPort, resumed]) s.close()
})
