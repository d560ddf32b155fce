'use strict'
// Taken-over sockets carry the hub's dead-peer options: keepAliveMs reaches
// the kernel (read back with ss(8), whose -o shows a socket's keepalive timer;
// TCP_USER_TIMEOUT is checked by getsockopt in ShardTest), 0 leaves the
// kernel's default (no keepalive), and the options are validated (keepAliveMs
// within the kernel's 32767 s). Streams on the JS transport (transport 'js',
// TLS, HTTP/2) get keepAliveMs through Node's setKeepAlive on their TCP socket.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const http2 = require('node:http2')
const https = require('node:https')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { Hub } = require('../..')
const { waitFor, sleep, cleanup } = require('../helpers/wait')

function hasSs () {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' })
    return process.platform === 'linux'
  } catch {
    return false
  }
}

/** The keepalive timer (seconds left) of the server side of the one stream on port, or null without one. */
function keepaliveTimer (port) {
  const out = execFileSync('ss', ['-tnoH', 'state', 'established', `( sport = :${port} )`]).toString()
  const m = /timer:\(keepalive,([^,]+),/.exec(out)
  if (!m) return null
  // ss writes "1min59sec", "29sec", "8.876ms" (8.876 s) or "884ms".
  const text = m[1]
  let seconds = 0
  const min = /(\d+)min/.exec(text)
  const sec = /(\d+)sec/.exec(text)
  const ms = /(?:(\d+)\.)?(\d+)ms$/.exec(text)
  if (min) seconds += 60 * Number(min[1])
  if (sec) seconds += Number(sec[1])
  if (ms) seconds += Number(ms[1] || 0) + Number(ms[2]) / 1000
  return seconds
}

for (const [keepAliveMs, expected] of [[undefined, 30], [9000, 9], [0, null]]) {
  test(`keepAliveMs ${keepAliveMs ?? '(default)'}: ${expected === null ? 'no keepalive timer' : `a keepalive timer of at most ${expected} s`} on the taken-over socket`, { skip: !hasSs() && 'needs ss(8) on Linux' }, async (t) => {
    const defer = cleanup(t)
    const hub = new Hub({ threads: 1, heartbeatMs: 0, keepAliveMs })
    defer(() => hub.close(), 'hub.close()')
    const server = http.createServer((req, res) => hub.accept(req, res, {}))
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
    defer(() => new Promise((resolve) => { server.close(resolve); server.closeAllConnections() }), 'server.close()')
    const port = server.address().port
    const res = await new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port, agent: false }, resolve).on('error', reject))
    defer(() => res.destroy(), 'client')
    await waitFor(() => hub.stats().native === 1, 5000, 'the stream was taken over')
    const timer = keepaliveTimer(port)
    if (expected === null) {
      assert.equal(timer, null)
    } else {
      assert.ok(timer !== null, 'a keepalive timer runs')
      assert.ok(timer <= expected && timer > expected - 5, `keepalive in ${timer} s, configured ${expected} s`)
    }
  })
}

test('keepAliveMs, tcpUserTimeoutMs, maxPendingCommands and maxPendingBytes are validated', () => {
  for (const name of ['keepAliveMs', 'tcpUserTimeoutMs', 'maxPendingCommands', 'maxPendingBytes']) {
    for (const bad of [-1, 1.5, '10', null]) {
      assert.throws(() => new Hub({ [name]: bad }), { code: 'ERR_SSE_INVALID_ARGUMENT', message: new RegExp(`options\\.${name}`) }, `${name}: ${bad}`)
    }
  }
})

test('keepAliveMs is at most 32767 s (the kernel refuses a longer TCP_KEEPIDLE)', () => {
  assert.throws(() => new Hub({ keepAliveMs: 32767 * 1000 + 1 }), { code: 'ERR_SSE_INVALID_ARGUMENT', message: /options\.keepAliveMs/ })
  assert.throws(() => new Hub({ keepAliveMs: 2 ** 31 - 1 }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  const hub = new Hub({ keepAliveMs: 32767 * 1000 })
  assert.equal(hub.options.keepAliveMs, 32767 * 1000)
  return hub.close()
})

let tlsFiles = null
function tls () {
  if (tlsFiles === null) {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sse-fanout-tls-'))
    try {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost',
        '-days', '1', '-keyout', path.join(tmp, 'k'), '-out', path.join(tmp, 'c')], { stdio: 'ignore', timeout: 30000 })
      tlsFiles = { key: fs.readFileSync(path.join(tmp, 'k')), cert: fs.readFileSync(path.join(tmp, 'c')) }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true })
    }
  }
  return tlsFiles
}

// Servers whose streams stay on the JS transport, and a client that opens one stream.
const JS_VARIANTS = {
  'plain http, transport "js"': {
    hubOptions: { transport: 'js' },
    server: (handler) => http.createServer(handler),
    open: (port) => new Promise((resolve, reject) => http.get({ host: '127.0.0.1', port, agent: false }, (res) => resolve(() => res.destroy())).on('error', reject))
  },
  https: {
    hubOptions: {},
    server: (handler) => https.createServer(tls(), handler),
    open: (port) => new Promise((resolve, reject) => https.get({ host: '127.0.0.1', port, agent: false, rejectUnauthorized: false }, (res) => resolve(() => res.destroy())).on('error', reject))
  },
  'HTTP/2': {
    hubOptions: {},
    server: (handler) => http2.createSecureServer(tls(), handler),
    open: (port) => new Promise((resolve, reject) => {
      const session = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false })
      session.on('error', reject)
      const stream = session.request({ ':path': '/' })
      stream.on('response', () => resolve(() => session.destroy()))
      stream.on('error', reject)
    })
  }
}

for (const [name, variant] of Object.entries(JS_VARIANTS)) {
  for (const [keepAliveMs, expected] of [[9000, 9], [0, null]]) {
    test(`${name}: keepAliveMs ${keepAliveMs} gives ${expected === null ? 'no keepalive timer' : `a keepalive timer of at most ${expected} s`} on the JS-transport socket`, { skip: !hasSs() && 'needs ss(8) on Linux' }, async (t) => {
      const defer = cleanup(t)
      const hub = new Hub({ threads: 1, heartbeatMs: 0, keepAliveMs, ...variant.hubOptions })
      defer(() => hub.close(), 'hub.close()')
      const server = variant.server((req, res) => hub.accept(req, res, {}))
      await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
      const sockets = new Set()
      server.on('connection', (socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)) })
      defer(() => new Promise((resolve) => { server.close(resolve); for (const socket of sockets) socket.destroy() }), 'server.close()')
      const port = server.address().port
      const close = await variant.open(port)
      defer(async () => {
        close()
        await waitFor(() => hub.stats().js === 0, 5000, 'the hub saw the client leave')
      }, 'client')
      await waitFor(() => hub.stats().js === 1, 5000, 'the stream on the JS transport')
      // Just after the head, ss may show the retransmission timer of unacknowledged data instead.
      if (expected !== null) await waitFor(() => keepaliveTimer(port) !== null, 2000, 'a keepalive timer on the socket')
      else await sleep(100)
      const timer = keepaliveTimer(port)
      if (expected === null) {
        assert.equal(timer, null)
      } else {
        assert.ok(timer <= expected && timer > expected - 5, `keepalive in ${timer} s, configured ${expected} s`)
      }
    })
  }
}
