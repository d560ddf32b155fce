'use strict'
// The demo contract of issue 16: `npm start` (examples/demo-server.js, a
// child process on PORT=0) has compression on, so a client sending
// Accept-Encoding: gzip on /events?topics=… gets a gzip stream (decoded live
// by zlib's streaming decoder: the event POSTed to /publish arrives, before
// the stream ends), and one without gets identity. Real HTTP over loopback.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const zlib = require('node:zlib')
const { startExample } = require('../helpers/pb-example')
const { SseParser } = require('../helpers/sse-parser')
const { waitFor, cleanup } = require('../helpers/wait')

function openEvents (t, base, headers) {
  return new Promise((resolve, reject) => {
    const req = http.get(`${base}/events?topics=news`, { headers, agent: false }, (res) => {
      const s = { res, events: [] }
      const parser = new SseParser((ev) => s.events.push(ev))
      const coding = res.headers['content-encoding']
      const decoder = coding === 'gzip' ? zlib.createGunzip() : coding === 'deflate' ? zlib.createInflate() : null
      if (decoder) {
        res.pipe(decoder).on('data', (b) => parser.push(b))
      } else {
        res.on('data', (b) => parser.push(b))
      }
      resolve(s)
    })
    req.on('error', reject)
    cleanup(t)(() => req.destroy(), 'close the stream')
  })
}

test('npm start: /events is gzip for Accept-Encoding: gzip, deflate for deflate, identity without; events arrive live', { timeout: 30000 }, async (t) => {
  const demo = await startExample(t, 'examples/demo-server.js', { PUBLISH_TOKEN: '' })
  const gzip = await openEvents(t, demo.url, { 'accept-encoding': 'gzip' })
  const deflate = await openEvents(t, demo.url, { 'accept-encoding': 'deflate' })
  const identity = await openEvents(t, demo.url, {})
  assert.equal(gzip.res.headers['content-encoding'], 'gzip')
  assert.equal(deflate.res.headers['content-encoding'], 'deflate')
  assert.equal(identity.res.headers['content-encoding'], undefined)
  for (const s of [gzip, deflate, identity]) {
    assert.equal(s.res.headers['content-type'], 'text/event-stream')
    assert.match(s.res.headers.vary, /accept-encoding/i)
  }
  const body = JSON.stringify({ title: 'compressed once', text: 'for every client '.repeat(20) })
  const res = await fetch(`${demo.url}/publish?topic=news`, { method: 'POST', body, signal: AbortSignal.timeout(5000) })
  assert.equal(res.status, 202)
  const { id } = await res.json()
  for (const [name, s] of [['gzip', gzip], ['deflate', deflate], ['identity', identity]]) {
    await waitFor(() => s.events.some((e) => e.lastEventId === id), 5000, `${name}: the published event`)
    assert.equal(s.events.find((e) => e.lastEventId === id).data, body, name)
  }
})
