'use strict'
// Taken-over sockets carry the hub's dead-peer options: keepAliveMs reaches
// the kernel (read back with ss(8), whose -o shows a socket's keepalive timer;
// TCP_USER_TIMEOUT is checked by getsockopt in ShardTest), 0 leaves the
// kernel's default (no keepalive). Streams on the JS transport (transport
// 'js', TLS, HTTP/2) get keepAliveMs through Node's setKeepAlive on their TCP
// socket. (How the options are validated: hub-options.test.js.)

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const http = require('node:http')
const http2 = require('node:http2')
const https = require('node:https')
const os = require('node:os')
const path = require('node:path')
const { execFileSync } = require('node:child_process')
const { startHub } = require('../helpers/fixture')
const { waitFor, sleep } = require('../helpers/wait')

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
    const { hub, port, defer } = await startHub(t, { hub: { threads: 1, heartbeatMs: 0, keepAliveMs }, accept: {} })
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
      const { hub, port, defer } = await startHub(t, {
        hub: { threads: 1, heartbeatMs: 0, keepAliveMs, ...variant.hubOptions }, accept: {}, createServer: variant.server
      })
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
