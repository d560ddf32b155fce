'use strict'
// History and resume, the JS side (docs/history.md): the hub's `history`
// option, where a stream's cursor comes from, and the ids publish() returns.
// The history itself is native (src/history): frames, sequence, replay.
const crypto = require('node:crypto')
const { invalid } = require('../errors')
const { LINE_BREAK_OR_NUL } = require('../validate')

const DEFAULTS = Object.freeze({
  maxEvents: 10000,
  maxBytes: 16 * 1024 * 1024,
  maxAgeMs: 300000,
  maxReplayEvents: 1000,
  resetEvent: 'reset',
  maxPollWaitMs: 25000,
  maxPollEvents: 1000,
  maxPollWaiters: 10000
})
const LIMITS = {
  maxEvents: [0, 1e7],
  maxBytes: [0, 2 ** 40],
  maxAgeMs: [0, 2 ** 31 - 1],
  maxReplayEvents: [1, 1e7],
  maxPollWaitMs: [0, 2 ** 31 - 1],
  maxPollEvents: [1, 1e6],
  maxPollWaiters: [0, 1e7]
}
const KEYS = new Set([...Object.keys(DEFAULTS), 'epoch', 'positionEvent'])
// positionEvent: true names the visible position events this (SseClient's default).
const POSITION_EVENT = 'sse-position'
const MAX_EVENT_NAME_BYTES = 256
const EPOCH = /^[A-Za-z0-9]{1,32}$/
const ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
// Longer Last-Event-IDs are no cursor and no id the history could hold
// (publish ids are bounded the same way): placed as "unknown" without
// handing the native side a client's megabyte.
const MAX_CURSOR_BYTES = 1024
const QUERY_NAMES = ['lastEventId', 'last_event_id', 'lastEventID']
const UNPLACEABLE = '-'

/** 8 characters of [A-Za-z0-9], uniform (rejection sampling). */
function makeEpoch () {
  let out = ''
  while (out.length < 8) {
    for (const b of crypto.randomBytes(16)) {
      if (b < 248 && out.length < 8) out += ALNUM[b % 62]
    }
  }
  return out
}

/**
 * options.history resolved: null (off) or a frozen object with every limit.
 * Any of maxEvents, maxBytes, maxAgeMs being 0 turns it off.
 */
function resolveHistory (value, name = 'options.history') {
  if (value === undefined || value === false) return null
  if (value !== true && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'true, false or an options object', name, value)
  }
  const given = value === true ? {} : value
  for (const key of Object.keys(given)) {
    if (!KEYS.has(key)) throw invalid('ERR_SSE_INVALID_ARGUMENT', `one of ${[...KEYS].join(', ')}`, `${name} key`, key)
  }
  const out = {}
  for (const [key, [min, max]] of Object.entries(LIMITS)) {
    const v = given[key] === undefined ? DEFAULTS[key] : given[key]
    if (!Number.isInteger(v) || v < min || v > max) throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between ${min} and ${max}`, `${name}.${key}`, v)
    out[key] = v
  }
  const resetEvent = given.resetEvent === undefined ? DEFAULTS.resetEvent : given.resetEvent
  if (typeof resetEvent !== 'string' || resetEvent === '' || LINE_BREAK_OR_NUL.test(resetEvent)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty event name without CR, LF or NUL', `${name}.resetEvent`, resetEvent)
  }
  out.resetEvent = resetEvent
  out.positionEvent = positionEventOf(given.positionEvent, `${name}.positionEvent`, resetEvent)
  const epoch = given.epoch === undefined ? makeEpoch() : given.epoch
  if (typeof epoch !== 'string' || !EPOCH.test(epoch)) throw invalid('ERR_SSE_INVALID_ARGUMENT', '1 to 32 characters of [A-Za-z0-9]', `${name}.epoch`, epoch)
  out.epoch = epoch
  if (out.maxEvents === 0 || out.maxBytes === 0 || out.maxAgeMs === 0) return null
  return Object.freeze(out)
}

/** history.positionEvent: '' (off: id-only position frames), or the event name. */
function positionEventOf (value, name, resetEvent) {
  if (value === undefined || value === false) return ''
  const event = value === true ? POSITION_EVENT : value
  if (typeof event !== 'string' || event === '' || Buffer.byteLength(event) > MAX_EVENT_NAME_BYTES ||
      LINE_BREAK_OR_NUL.test(event) || event === resetEvent) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `true, false or an event name (1 to ${MAX_EVENT_NAME_BYTES} bytes, no CR, LF or NUL, not the resetEvent)`, name, value)
  }
  return event
}

/**
 * The cursor a stream resumes from: `given` (accept's lastEventId), else the
 * Last-Event-ID header, else the query's lastEventId, last_event_id or
 * lastEventID (EventSource polyfills that cannot set headers use these).
 * undefined: no cursor.
 */
function cursorOf (req, given) {
  let cursor = given
  if (cursor === undefined) cursor = req.headers['last-event-id']
  if (cursor === undefined) {
    const url = typeof req.url === 'string' ? req.url : ''
    const q = url.indexOf('?')
    if (q >= 0 && url.includes('ast', q)) {
      const params = new URLSearchParams(url.slice(q + 1))
      for (const name of QUERY_NAMES) {
        cursor = params.get(name) ?? undefined
        if (cursor !== undefined) break
      }
    }
  }
  // EventSource sends no header while its last event id is empty.
  if (cursor === undefined || cursor === '') return undefined
  // An array (a header sent twice over HTTP/2) or an overlong value: a
  // cursor no history can place, answered with a reset ("unknown").
  if (typeof cursor !== 'string' || cursor.length > MAX_CURSOR_BYTES) return UNPLACEABLE
  return cursor
}

function checkLastEventId (value, name) {
  if (value === undefined) return undefined
  if (typeof value !== 'string') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a string', name, value)
  return value
}

module.exports = { DEFAULTS, resolveHistory, cursorOf, checkLastEventId, makeEpoch, MAX_CURSOR_BYTES }
