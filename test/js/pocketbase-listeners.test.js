'use strict'
// Realtime listeners that throw ('connect', 'subscribe', 'invalidSubscription',
// 'disconnect'), on every integration and transport: the realtime books
// everything first, calls every listener, and what they threw surfaces as an
// uncaught exception afterwards; the request's answer is unaffected (the
// stream stays open, the POST gets its 204, updateAuth/revokeAuth reach every
// client). Checked in a child process (test/helpers/pb-listener-child.js)
// over real sockets.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const CHILD = path.join(__dirname, '..', 'helpers', 'pb-listener-child.js')

function runChild (kind, transport) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, kind, transport], { stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (d) => { stdout += d })
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the child did not exit within 20 s; it printed: ${stdout}`))
    }, 20000)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out: stdout.trim() ? JSON.parse(stdout.trim().split('\n').pop()) : {} })
    })
  })
}

for (const [kind, transport] of [['http', 'auto'], ['http', 'js'], ['fastify', 'js'], ['express', 'js']]) {
  test(`${kind} (${transport} transport): throwing realtime listeners change no answer and no state, every listener runs, the errors surface`, async () => {
    const { code, out } = await runChild(kind, transport)
    assert.equal(out.failed, undefined, out.failed)
    assert.equal(code, 0)
    const steps = out.steps
    assert.equal(steps.connectStatus, 200)
    assert.equal(steps.sizeAfterConnect, 1)
    assert.equal(steps.firstPost, 204)
    assert.equal(steps.throwingPost, 204, "a throwing 'subscribe' listener does not turn the POST into a 500")
    assert.deepEqual(steps.afterThrowingPost, ['b'])
    assert.equal(steps.updateAuth, 1)
    assert.deepEqual(steps.afterUpdateAuth, ['b'], 'updateAuth evaluates the set last asked for')
    assert.equal(steps.invalidPost, 204)
    assert.equal(steps.secondPost, 204)
    assert.equal(steps.revokeAuth, 2, 'both clients revoked')
    assert.deepEqual(steps.authAfterRevoke, [null, null])
    assert.equal(steps.clientsOfAfterRevoke, 0)
    assert.equal(steps.streamEnded, false, 'the stream opened while a connect listener threw is open and delivers')
    assert.equal(steps.sizeAfterDisconnect, 0)
    assert.equal(steps.hubConnections, 0)
    // The second listener saw every event, also those whose first listener threw.
    assert.equal(out.seen.connect, 2)
    assert.ok(out.seen.subscribe >= 6, `subscribe seen ${out.seen.subscribe} times`)
    assert.ok(out.seen.invalidSubscription >= 1)
    assert.equal(out.seen.disconnect, 2)
    assert.deepEqual([...new Set(out.uncaught)].sort(),
      ['connect listener threw', 'disconnect listener threw', 'invalidSubscription listener threw', 'subscribe listener threw'])
  })
}
