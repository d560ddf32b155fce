'use strict'
// Helpers for the tests of the bounded command queue (maxPendingCommands,
// maxPendingBytes):
//   untilFull(fn, limit)  calls fn(i) until it throws: { accepted, err }
//   drained(hub)          resolves once no command waits for an I/O thread

const { waitFor } = require('./wait')

function untilFull (fn, limit = 1e6) {
  for (let i = 0; i < limit; i++) {
    try {
      fn(i)
    } catch (err) {
      return { accepted: i, err }
    }
  }
  return { accepted: limit, err: undefined }
}

const drained = (hub) => waitFor(() => hub.stats().pendingCommands === 0, 10000, () => `pendingCommands ${hub.stats().pendingCommands}`)

module.exports = { untilFull, drained }
