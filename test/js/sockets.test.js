'use strict'
// Taken-over sockets carry the hub's dead-peer options: keepAliveMs reaches
// the kernel (read back with ss(8), whose -o shows a socket's keepalive timer;
// TCP_USER_TIMEOUT is checked by getsockopt in ShardTest), 0 leaves the
// kernel's default (no keepalive), and the options are validated.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { execFileSync } = require('node:child_process')
const { Hub } = require('../..')
const { waitFor, cleanup } = require('../helpers/wait')

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
