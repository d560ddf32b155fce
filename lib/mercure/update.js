'use strict'
// What makes a Mercure update valid, in one place for the POST and for
// mercure.publish() from JS: topics, id, type, retry, data, private. The rules
// are the reference hub's (publish.go, Update.Validate) plus the spec's and
// the hub's bounds:
//  - 1..maxTopicsPerUpdate topics, each a non-empty string of at most
//    MAX_TOPIC_BYTES without control characters; none in the hub's reserved
//    `/.well-known/mercure` namespace (Go: 403, subscription events are forged
//    so);
//  - id: at most 256 bytes, no control character, not starting with `#`
//    (the spec keeps `#...` ids for the hub); none or empty: `urn:uuid:` and a
//    random UUID, as Go;
//  - type: one line (Go refuses CR, LF, NUL);
//  - retry: an integer >= 0; 0 (and an empty form value) is none, as Go
//    writes no `retry:` line for 0.
// A refusal is an SseError with the HTTP status the POST answers.
const crypto = require('node:crypto')
const { SseError, invalid } = require('../errors')
const { MAX_TOPIC_BYTES } = require('../validate')

const MAX_ID_BYTES = 256
const RESERVED_TOPIC = '/.well-known/mercure'
// C0 controls and DEL: nothing a topic or an id (an IRI) may hold.
const CONTROL = /[\u0000-\u001f\u007f]/ // eslint-disable-line no-control-regex
const LINE_BREAK_OR_NUL = /[\r\n\0]/
const DIGITS = /^[0-9]+$/

function refused (code, message, statusCode = 400) {
  const err = new SseError(code, message)
  err.statusCode = statusCode
  return err
}

function tooLong (text, max) {
  return text.length > max || (text.length * 3 > max && Buffer.byteLength(text) > max)
}

/** The topics of an update: 1..max valid topic strings, duplicates dropped. */
function checkTopics (topics, max, name) {
  if (!Array.isArray(topics) || topics.length === 0) throw invalid('ERR_SSE_INVALID_TOPIC', 'a topic or a non-empty array of topics', name, topics)
  if (topics.length > max) {
    throw refused('ERR_SSE_INVALID_ARGUMENT', `Expected at most ${max} topics (maxTopicsPerUpdate) for ${name} but received ${topics.length}`)
  }
  for (let i = 0; i < topics.length; i++) {
    const topic = topics[i]
    if (typeof topic !== 'string' || topic === '' || tooLong(topic, MAX_TOPIC_BYTES) || CONTROL.test(topic)) {
      throw refused('ERR_SSE_INVALID_TOPIC', invalid('ERR_SSE_INVALID_TOPIC',
        `a non-empty topic of at most ${MAX_TOPIC_BYTES} bytes without control characters`, `${name}[${i}]`, topic).message)
    }
    if (topic.includes(RESERVED_TOPIC)) {
      throw refused('ERR_SSE_INVALID_TOPIC', `${name}[${i}] is in the hub's reserved "${RESERVED_TOPIC}" namespace`, 403)
    }
  }
  return topics.length === 1 ? topics : [...new Set(topics)]
}

function checkId (id, name) {
  if (id === undefined || id === '') return `urn:uuid:${crypto.randomUUID()}`
  if (typeof id !== 'string' || tooLong(id, MAX_ID_BYTES) || CONTROL.test(id) || id[0] === '#') {
    throw refused('ERR_SSE_INVALID_ID', invalid('ERR_SSE_INVALID_ID',
      `an id of at most ${MAX_ID_BYTES} bytes, without control characters, not starting with "#"`, name, id).message)
  }
  return id
}

function checkType (type, name) {
  if (type === undefined || type === '') return undefined
  if (typeof type !== 'string' || LINE_BREAK_OR_NUL.test(type)) {
    throw refused('ERR_SSE_INVALID_EVENT', invalid('ERR_SSE_INVALID_EVENT', 'an event type without CR, LF or NUL', name, type).message)
  }
  return type
}

function checkRetry (retry, name) {
  if (retry === undefined || retry === 0) return undefined
  if (!Number.isSafeInteger(retry) || retry < 0) {
    throw refused('ERR_SSE_INVALID_RETRY', invalid('ERR_SSE_INVALID_RETRY', 'a non-negative integer (milliseconds)', name, retry).message)
  }
  return retry
}

function checkData (data, name) {
  if (data === undefined) return ''
  if (typeof data === 'string') return data
  let json
  try {
    json = JSON.stringify(data)
  } catch (err) {
    throw new SseError('ERR_SSE_INVALID_DATA', `Expected a string or a JSON-serialisable value for ${name} but JSON.stringify failed: ${err.message}`)
  }
  if (json === undefined) throw invalid('ERR_SSE_INVALID_DATA', 'a string or a JSON-serialisable value', name, data)
  return json
}

/**
 * An update from JS: { topics | topic, data, private, id, type, retry } ->
 * { topics, data, isPrivate, id, type, retry }, every field checked.
 */
function checkUpdate (update, maxTopics) {
  if (update === null || typeof update !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an update object', 'update', update)
  const { topic, topics } = update
  if ((topic === undefined) === (topics === undefined)) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'Expected exactly one of update.topic and update.topics')
  }
  if (update.private !== undefined && typeof update.private !== 'boolean') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', 'update.private', update.private)
  }
  return {
    topics: topics === undefined ? checkTopics([topic], 1, 'update.topic') : checkTopics(topics, maxTopics, 'update.topics'),
    data: checkData(update.data, 'update.data'),
    isPrivate: update.private === true,
    id: checkId(update.id, 'update.id'),
    type: checkType(update.type, 'update.type'),
    retry: checkRetry(update.retry, 'update.retry')
  }
}

/**
 * An update from a publish form (parseForm's Map; the topics already counted
 * and authorized): the first value of each single field, as Go's
 * PostForm.Get; `private` present (any value, even empty) is private.
 */
function updateFromForm (fields, maxTopics) {
  const first = (name) => { const values = fields.get(name); return values === undefined ? undefined : values[0] }
  const retry = first('retry')
  if (retry !== undefined && retry !== '' && (!DIGITS.test(retry) || !Number.isSafeInteger(Number(retry)))) {
    throw refused('ERR_SSE_INVALID_RETRY', 'Invalid "retry" parameter: expected a non-negative integer (milliseconds)')
  }
  return {
    topics: checkTopics(fields.get('topic'), maxTopics, 'topic'),
    data: first('data') ?? '',
    isPrivate: fields.has('private'),
    id: checkId(first('id'), 'id'),
    type: checkType(first('type'), 'type'),
    retry: retry === undefined || retry === '' ? undefined : checkRetry(Number(retry), 'retry')
  }
}

module.exports = { checkUpdate, updateFromForm, checkTopics, MAX_ID_BYTES, RESERVED_TOPIC, CONTROL }
