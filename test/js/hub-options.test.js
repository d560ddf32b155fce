'use strict'
// new Hub(options): every option is validated (ERR_SSE_INVALID_ARGUMENT naming
// the option, within the bounds the kernel takes) and the defaults are the
// documented ones.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Hub } = require('../..')
const { throwsSse } = require('../helpers/sse-error')

test('constructor options are validated (ERR_SSE_INVALID_ARGUMENT, naming the option)', () => {
  const cases = [
    [null, /options/],
    ['fast', /options/],
    [42, /options/],
    [{ threads: 0 }, /options\.threads/],
    [{ threads: 65 }, /options\.threads/],
    [{ threads: 1.5 }, /options\.threads/],
    [{ threads: '2' }, /options\.threads/],
    [{ heartbeatMs: -1 }, /options\.heartbeatMs/],
    [{ heartbeatMs: NaN }, /options\.heartbeatMs/],
    [{ maxQueueBytes: 10 }, /options\.maxQueueBytes/],
    [{ maxSubscriptions: 0 }, /options\.maxSubscriptions/],
    [{ maxConnections: 0 }, /options\.maxConnections/],
    [{ sndbufBytes: -5 }, /options\.sndbufBytes/],
    [{ closeTimeoutMs: Infinity }, /options\.closeTimeoutMs/],
    [{ transport: 'udp' }, /options\.transport/]
  ]
  for (const [options, name] of cases) {
    throwsSse(() => new Hub(options), 'ERR_SSE_INVALID_ARGUMENT', name, `new Hub(${JSON.stringify(options)})`)
  }
})

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

test('defaults: 256 streams per client address and 100,000 per hub; keepalive 30 s, user timeout 60 s, 100,000 commands or 64 MiB pending, a heartbeat every 15 s', () => {
  const hub = new Hub({ threads: 1 })
  try {
    assert.equal(hub.options.maxConnectionsPerIp, 256)
    assert.equal(hub.options.maxConnections, 100000)
    assert.equal(hub.options.keepAliveMs, 30000)
    assert.equal(hub.options.tcpUserTimeoutMs, 60000)
    assert.equal(hub.options.maxPendingCommands, 100000)
    assert.equal(hub.options.maxPendingBytes, 64 * 1024 * 1024)
    assert.equal(hub.options.heartbeatMs, 15000)
  } finally {
    hub.close()
  }
})
