'use strict'
// hub.accept() over real sockets: headers the app set before accept() reach
// the client with the SSE ones, HTTP/1.1 is chunked and HTTP/1.0 is not (both
// transports); a response head that throws gives the slot back; a process out
// of file descriptors refuses the stream (503) instead of serving it from JS;
// a taken-over request is never reported 'aborted' (raw node:http and
// Express); process.exit() still ends every stream with its last chunk.
// accept()'s stream options (streamId, idleTimeoutMs, maxLifetimeMs) are
// hub-accept-options.test.js; its argument errors hub-errors.test.js.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const net = require('node:net')
const path = require('node:path')
const { spawn } = require('node:child_process')
const express = require('express')
const { sse } = require('../../lib/express')
const { startHub } = require('../helpers/fixture')
const { ssePath } = require('../helpers/server')
const { waitFor, sleep } = require('../helpers/wait')

const HELPERS = path.join(__dirname, '..', 'helpers')

/** GET / from localAddress: resolves { status, close } once the head arrived. */
function get (port) {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/', agent: false }, (res) => {
      res.resume()
      resolve({ status: res.statusCode, close: () => res.destroy() })
    }).on('error', reject)
  })
}

/** Runs a helper script; resolves { code, stdout } (bounded). */
function run (command, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'], ...options })
    let stdout = ''
    child.stdout.on('data', (d) => { stdout += d })
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`timed out; stdout: ${stdout}`)) }, 20000)
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code, stdout }) })
  })
}

function appHeaders (req, res, url) {
  if (url.searchParams.get('h') === '1') {
    res.setHeader('Access-Control-Allow-Origin', 'https://app.example')
    res.setHeader('Set-Cookie', ['a=1; Path=/', 'b=2; HttpOnly'])
    res.setHeader('X-Custom-Thing', 'custom value')
    // Framing and type are the hub's to decide.
    res.setHeader('Content-Type', 'text/html')
    res.setHeader('Content-Length', '12')
  }
  if (url.searchParams.get('cc') === '1') res.setHeader('Cache-Control', 'no-store')
}

for (const transport of ['auto', 'js']) {
  const expectTransport = transport === 'auto' ? 'native' : 'js'

  test(`[${transport}] app headers reach the client; HTTP/1.1 is chunked, HTTP/1.0 is not`, async (t) => {
    const { hub, server, clients } = await startHub(t, { hub: { threads: 1, transport }, beforeAccept: appHeaders, clients: true })

    const h11 = (await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 0, topics: ['t'], retry: 1500, extra: { h: '1' } }) })).indices[0]
    const h10 = (await clients.open({ n: 1, port: server.port, http10: true, path: ssePath({ tag: 1, topics: ['t'], retry: 1500, extra: { h: '1' } }) })).indices[0]
    const plain = (await clients.open({ n: 1, port: server.port, path: ssePath({ tag: 2, topics: ['t'], extra: { cc: '1' } }) })).indices[0]
    for (const tag of [0, 1, 2]) assert.equal(server.conn(tag).transport, expectTransport)

    hub.publish('t', 'first\nsecond', { event: 'greeting', id: '1' })
    hub.publish('t', { n: 2 })
    await clients.waitCounts([h11, h10, plain], 2)
    const [c11, c10, cPlain] = await clients.report({ events: true, raw: true, indices: [h11, h10, plain] })

    for (const c of [c11, c10]) {
      const label = `HTTP/1.${c === c11 ? 1 : 0}`
      assert.equal(c.status, 200, label)
      assert.equal(c.headers['content-type'], 'text/event-stream', `${label} content-type replaces the app's`)
      assert.equal(c.headers['cache-control'], 'no-cache', label)
      assert.equal(c.headers['x-accel-buffering'], 'no', label)
      assert.equal(c.headers['access-control-allow-origin'], 'https://app.example', label)
      assert.deepEqual(c.headers['set-cookie'], ['a=1; Path=/', 'b=2; HttpOnly'], `${label} both cookies`)
      assert.equal(c.headers['x-custom-thing'], 'custom value', label)
      assert.equal(c.headers['content-length'], undefined, `${label} no content-length on a stream`)
      assert.equal(c.retry, 1500, `${label} retry`)
      assert.deepEqual(c.events, [
        { event: 'greeting', data: 'first\nsecond', lastEventId: '1' },
        { event: 'message', data: '{"n":2}', lastEventId: '1' }
      ], label)
    }
    assert.equal(c11.chunked, true)
    assert.equal(c11.headers['transfer-encoding'], 'chunked')
    assert.notEqual(c11.headers.connection, 'close')

    assert.equal(c10.chunked, false)
    assert.equal(c10.headers['transfer-encoding'], undefined, 'no chunked framing for HTTP/1.0')
    assert.equal(String(c10.headers.connection).toLowerCase(), 'close')
    // The raw body is the event stream itself, no chunk sizes in it.
    assert.equal(c10.raw, 'retry: 1500\n\nevent: greeting\nid: 1\ndata: first\ndata: second\n\ndata: {"n":2}\n\n')
    assert.equal(c11.raw, c10.raw, 'the same SSE bytes once the chunking is removed')

    assert.equal(cPlain.headers['cache-control'], 'no-store', "the app's own cache-control is kept")
    assert.equal(cPlain.headers['set-cookie'], undefined)
  })
}

