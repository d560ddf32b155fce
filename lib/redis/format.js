'use strict'
// The Redis bus's entry format v1 and its publish function (docs/redis.md):
// the key names of a hub, the FCALL arguments of a publish, the decoding of a
// stream entry, and the loader of lib/redis/function.lua. Plain functions
// over strings and Buffers: nothing here requires a Redis client, so this
// module loads without @redis/client (loadFunction takes a connected one).
//
//   const keys = keysFor('sse-fanout:{default}')
//   await loadFunction(client)
//   const [epoch, seq] = await client.sendCommand(fcallCommand(keys, { topic: 'a', data: 'x' }, { maxLen: 10000 }))
//   const entry = decodeEntry(message) // an XREAD/XRANGE entry's fields
//   if (entry instanceof RejectedEntry) skip(entry.reason)
const fs = require('node:fs')
const path = require('node:path')
const { invalid } = require('../errors')

const FORMAT_VERSION = '1'
const LIBRARY_NAME = 'ssefanout'
const FUNCTION_NAME = 'ssefanout_publish_v1'
const EPOCH_FUNCTION = 'ssefanout_epoch_v1'
const VERSION_FUNCTION = 'ssefanout_version'
const FUNCTION_SOURCE = fs.readFileSync(path.join(__dirname, 'function.lua'), 'utf8')
const DEFAULT_PREFIX = 'sse-fanout:{default}'

// The limits live in function.lua (the one writer); read from it once.
function luaConstant (name) {
  const m = new RegExp(`^local ${name} = (\\d+)$`, 'm').exec(FUNCTION_SOURCE)
  if (m === null) throw new Error(`lib/redis/function.lua defines no ${name}`)
  return Number(m[1])
}
const LIBRARY_VERSION = luaConstant('LIBRARY_VERSION')
const LIMITS = Object.freeze({
  topicBytes: luaConstant('MAX_TOPIC_BYTES'),
  eventBytes: luaConstant('MAX_EVENT_BYTES'),
  idBytes: luaConstant('MAX_ID_BYTES'),
  originBytes: luaConstant('MAX_ORIGIN_BYTES'),
  maxDataBytes: luaConstant('DEFAULT_MAX_DATA_BYTES'),
  maxDataCeiling: luaConstant('MAX_MAX_DATA_BYTES'),
  maxLen: luaConstant('MAX_MAXLEN')
})

const EPOCH = /^[A-Za-z0-9]{1,32}$/
const LINE_BREAK_OR_NUL = /[\r\n\0]/
const STREAM_ID = /^([1-9][0-9]{0,15})-0$/

/**
 * The keys of the hub named by prefix: { meta, stream }. Both keys must hash
 * to one Redis Cluster slot, so the prefix must hold a hash tag: a `{` with a
 * `}` after it and at least one byte between (Redis hashes the text between
 * the first `{` and the next `}`), e.g. `myapp:{orders}`.
 */
function keysFor (prefix = DEFAULT_PREFIX) {
  if (typeof prefix !== 'string' || prefix === '' || LINE_BREAK_OR_NUL.test(prefix)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty key prefix without CR, LF or NUL', 'prefix', prefix)
  }
  const open = prefix.indexOf('{')
  const close = open < 0 ? -1 : prefix.indexOf('}', open + 1)
  if (close <= open + 1) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a key prefix with a Redis Cluster hash tag such as "app:{hub}"', 'prefix', prefix)
  }
  return Object.freeze({ meta: `${prefix}:meta`, stream: `${prefix}:stream` })
}

/**
 * The function's arguments after its keys, for one event:
 * <maxlen> <topic|""> <data> [name value]... (event, id, users, origin, maxdata).
 * @param {{ topic?: string | null, data: string | Uint8Array, event?: string, id?: string, users?: string[], origin?: string }} event
 * @param {{ maxLen: number, maxData?: number }} options maxData: sent only when not the default
 * @returns {Array<string | Buffer>}
 */
