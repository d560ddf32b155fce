'use strict'
// Bounded waiting and small process probes shared by the tests.

const fs = require('node:fs')
const { setTimeout: sleep } = require('node:timers/promises')

/**
 * Resolves once predicate() (sync or async) returns truthy; rejects after
 * timeoutMs with a message saying what was awaited.
 * @param {() => unknown} predicate
 * @param {number} timeoutMs
 * @param {string | (() => string)} [what]
 * @param {number} [intervalMs]
 */
async function waitFor (predicate, timeoutMs, what = 'condition', intervalMs = 20) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await predicate()
    if (value) return value
    if (Date.now() >= deadline) {
      const text = typeof what === 'function' ? what() : what
      throw new Error(`timed out after ${timeoutMs} ms waiting for: ${text}`)
    }
    await sleep(intervalMs)
  }
}

/** Open file descriptors of this process. */
function fdCount () {
  return fs.readdirSync('/proc/self/fd').length
}

/** Rejects if promise does not settle within timeoutMs. */
function within (promise, timeoutMs, what) {
  let timer
  const limit = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

module.exports = { waitFor, fdCount, within, sleep }
