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

/**
 * Deferred cleanup for a test: defer(fn, what) registers fn; after the test
 * they run in reverse order (clients before servers before hubs), each
 * bounded by timeoutMs, all of them even when one fails; the first failure
 * is then reported.
 */
function cleanup (t, timeoutMs = 10000) {
  const fns = []
  t.after(async () => {
    const errors = []
    for (const [fn, what] of fns.reverse()) {
      try {
        await within(Promise.resolve().then(fn), timeoutMs, `cleanup: ${what}`)
      } catch (err) {
        errors.push(err)
      }
    }
    if (errors.length > 0) throw errors[0]
  })
  return (fn, what = 'cleanup') => fns.push([fn, what])
}

module.exports = { waitFor, fdCount, within, sleep, cleanup }