function encodeArgs (event, { maxLen, maxData } = {}) {
  if (!Number.isInteger(maxLen) || maxLen < 1 || maxLen > LIMITS.maxLen) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer from 1 to ${LIMITS.maxLen}`, 'options.maxLen', maxLen)
  }
  if (maxData !== undefined && (!Number.isInteger(maxData) || maxData < 1 || maxData > LIMITS.maxDataCeiling)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer from 1 to ${LIMITS.maxDataCeiling}`, 'options.maxData', maxData)
  }
  const data = event.data
  const args = [String(maxLen), event.topic ?? '', typeof data === 'string' ? data : bufferOf(data)]
  if (event.event !== undefined) args.push('event', event.event)
  if (event.id !== undefined) args.push('id', event.id)
  if (event.users !== undefined) args.push('users', JSON.stringify(event.users))
  if (event.origin !== undefined) args.push('origin', event.origin)
  if (maxData !== undefined && maxData !== LIMITS.maxDataBytes) args.push('maxdata', String(maxData))
  return args
}

/** The whole command for client.sendCommand(): FCALL <name> 2 <meta> <stream> ...encodeArgs(). */
function fcallCommand (keys, event, options) {
  return ['FCALL', FUNCTION_NAME, '2', keys.meta, keys.stream, ...encodeArgs(event, options)]
}

/** FCALL ssefanout_epoch_v1: the hub's [epoch, seq], an epoch started at seq 0 when meta is missing. */
function epochCommand (keys) {
  return ['FCALL', EPOCH_FUNCTION, '2', keys.meta, keys.stream]
}

/** An error reply of the publish function itself: the event was refused (anything else is Redis's state: OOM, READONLY, a missing function). */
function refusedByFunction (message) {
  return typeof message === 'string' && message.startsWith(`ERR ${FUNCTION_NAME}:`)
}

/** An entry a reader skips, and why. `version` is its `v` field (undefined when absent). */
class RejectedEntry {
  constructor (reason, version) {
    this.reason = reason
    this.version = version
  }
}

/**
 * One stream entry's fields as an event, or a RejectedEntry.
 * fields: what @redis/client gives for an entry's message (an object or a
 * Map of field -> string | Buffer), or the flat [field, value, ...] array of
 * a raw reply. Values may be Buffers (a client with a Buffer type mapping
 * keeps data binary-safe); `data` comes back as given, every other field as
 * a string. Fields v1 does not name are ignored.
 * @returns {{ epoch: string, topic: string | null, data: string | Buffer, event?: string, id?: string, users?: string[], origin?: string } | RejectedEntry}
 */
function decodeEntry (fields, { maxData = LIMITS.maxDataBytes } = {}) {
  const f = fieldsOf(fields)
  if (f === null) return new RejectedEntry('not a list of fields', undefined)
  const v = text(f.v)
  if (v !== FORMAT_VERSION) {
    return new RejectedEntry(v === undefined ? 'no format version (field v)' : `format version ${JSON.stringify(v.slice(0, 16))} is not ${FORMAT_VERSION}`, v)
  }
  const epoch = text(f.e)
  if (epoch === undefined || !EPOCH.test(epoch)) return new RejectedEntry('e (epoch) is not 1 to 32 characters of [A-Za-z0-9]', v)
  const out = { epoch, topic: null, data: f.d }
  if (f.t !== undefined) {
    const topic = text(f.t)
    if (!isLine(topic, LIMITS.topicBytes)) return new RejectedEntry(`t (topic) is not 1 to ${LIMITS.topicBytes} bytes without CR, LF or NUL`, v)
    out.topic = topic
  }
  if (typeof out.data !== 'string' && !Buffer.isBuffer(out.data)) return new RejectedEntry('d (data) is missing', v)
  if ((typeof out.data === 'string' ? Buffer.byteLength(out.data) : out.data.length) > maxData) {
    return new RejectedEntry(`d (data) is larger than ${maxData} bytes`, v)
  }
  for (const [field, name, max] of [['n', 'event', LIMITS.eventBytes], ['i', 'id', LIMITS.idBytes], ['o', 'origin', LIMITS.originBytes]]) {
    if (f[field] === undefined) continue
    const value = text(f[field])
    if (!isLine(value, max)) return new RejectedEntry(`${field} (${name}) is not 1 to ${max} bytes without CR, LF or NUL`, v)
    out[name] = value
  }
  if (f.u !== undefined) {
    const users = usersOf(text(f.u))
    if (users === null) return new RejectedEntry('u (users) is not a JSON array of strings', v)
    out.users = users
  }
  return out
}

