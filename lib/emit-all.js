'use strict'
// emitAll(emitter, name, args): emits name once per argument in args to every
// listener, each call in its own try. For events fired in the middle of the
// library's own work (a connection registered, a subscription set applied): a
// listener that throws neither stops the other listeners nor unwinds that
// work, and the caller's answer stays what it was. What the listeners threw
// surfaces as uncaught exceptions once the current job is over, as an emit()
// outside the library would.

function rethrow (err) {
  throw err
}

function emitAll (emitter, name, args) {
  if (args.length === 0 || emitter.listenerCount(name) === 0) return
  for (const arg of args) {
    // rawListeners(): the once() wrappers, which remove themselves.
    for (const listener of emitter.rawListeners(name)) {
      try {
        listener.call(emitter, arg)
      } catch (err) {
        process.nextTick(rethrow, err)
      }
    }
  }
}

module.exports = { emitAll }
