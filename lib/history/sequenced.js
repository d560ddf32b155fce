'use strict'
// Sequences from outside (docs/history.md, "Sequences from outside (the Redis
// bus)"): events whose epoch and sequence numbers another party assigned (a
// Redis Function shared by many hubs), published in one native call per
// batch, and rebases of the history to another epoch or position. Reached
// through hubInternals(hub).publishBatch / .rebase (lib/hub.js), never from
// the public API.
//
// Everything is validated here, with the wording of lib/errors.js, before the
// one native call (NativeHub.publishBatch / historyRebase, through the hub's
// NativeCalls): the native side only guards memory. A batch is all or
// nothing: a refusal (an invalid entry, ERR_SSE_QUEUE_FULL at the pending
// bound, ERR_SSE_DATA_TOO_LARGE) publishes none of it and changes nothing.
//
// JS thread only, like every call into the addon.
const native = require('../native')
const { SseError, invalid } = require('../errors')
const { checkTopic, LINE_BREAK_OR_NUL } = require('../validate')

/** Slots per event in a batch: [topic | null, data | null, event, id, users]. */
const BATCH_SLOTS = 5
/** The most events one batch may hold (Dispatcher::kMaxBatchEvents). */
const MAX_BATCH_EVENTS = native.maxBatchEvents
const EPOCH = /^[A-Za-z0-9]{1,32}$/

function checkHistory (history) {
  if (history === null) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT',
      'Expected a hub with history on (new Hub({ history: true })) for sequenced publishing but its history is off')
  }
}

function checkEpoch (epoch) {
  if (typeof epoch !== 'string' || !EPOCH.test(epoch)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', '1 to 32 characters of [A-Za-z0-9]', 'epoch', epoch)
  }
}

function checkSeq (seq, min, name) {
  if (!Number.isSafeInteger(seq) || seq < min) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between ${min} and ${Number.MAX_SAFE_INTEGER}`, name, seq)
  }
}

function checkLine (value, code, name) {
  if (value === undefined) return
  if (typeof value !== 'string') throw invalid(code, 'a string or undefined', name, value)
  if (LINE_BREAK_OR_NUL.test(value)) throw new SseError(code, `${name} must not contain CR, LF or NUL`)
}

/** The number of events in `entries`, every one checked; throws an SseError naming the slot. */
function checkBatch (firstSeq, entries) {
  if (!Array.isArray(entries) || entries.length % BATCH_SLOTS !== 0) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT',
      `an array of ${BATCH_SLOTS} slots per event ([topic | null, data | null, event, id, users], ...)`, 'entries', entries)
  }
  const n = entries.length / BATCH_SLOTS
  if (n > MAX_BATCH_EVENTS) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT',
      `Expected at most ${MAX_BATCH_EVENTS} events (${MAX_BATCH_EVENTS * BATCH_SLOTS} slots) for entries but received ${n}: split the batch`)
  }
  if (n > 0 && firstSeq > Number.MAX_SAFE_INTEGER - (n - 1)) { // (not firstSeq + n - 1: doubles round past 2^53)
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', `Expected sequences up to ${Number.MAX_SAFE_INTEGER} but the batch ends past it`)
  }
  for (let i = 0, at = 0; i < n; i++, at += BATCH_SLOTS) {
    const data = entries[at + 1]
    if (data === null) continue // a skipped sequence: the other slots are not read
    const topic = entries[at]
    if (topic !== null) checkTopic(topic, `entries[${at}] (the topic of event ${i})`)
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
      throw invalid('ERR_SSE_INVALID_DATA', 'a string, a Uint8Array or null (a skipped sequence)', `entries[${at + 1}] (the data of event ${i})`, data)
    }
    checkLine(entries[at + 2], 'ERR_SSE_INVALID_EVENT', `entries[${at + 2}] (the event name of event ${i})`)
    checkLine(entries[at + 3], 'ERR_SSE_INVALID_ID', `entries[${at + 3}] (the id of event ${i})`)
    const users = entries[at + 4]
    if (users !== undefined) {
      const name = `entries[${at + 4}] (the users of event ${i})`
      if (!Array.isArray(users)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an array of user strings or undefined', name, users)
      for (let k = 0; k < users.length; k++) {
        if (typeof users[k] !== 'string') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a string', `${name}[${k}]`, users[k])
      }
    }
  }
  return n
}

const BATCH_MESSAGES = {
  QUEUE_FULL: 'the I/O threads are behind: the batch does not fit maxPendingCommands or maxPendingBytes; nothing was published',
  DATA_TOO_LARGE: 'an event of the batch encodes to more than maxQueueBytes, so no client could receive it; nothing was published',
  CLOSED: 'the hub is closed'
}

/** A native status of publishBatch / historyRebase as an SseError (NativeCalls' `refuse`). */
function refuseSequenced (status) {
  const name = native.statusNames[status] || 'UNKNOWN'
  return new SseError(`ERR_SSE_${name}`, BATCH_MESSAGES[name] || `the sequenced call was refused (${name}); nothing was changed`)
}

/**
 * Publishes entries (BATCH_SLOTS per event) with sequences firstSeq, firstSeq + 1, ...
 * of `epoch`, rebasing first when epoch or firstSeq does not follow the
 * history; returns the number of events published.
 * @param {import('../native-calls').NativeCalls} calls the hub's calls on its NativeHub
 * @param {object | null} history the hub's resolved history options
 */
function publishBatch (calls, history, epoch, firstSeq, entries) {
  checkHistory(history)
  checkEpoch(epoch)
  checkSeq(firstSeq, 1, 'firstSeq')
  const n = checkBatch(firstSeq, entries)
  if (n === 0) return 0
  calls.status('publishBatch', refuseSequenced, undefined, epoch, firstSeq, entries)
  return n
}

/**
 * Starts the history over at `seq` of `epoch`: every connected history stream
 * gets a reset, unless reset is false (nothing was missed: the Redis bus's
 * outage transitions), when they only see ids of the new epoch from then on.
 */
function rebase (calls, history, epoch, seq, reset = true) {
  checkHistory(history)
  checkEpoch(epoch)
  checkSeq(seq, 0, 'seq')
  if (typeof reset !== 'boolean') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', 'options.reset', reset)
  calls.status('historyRebase', refuseSequenced, undefined, epoch, seq, reset)
}

module.exports = { publishBatch, rebase, BATCH_SLOTS, MAX_BATCH_EVENTS }