/** The seq of a stream entry id `<seq>-0`, or 0 when it is not one. */
function seqOf (streamId) {
  const m = STREAM_ID.exec(typeof streamId === 'string' ? streamId : String(streamId))
  if (m === null) return 0
  const seq = Number(m[1])
  return seq <= Number.MAX_SAFE_INTEGER ? seq : 0
}

/**
 * Makes sure Redis holds this library (or a newer one), with FUNCTION LOAD:
 * after a restart without persistence, or a FUNCTION FLUSH, it is gone.
 * Idempotent, and safe when several instances load at once; an older
 * instance never replaces a newer library (every version keeps the publish
 * functions of the older ones). client: a connected @redis/client client.
 * @returns {Promise<'loaded' | 'replaced' | 'present' | 'newer'>}
 */
async function loadFunction (client) {
  for (let attempt = 0; ; attempt++) {
    const loaded = await loadedVersion(client)
    if (loaded === LIBRARY_VERSION) return 'present'
    if (loaded > LIBRARY_VERSION) return 'newer'
    // A library of this name without a version function is not one this
    // code can reason about: replaced on the second pass.
    const replace = loaded !== undefined || attempt > 0
    try {
      await client.sendCommand(replace ? ['FUNCTION', 'LOAD', 'REPLACE', FUNCTION_SOURCE] : ['FUNCTION', 'LOAD', FUNCTION_SOURCE])
      return replace ? 'replaced' : 'loaded'
    } catch (err) {
      // Another instance loaded it between the two commands: look again.
      if (replace || !/already exists/i.test(err.message)) throw err
    }
  }
}

async function loadedVersion (client) {
  try {
    return Number(await client.sendCommand(['FCALL_RO', VERSION_FUNCTION, '0']))
  } catch (err) {
    if (/function not found/i.test(err.message)) return undefined
    throw err
  }
}

function fieldsOf (fields) {
  if (fields instanceof Map) fields = Object.fromEntries(fields)
  else if (Array.isArray(fields)) {
    if (fields.length % 2 !== 0) return null
    const out = {}
    for (let i = 0; i < fields.length; i += 2) out[String(fields[i])] = fields[i + 1]
    return out
  }
  return fields !== null && typeof fields === 'object' ? fields : null
}

function text (value) {
  if (typeof value === 'string') return value
  if (Buffer.isBuffer(value)) return value.toString('utf8')
  return undefined
}

function isLine (value, maxBytes) {
  return typeof value === 'string' && value !== '' && Buffer.byteLength(value) <= maxBytes && !LINE_BREAK_OR_NUL.test(value)
}

function usersOf (json) {
  if (json === undefined) return null
  let users
  try {
    users = JSON.parse(json)
  } catch {
    return null
  }
  return Array.isArray(users) && users.every((u) => typeof u === 'string') ? users : null
}

function bufferOf (data) {
  if (Buffer.isBuffer(data)) return data
  if (data instanceof Uint8Array) return Buffer.from(data.buffer, data.byteOffset, data.byteLength)
  throw invalid('ERR_SSE_INVALID_DATA', 'a string or a Uint8Array', 'event.data', data)
}

module.exports = {
  FORMAT_VERSION,
  LIBRARY_NAME,
  LIBRARY_VERSION,
  FUNCTION_NAME,
  EPOCH_FUNCTION,
  VERSION_FUNCTION,
  FUNCTION_SOURCE,
  DEFAULT_PREFIX,
  LIMITS,
  keysFor,
  encodeArgs,
  fcallCommand,
  epochCommand,
  refusedByFunction,
  decodeEntry,
  RejectedEntry,
  seqOf,
  loadFunction
}
