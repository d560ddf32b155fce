'use strict'
// The native Mercure index (src/mercure, src/addon/mercure_wrap) as a
// MercureHub uses it: one per MercureHub, on its hub. A subscriber's selectors
// and claims form a profile (acquire: shared by every stream with the same
// selectors and claims); templates are matched natively, once per distinct
// template per update. Every mutating call goes through the hub's NativeCalls
// (hubInternals(hub).callsOn, lib/native-calls.js); native statuses become
// SseErrors here, with the HTTP status a request gets.
const { hubInternals } = require('../hub')
const { SseError } = require('../errors')
const native = require('../native')
const { MAX_CURSOR_BYTES } = require('../history')

const STATUS = native.statusNames

// Status name -> [HTTP status, what the request gets told].
const ANSWERS = {
  INVALID_TOPIC: [400, 'a topic selector is not valid'],
  TOO_MANY_SUBSCRIPTIONS: [400, 'too many topic selectors (maxSelectorsPerSubscriber) or template expressions among them (maxExpressionsPerSubscriber)'],
  TOO_MANY_DISTINCT_SUBSCRIPTIONS: [503, 'the hub holds too many distinct topic selectors or URI templates (maxDistinctSelectors, maxDistinctTemplates, or 256 template shapes)'],
  DATA_TOO_LARGE: [413, 'the update encodes to more than maxQueueBytes, so no subscriber could receive it'],
  QUEUE_FULL: [503, 'the I/O threads are behind (maxPendingCommands or maxPendingBytes); nothing was queued'],
  CLOSED: [503, 'the hub is closed']
}

/** The SseError of a native status; statusCode is the HTTP answer. */
function statusError (status, method) {
  const name = STATUS[status] || 'UNKNOWN'
  const [statusCode, message] = ANSWERS[name] || [500, `refused with status ${name}`]
  const err = new SseError(`ERR_SSE_${name}`, `${method}: ${message}`)
  err.statusCode = statusCode
  return err
}

class NativeMercure {
  /**
   * @param {import('../hub').Hub} hub
   * @param {{ maxSelectorsPerSubscriber: number, maxDistinctSelectors: number, maxDistinctTemplates: number, maxTopicsPerUpdate: number }} limits
   */
  constructor (hub, limits) {
    this._internals = hubInternals(hub)
    this._native = new native.NativeMercure(this._internals.native, {
      maxSelectorsPerSubscriber: limits.maxSelectorsPerSubscriber,
      maxDistinctSelectors: limits.maxDistinctSelectors,
      maxDistinctTemplates: limits.maxDistinctTemplates,
      maxExpressionsPerSubscriber: limits.maxExpressionsPerSubscriber,
      maxTopicsPerUpdate: limits.maxTopicsPerUpdate
    })
    this._calls = this._internals.callsOn(this._native)
  }

  /**
   * The profile of (selectors, claims): claims null gives no private update.
   * Returns its id; the caller releases it (release()) once the stream holds it.
   */
  acquire (selectors, claims) {
    return this._calls.id('acquire', statusError, 'subscribe', selectors, claims)
  }

  release (profileId) {
    this._calls.result('release', profileId)
  }

  /** The newest update in the history this profile may see; null when none (or history off). */
  lastVisibleId (profileId) {
    return this._native.lastVisibleId(profileId)
  }

  /**
   * True when a stream of this profile resuming from `cursor` (an update id,
   * or a cursor of the hub's own) gets what followed it: the history holds
   * it, and it names nothing the profile may not know of (a private update
   * it may not read counts as unknown, so a resume cannot probe for one).
   * Longer ids than MAX_CURSOR_BYTES are never held. History on only.
   */
  resumes (profileId, cursor) {
    if (cursor.length > MAX_CURSOR_BYTES) return false
    return this._native.resumes(profileId, cursor)
  }

  /**
   * For a resume resumes() accepts (or `earliest`): null when the stream
   * replays every update after the cursor; else [id, cursor] of the newest
   * update it leaves out (past maxReplayEvents or its queue), the update
   * before the first one it gets, and the cursor that replays exactly those.
   */
  replayStart (profileId, cursor) {
    return this._native.replayStart(profileId, cursor)
  }

  /** hub.accept() with the stream bound to the profile. */
  accept (req, res, acceptOptions, profileId) {
    return this._internals.accept(req, res, acceptOptions, this._calls, profileId)
  }

  /** An update (checked: update.js) to every subscriber whose profile matches one of its topics, once. */
  publish (topics, data, isPrivate, id, type, retry) {
    this._calls.status('publish', statusError, 'publish', topics, data, isPrivate, id, type, retry)
    if (typeof this._internals.advanceSeq === 'function') this._internals.advanceSeq()
  }

  /** Counts of the index: profiles, selectors, templates. */
  stats () { return this._native.stats() }
}

/** The native selector matcher, for the authorization's claims (auth.js). */
const selectorMatches = native.mercureSelectorMatches

module.exports = { NativeMercure, selectorMatches, statusError }