test('a response head that throws after the connection was registered gives its slot back, silently', async (t) => {
  const errors = []
  let failHead = true
  const { hub, port } = await startHub(t, {
    hub: { threads: 1, transport: 'js', maxConnectionsPerIp: 1, heartbeatMs: 0 },
    handler: (hub) => (req, res) => {
      if (failHead) {
        failHead = false
        res.writeHead = () => { throw new Error('head failed') }
      }
      try {
        hub.accept(req, res, { topics: ['t'] })
      } catch (err) {
        errors.push(err.message)
        res.destroy()
      }
    }
  })
  const events = []
  hub.on('connect', (c) => events.push(['connect', c.id]))
  hub.on('disconnect', (d) => events.push(['disconnect', d.id]))
  await get(port).catch(() => {})
  assert.deepEqual(errors, ['head failed'], 'accept() threw what the head threw')
  await waitFor(() => hub.stats().connections === 0, 5000, 'the slot is given back')
  const s = hub.stats()
  assert.deepEqual([s.connections, s.js, s.native], [0, 0, 0])
  const b = await get(port)
  assert.equal(b.status, 200, 'the address may connect: its per-IP count was never taken')
  await waitFor(() => hub.stats().connections === 1, 5000, 'the second stream')
  b.close()
  await waitFor(() => hub.stats().connections === 0, 5000, 'the second stream ended')
  assert.equal(events.length, 2, `only the second stream is announced: ${JSON.stringify(events)}`)
  assert.deepEqual(events.map((e) => e[0]), ['connect', 'disconnect'])
  await hub.close()
})

test('out of file descriptors, accept() refuses the stream with 503 and counts it, instead of serving it from JS', async () => {
  const child = path.join(HELPERS, 'emfile-child.js')
  const { code, stdout } = await run('/bin/sh', ['-c', `ulimit -n 200 && exec "${process.execPath}" "${child}"`])
  const out = JSON.parse(stdout.trim().split('\n').pop())
  assert.equal(out.failed, undefined, out.failed)
  assert.equal(code, 0)
  assert.equal(out.filled, 'EMFILE')
  assert.equal(out.refusals.length, 1)
  assert.equal(out.refusals[0].code, 'ERR_SSE_TOO_MANY_CONNECTIONS')
  assert.equal(out.refusals[0].statusCode, 503)
  assert.match(out.refusals[0].message, /file descriptor/)
  assert.deepEqual(out.statuses, [503, 200])
  assert.deepEqual(out.accepted, ['native'], 'with fds free again the next stream is taken over')
  assert.equal(out.stats.outOfFds, 1)
  assert.equal(out.stats.js, 0)
})

async function assertNeverAborted (t, port, seen, hub) {
  const c = await get(port)
  assert.equal(c.status, 200)
  await waitFor(() => hub.stats().native === 1, 5000, 'the stream was taken over')
  await sleep(100) // Node's socket closes in a later turn
  c.close()
  await waitFor(() => hub.stats().connections === 0, 5000, 'the stream ended')
  await sleep(50)
  assert.deepEqual(seen, [], 'no aborted or error event on the request')
}

test('node:http: a taken-over request emits no \'aborted\'', async (t) => {
  const seen = []
  const { hub, port } = await startHub(t, {
    hub: { threads: 1, heartbeatMs: 0 },
    handler: (hub) => (req, res) => {
      req.on('aborted', () => seen.push('aborted'))
      req.on('error', (err) => seen.push(`error ${err.code}`))
      hub.accept(req, res, { topics: ['t'] })
    }
  })
  await assertNeverAborted(t, port, seen, hub)
})

test('Express: a taken-over request emits no \'aborted\'', async (t) => {
  const seen = []
  const { hub, port } = await startHub(t, {
    hub: { threads: 1, heartbeatMs: 0 },
    handler: (hub) => {
      const app = express()
      app.get('/', (req, res, next) => {
        req.on('aborted', () => seen.push('aborted'))
        req.on('error', (err) => seen.push(`error ${err.code}`))
        next()
      }, sse(hub, { topics: ['t'] }))
      return app
    }
  })
  await assertNeverAborted(t, port, seen, hub)
})

for (const transport of ['auto', 'js']) {
  test(`process.exit() with an open stream (${transport} transport): the client sees the events and a proper chunked end`, async () => {
    const child = spawn(process.execPath, [path.join(HELPERS, 'exit-child.js'), transport], { stdio: ['ignore', 'pipe', 'inherit'] })
    const port = await new Promise((resolve, reject) => {
      child.stdout.once('data', (d) => resolve(Number(String(d).trim())))
      child.once('exit', (code) => reject(new Error(`the child exited (${code}) before listening`)))
    })
    const exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
    const socket = net.connect(port, '127.0.0.1')
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n')
    let raw = ''
    socket.setEncoding('latin1')
    socket.on('data', (d) => { raw += d })
    const ended = await new Promise((resolve) => {
      socket.once('end', () => resolve('end'))
      socket.once('error', (err) => resolve(err.code))
      setTimeout(() => resolve('timeout'), 10000)
    })
    socket.destroy()
    assert.equal(await exited, 0)
    assert.equal(ended, 'end', 'an orderly EOF, not a reset')
    assert.match(raw, /^HTTP\/1\.1 200 OK\r\n/)
    assert.match(raw, /transfer-encoding: chunked\r\n/i)
    const body = raw.slice(raw.indexOf('\r\n\r\n') + 4)
    for (let i = 0; i < 3; i++) assert.ok(body.includes(`data: before ${i}\n`), `event ${i} arrived`)
    if (transport === 'auto') assert.ok(body.includes('data: last\n'), 'what was published just before exit() went out too')
    assert.ok(body.endsWith('\r\n0\r\n\r\n'), `the body ends with the last chunk: ${JSON.stringify(body.slice(-40))}`)
  })
}
