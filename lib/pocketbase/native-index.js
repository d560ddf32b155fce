'use strict'
// The PocketBase subscription index in the addon (src/pocketbase/pb_index.hpp)
// as a Realtime uses it: one NativeIndex per Realtime, on the Realtime's hub.
// Rules, filters and field lists run there: a record event is parsed once and
// encoded once per distinct subscription string, and its frames are queued on
// the hub's I/O threads like any event. Every mutating call goes through the
// hub's NativeCalls (hubInternals(hub).callsOn, lib/native-calls.js), which
// schedules the hub's flush; the native statuses become SseErrors here.
//
// One NativeRealtime (src/addon/realtime_wrap.hpp) per Realtime: its own index
// and its own internal topic space on the shared hub, the budgets set once.
const { hubInternals } = require('../hub')
const { SseError } = require('../errors')
const native = require('../native')
const { BUDGET_OPTIONS } = require('./options')

const STATUS = native.statusNames

// What a refused call says: method and the meaning of DATA_TOO_LARGE.
const RECORD = Object.freeze({ method: 'broadcastRecord', tooLarge: 'the record encodes to more than maxQueueBytes' })
const PUBLISH = Object.freeze({ method: 'publish', tooLarge: 'the message encodes to more than maxQueueBytes' })
const SEND = Object.freeze({ method: 'sendToClient', tooLarge: 'the message encodes to more than maxQueueBytes' })

/** The SseError of a native status from broadcastRecord, publish or sendToClient. */
function statusError (status, context) {
  const name = STATUS[status]
  const message = name === 'DATA_TOO_LARGE'
    ? context.tooLarge
    : name === 'QUEUE_FULL'
      ? 'the I/O threads are behind: maxPendingCommands or maxPendingBytes reached; nothing was queued'
      : 'refused'
  return new SseError(`ERR_SSE_${name}`, `${context.method}: ${message}`)
}

// broadcastRecord answers a Status or the message of a rule that does not compile.
function recordError (result, context) {
  if (typeof result === 'string') return new SseError('ERR_SSE_INVALID_FILTER', `${context.method}: ${result}`)
  return statusError(result, context)
}

class NativeIndex {
  /**
   * @param {import('../hub').Hub} hub
   * @param {object} budgets the Realtime's options (the BUDGET_OPTIONS are read)
   */
  constructor (hub, budgets) {
    const internals = hubInternals(hub)
    this._native = new native.NativeRealtime(internals.native, Object.fromEntries(BUDGET_OPTIONS.map((name) => [name, budgets[name]])))
    this._calls = internals.callsOn(this._native)
  }

  /**
   * Replaces a connection's subscriptions (owner: the client address the
   * per-IP budgets count on; authJson undefined for a guest). Returns the
   * [subscription, message] pairs of those that did not compile, or the
   * Status that refused the whole set (nothing changed).
   */
  subscribe (connectionId, owner, identity, authJson, superuser, subscriptions) {
    return this._calls.result('subscribe', connectionId, owner, identity, authJson, superuser, subscriptions)
  }

  /** A record event (c: a checked collection); throws ERR_SSE_INVALID_FILTER for a rule that does not compile. */
  broadcastRecord (c, action, recordJson) {
    this._calls.status('broadcastRecord', recordError, RECORD, c.name, c.id, c.listRule, c.viewRule, action, recordJson)
  }

  /** A custom message to the subscribers of exactly `subscription`. */
  publish (subscription, event, data) {
    this._calls.status('publish', statusError, PUBLISH, subscription, event, data)
  }

  /**
   * A message to one connection; false when it is unknown (or ended).
   * `connecting`: the PB_CONNECT message, queued past maxPendingCommands and
   * maxPendingBytes as accept()'s own commands are; its status is not read.
   */
  send (connectionId, event, data, connecting = false) {
    const status = this._calls.result('send', connectionId, event, data, connecting)
    if (connecting || status === 0) return true
    if (STATUS[status] === 'UNKNOWN_CONNECTION') return false
    throw statusError(status, SEND)
  }

  /** Counts of the index: clients, keys, groups, identities. */
  stats () { return this._native.stats() }
}

module.exports = { NativeIndex }
