'use strict'
// The one way JS makes a mutating call into the addon: the flush obligation
// in one place.
//
// A mutating native call (adopt, attach, subscribe, unsubscribe, publish,
// broadcast, send, kick, detach, and a protocol's own, e.g. PocketBase's
// subscribe, broadcastRecord, publish, send) only appends commands to the
// native hub's per-I/O-thread batches. The batches reach the threads when the
// hub is flushed, once per JS job (one lock and one wake-up per batch, not per
// call). A call made without scheduling that flush fails silently: its
// commands wait for the next unrelated one. So every mutating call goes
// through a NativeCalls, which makes the call, turns a refusal into an error
// and schedules the flush. eslint.config.js refuses any other call of a
// native object's methods outside this file but the read-only ones.
//
// Results come in three shapes, hence three entry points; the flush is the
// same for all:
//  - status(method, refuse, context, ...args): 0 for OK; anything else (a
//    Status, or a message: PocketBase's broadcastRecord names a rule that
//    does not compile) is a refusal that queued nothing, thrown as
//    refuse(result, context) (the SseError naming the argument). An accepted
//    call schedules the flush.
//  - id(method, refuse, context, ...args): an id (> 0), 0 when nothing was
//    opened (adopt: the fd could not be duplicated) or a negated Status
//    (thrown as above). The id is returned; the flush is scheduled for an id.
//  - result(method, ...args): a result the caller reads itself (PocketBase's
//    subscribe answers the subscriptions it could not compile or a Status;
//    its send a Status where an unknown client is not an error; detach's is
//    not read). Returned as it is; the flush is scheduled whatever it says (a
//    flush with nothing queued posts nothing).
// Arguments are passed on positionally, not as a rest array, so the hot path
// (Hub#publish) allocates nothing here, and exactly as many as were given:
// node-addon-api reads up to six without allocating, more from the heap. Up
// to nine, adopt's count.
//
// Only the JS thread calls these, as it is the only one that may call the
// addon's methods at all.

/** At most one native flush per JS job, at its end (a microtask). One per native hub. */
class FlushScheduler {
  constructor (nativeHub) {
    this._queued = false
    this._run = () => {
      this._queued = false
      nativeHub.flush()
    }
  }

  schedule () {
    if (!this._queued) {
      this._queued = true
      queueMicrotask(this._run)
    }
  }
}

// target[method] with the first n of a..i.
function invoke (target, method, n, a, b, c, d, e, f, g, h, i) {
  switch (n) {
    case 0: return target[method]()
    case 1: return target[method](a)
    case 2: return target[method](a, b)
    case 3: return target[method](a, b, c)
    case 4: return target[method](a, b, c, d)
    case 5: return target[method](a, b, c, d, e)
    case 6: return target[method](a, b, c, d, e, f)
    case 7: return target[method](a, b, c, d, e, f, g)
    case 8: return target[method](a, b, c, d, e, f, g, h)
    default: return target[method](a, b, c, d, e, f, g, h, i)
  }
}

/** The mutating calls on one native object (a NativeHub, or a protocol's object on it), with its hub's flush. */
class NativeCalls {
  /**
   * @param {object} target the native object whose methods are called
   * @param {FlushScheduler} flush the flush of the native hub the target queues commands on
   */
  constructor (target, flush) {
    this._target = target
    this._flush = flush
  }

  /** target[method](...) answering a Status: throws refuse(status, context) unless 0. */
  status (method, refuse, context, a, b, c, d, e, f, g, h, i) {
    const status = invoke(this._target, method, arguments.length - 3, a, b, c, d, e, f, g, h, i)
    if (status !== 0) throw refuse(status, context)
    this._flush.schedule()
  }

  /** target[method](...) answering an id, 0 (nothing opened) or a negated Status; returns the id or 0. */
  id (method, refuse, context, a, b, c, d, e, f, g, h, i) {
    const id = invoke(this._target, method, arguments.length - 3, a, b, c, d, e, f, g, h, i)
    if (id < 0) throw refuse(-id, context)
    if (id > 0) this._flush.schedule()
    return id
  }

  /** target[method](...) answering anything else: returned as it is, for the caller to read. */
  result (method, a, b, c, d, e, f, g, h, i) {
    const result = invoke(this._target, method, arguments.length - 1, a, b, c, d, e, f, g, h, i)
    this._flush.schedule()
    return result
  }
}

module.exports = { FlushScheduler, NativeCalls }
