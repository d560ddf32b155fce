'use strict'
// 'connect' and 'disconnect' listeners that throw: the hub books every report of a batch (and every
// accepted connection) before its 'connect'/'disconnect' listeners run, calls
// every listener even when one throws, and what they threw surfaces as an
// uncaught exception afterwards. Checked in a child process over real
// sockets: counts per address, stats(), new streams, and a close() that
// resolves and lets the process end by itself.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawn } = require('node:child_process')
const path = require('node:path')

const CHILD = path.join(__dirname, '..', 'helpers', 'listener-child.js')

function runChild (transport) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, transport], { stdio: ['ignore', 'pipe', 'inherit'] })
    let stdout = ''
    child.stdout.on('data', (d) => { stdout += d })
    // The child never calls process.exit(): it must end by itself.
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`the child did not exit by itself within 20 s; it printed: ${stdout}`))
    }, 20000)
    child.on('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, out: stdout.trim() ? JSON.parse(stdout.trim().split('\n').pop()) : {} })
    })
  })
}

for (const transport of ['auto', 'js']) {
  test(`throwing listeners (${transport} transport): books stay right, every listener runs, the error surfaces, close() ends the process`, async () => {
    const { code, out } = await runChild(transport)
    assert.equal(out.failed, undefined, out.failed)
    assert.equal(code, 0)
    const idle = { connections: 0, native: 0, js: 0, perIp: {}, ipOf: 0, count: 0 }
    assert.deepEqual(out.steps.afterDisconnects, idle, 'both disconnects booked although the first listener call threw')
    assert.deepEqual(out.disconnects.slice(0, 2), ['kicked', 'kicked'], 'the other listener saw both disconnects')
    assert.deepEqual(out.steps.reopened, [200, 200], 'both addresses may connect again')
    const open = transport === 'js' ? { native: 0, js: 2 } : { native: 2, js: 0 }
    assert.deepEqual(out.steps.afterReopen, { connections: 2, ...open, perIp: { '127.0.0.1': 1, '127.0.0.2': 1 }, ipOf: 2, count: 2 })
    assert.equal(out.steps.connectThrew, 200, 'accept() did not throw for a connection it had registered')
    assert.deepEqual(out.acceptErrors, ['ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP'], 'only the second stream from 127.0.0.3 was refused')
    assert.equal(out.steps.secondFromSameIp, 429)
    assert.equal(out.steps.afterConnectThrew.connections, 3)
    assert.deepEqual(out.steps.afterConnectThrew.perIp, { '127.0.0.1': 1, '127.0.0.2': 1, '127.0.0.3': 1 })
    assert.equal(out.connects.length, 5, 'the second connect listener ran for every stream, also when the first threw')
    assert.deepEqual(out.steps.afterClose, idle)
    assert.deepEqual(out.uncaught, ['disconnect listener threw', 'connect listener threw'])
  })
}
