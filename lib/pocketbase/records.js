'use strict'
// The PocketBase values the API takes from server code, checked once here:
// auth records (and the identity a client is bound to), collections with
// their rules, record events, and event payloads.
const { invalid } = require('../errors')
const { LINE_BREAK_OR_NUL } = require('../validate')

const ACTIONS = new Set(['create', 'update', 'delete'])
const SUPERUSERS = '_superusers'

function checkAuth (auth) {
  if (auth === null || auth === undefined) return null
  if (typeof auth !== 'object' || typeof auth.id !== 'string' || auth.id === '' ||
      typeof auth.collectionId !== 'string' || auth.collectionId === '') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'null or an auth record with string id and collectionId', 'the result of options.authenticate', auth)
  }
  return auth
}

function checkIdentityArgs (collectionId, id, prefix = '') {
  if (typeof collectionId !== 'string' || collectionId === '') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty string', `${prefix}collectionId`, collectionId)
  }
  if (typeof id !== 'string' || id === '') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty string', `${prefix}id`, id)
}

function checkRule (rule, name) {
  if (rule === null || rule === undefined) return null
  if (typeof rule !== 'string') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a filter string or null (superusers only)', name, rule)
  return rule
}

function checkCollection (collection) {
  if (collection === null || typeof collection !== 'object') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a collection object ({ name, id, listRule, viewRule })', 'collection', collection)
  }
  const { name, id } = collection
  if (typeof name !== 'string' || name === '' || LINE_BREAK_OR_NUL.test(name)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty single-line string', 'collection.name', name)
  }
  if (id !== undefined && (typeof id !== 'string' || LINE_BREAK_OR_NUL.test(id))) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a single-line string', 'collection.id', id)
  }
  return {
    name,
    id: id || '',
    listRule: checkRule(collection.listRule, 'collection.listRule'),
    viewRule: checkRule(collection.viewRule, 'collection.viewRule')
  }
}

/** The record of a record event, with collectionId and collectionName from `c` (a checked collection) unless it has them. */
function checkRecordEvent (c, action, record) {
  if (!ACTIONS.has(action)) throw invalid('ERR_SSE_INVALID_ARGUMENT', '"create", "update" or "delete"', 'action', action)
  if (record === null || typeof record !== 'object' || Array.isArray(record) || typeof record.id !== 'string') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a record object with a string id', 'record', record)
  }
  // "C/*" is the topic of every record of C: a record with id "*" would
  // reach those subscriptions as if they had asked for it by id, under the
  // view rule instead of the list rule.
  if (record.id === '*') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a record id other than "*"', 'record.id', record.id)
  if (record.collectionName === undefined || (record.collectionId === undefined && c.id !== '')) {
    record = { collectionId: c.id, collectionName: c.name, ...record }
  }
  return record
}

/** The event name of a custom message: options.event, else `fallback`. */
function checkEvent (options, fallback) {
  if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
  const event = options.event === undefined ? fallback : options.event
  if (typeof event !== 'string' || event === '' || LINE_BREAK_OR_NUL.test(event)) {
    throw invalid('ERR_SSE_INVALID_EVENT', 'a non-empty string without CR, LF or NUL', 'options.event', event)
  }
  return event
}

/** A custom message's data as the addon takes it: a string or bytes as they are, anything else as JSON. */
function payload (data) {
  if (typeof data === 'string' || data instanceof Uint8Array) return data
  const json = JSON.stringify(data)
  if (json === undefined) throw invalid('ERR_SSE_INVALID_DATA', 'a string, a Buffer or a JSON-serialisable value', 'data', data)
  return json
}

function isSuperuser (auth) { return auth !== null && auth.collectionName === SUPERUSERS }

/**
 * The name of an auth record's identity ('' for a guest): unambiguous for any
 * collectionId and id (`a/b` + `c` and `a` + `b/c` are two identities).
 */
function identityOf (auth) { return auth === null ? '' : JSON.stringify([auth.collectionId, auth.id]) }

module.exports = { checkAuth, checkIdentityArgs, checkCollection, checkRecordEvent, checkEvent, payload, isSuperuser, identityOf }
