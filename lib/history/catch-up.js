'use strict'
// Catch-up for polling clients and proxies that buffer streams (README,
// "Catch-up"): hub.catchUp() answers the events after a cursor from the hub's
// native history, waiting for one (a long-poll) when none matches yet;
// hub.poll(), reply.ssePoll() (fastify.js) and poll() (express.js) answer
// `GET ...?since=<cursor>&wait=<seconds>` with it. Stateless: the client's
// cursor is all there is, nothing is kept between two requests.
//
// Reads: native.historyRead(since, topics, user, maxEvents) (read-only) gives
// { reset, requested, oldest, latest, cursor, frames }, frames a flat
// [frame, topicOrNull, ...] of the shared encoded frames, filtered by topics
// and user as a stream's would be; they are decoded here as an EventSource
// would deliver them ({ id, event, data, topic }).
//
// Waiting: a waiter is indexed under each of its exact topics and pattern
// prefixes ("chat/*" under "chat/"), so notify(topic) after a publish finds
// the waiters it may concern with one lookup per '/' in the topic, whatever
// their number; a broadcast (notify(null)) concerns them all. Wake-ups are
// coalesced: the notified waiters are re-read once per event-loop turn
// (setImmediate), however many events came; one whose re-read finds nothing
// it may see (another user's private event) keeps waiting from the new
// cursor. A waiter ends with what there is on a match, at waitMs, when its
// signal aborts, or when the hub closes (close()).
//
// The floor: a waiter's cursor is where its last read ended, and events that
// do not concern it do not wake it; enough of them would push that cursor out
// of the history, and its next read would say `expired` though it missed
// nothing. So the first notify of a turn notes the position just before the
// event that caused it: every event up to there was notified in an earlier
// turn and every waiter it concerned was re-read then. A waiter read in this
// turn starts at the later of its cursor and that floor. Likewise a waiter
// that ends un-notified (timeout, abort, close) has seen everything: it is
// answered with the latest position, without reading the events in between.
//
// JS thread only, like every call into the addon.
const zlib = require('node:zlib')
const vary = require('vary')
const { SseError, invalid } = require('../errors')
const { negotiate } = require('../compression')
const { checkTopics, checkUser } = require('../validate')
const { MAX_CURSOR_BYTES } = require('./index')

const MAX_TIMER_MS = 2 ** 31 - 1
const CATCH_UP_OPTIONS = ['topics', 'user', 'since', 'waitMs', 'signal']
const POLL_OPTIONS = ['topics', 'user']
const NO_TOPICS = Object.freeze([])
// A cursor no history can place (as lib/history/index.js gives a stream for
// an overlong Last-Event-ID): read as `unknown`, without handing the native
// side a client's megabyte.
const UNPLACEABLE = '-'
// HTTP status of the SseErrors a poll can end with that are not the client's
// fault; any other SseError is a 400.
const STATUS = { ERR_SSE_CLOSED: 503, ERR_SSE_TOO_MANY_CONNECTIONS: 503 }

function withStatus (err, statusCode) {
  if (err.statusCode === undefined) err.statusCode = statusCode
  return err
}

function checkKeys (options, allowed, name) {
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new SseError('ERR_SSE_INVALID_ARGUMENT', `Expected one of ${allowed.join(', ')} in ${name} but received "${key}"`)
    }
  }
}

function checkOptionsObject (options, name) {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', name, options)
  }
  return options
}

/** A cursor as the history reads it: a non-empty string, or undefined for "from the latest position". */
function checkSince (since, name) {
  if (since === undefined || since === null || since === '') return undefined
  if (typeof since !== 'string') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a cursor (an event id string)', name, since)
  return since.length > MAX_CURSOR_BYTES ? UNPLACEABLE : since
}

function checkSignal (signal, name) {
  if (signal === undefined) return undefined
  if (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean' ||
      typeof signal.addEventListener !== 'function' || typeof signal.removeEventListener !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an AbortSignal', name, signal)
  }
  return signal
}

/** The sequence number of a cursor "<epoch>-<seq>" as the hub writes them, or -1. */
function seqOf (cursor) {
  const dash = cursor.lastIndexOf('-')
  if (dash < 0) return -1
  const seq = Number(cursor.slice(dash + 1))
  return Number.isSafeInteger(seq) && seq >= 0 ? seq : -1
}

/** The epoch of a cursor "<epoch>-<seq>" (what precedes its last '-'). */
function epochOf (cursor) {
  return cursor.slice(0, cursor.lastIndexOf('-'))
}

/**
 * One frame of our own encoder (sse_encoder.hpp: "name: value" fields, LF
 * line ends, data split into one line per line, a blank line at the end) as
 * an EventSource delivers it.
 */
function decodeFrame (frame, topic) {
  const text = Buffer.isBuffer(frame)
    ? frame.toString('utf8')
    : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength).toString('utf8')
  let id = ''
  let event = ''
  const data = []
  for (let start = 0; start < text.length;) {
    let end = text.indexOf('\n', start)
    if (end === -1) end = text.length
    if (end === start) break // the blank line that ends the frame
    const colon = text.indexOf(':', start)
    if (colon !== start) { // a line starting with ':' is a comment
      const nameEnd = colon === -1 || colon > end ? end : colon
      let valueStart = nameEnd === end ? end : nameEnd + 1
      if (text.charCodeAt(valueStart) === 0x20 && valueStart < end) valueStart++
      const value = text.slice(valueStart, end)
      switch (text.slice(start, nameEnd)) {
        case 'data': data.push(value); break
        case 'event': event = value; break
        case 'id': id = value; break
      }
    }
    start = end + 1
  }
  return { id, event: event === '' ? 'message' : event, data: data.join('\n'), topic: topic ?? null }
}

// Events of a read that were published with compress: false (historyRead's
// `stored`): a compressed answer sends them stored. Kept beside the events
// rather than on them, so catchUp()'s results stay plain { id, event, data, topic }.
const STORED = new WeakSet()

/** The flat [frame, topicOrNull, ...] of historyRead as events; `stored` marks events by index. */
function decodeFrames (frames, stored) {
  const events = new Array(frames.length >> 1)
  for (let i = 0, k = 0; i < frames.length; i += 2, k++) events[k] = decodeFrame(frames[i], frames[i + 1])
  if (stored) for (const k of stored) STORED.add(events[k])
  return events
}

/** What catchUp resolves with: null for "nothing new" (no events, the cursor did not move). */
function settle (result, since) {
  return result.reset === undefined && result.events.length === 0 && result.cursor === since ? null : result
}

/** The history's catch-up on one hub: reads, long-poll waiters, and the node:http handler. */
class CatchUp {
  /**
   * @param {import('../hub').Hub} hub its options are read (options.history: the resolved history options, or null)
   * @param {{ native: object, assertOpen: () => void }} internals hubInternals(hub)
   */
  constructor (hub, internals) {
    this._history = hub.options.history || null
    this._compression = hub.options.compression || null
    this._native = internals.native
    this._assertOpen = internals.assertOpen
    this._waiters = new Set()
    this._exact = new Map() // topic -> Set of waiters
    this._prefix = new Map() // "chat/" (of "chat/*") -> Set of waiters
    this._woken = new Set() // notified this turn, re-read at its end
    this._floor = null // cursor just before the first event notified this turn (see the top)
    this._closed = false
    this._polls = 0
    this._pass = () => this._wakeUp()
  }

  /** Long-polls waiting now. */
  get waiting () { return this._waiters.size }

  /** catchUp() calls answered or waiting (valid ones; a long-poll counts once). */
  get polls () { return this._polls }

  /**
   * The events after `since` that a stream with these topics and user would
   * get; waits up to waitMs (capped at maxPollWaitMs) for one when none
   * matches now. Resolves with { events, cursor, reset? }, or null when there
   * is nothing new and the cursor equals `since`.
   * @returns {Promise<object | null>}
   */
  catchUp (options) {
    let o, first
    try {
      o = this._check(options)
      this._polls++
      first = this._read(o.since, o.topics, o.user)
    } catch (err) {
      return Promise.reject(err)
    }
    if (first.reset !== undefined || first.events.length > 0 || o.waitMs === 0 || o.signal?.aborted) {
      return Promise.resolve(settle(first, o.since))
    }
    const limit = this._history.maxPollWaiters
    if (this._waiters.size >= limit) {
      return Promise.reject(withStatus(new SseError('ERR_SSE_TOO_MANY_CONNECTIONS',
        `the hub already holds maxPollWaiters (${limit}) long-polls waiting; retry later or without wait`), 503))
    }
    return new Promise((resolve, reject) => this._wait(o, first.cursor, resolve, reject))
  }

  _check (options) {
    const o = checkOptionsObject(options, 'options')
    checkKeys(o, CATCH_UP_OPTIONS, 'options')
    const topics = o.topics === undefined ? NO_TOPICS : checkTopics(o.topics, 'options.topics')
    const user = checkUser(o.user, 'options.user')
    const since = checkSince(o.since, 'options.since')
    let waitMs = 0
    if (o.waitMs !== undefined) {
      if (!Number.isInteger(o.waitMs) || o.waitMs < 0 || o.waitMs > MAX_TIMER_MS) {
        throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between 0 and ${MAX_TIMER_MS} (milliseconds)`, 'options.waitMs', o.waitMs)
      }
      waitMs = o.waitMs
    }
    const signal = checkSignal(o.signal, 'options.signal')
    if (this._history === null) {
      throw withStatus(new SseError('ERR_SSE_INVALID_ARGUMENT',
        'Expected a hub with history on for catchUp() (new Hub({ history: true })) but its history is off'), 500)
    }
    try {
      this._assertOpen()
    } catch (err) {
      throw withStatus(err, 503)
    }
    if (this._closed) throw withStatus(new SseError('ERR_SSE_CLOSED', 'the hub is closed'), 503)
    return { topics, user, since, waitMs: Math.min(waitMs, this._history.maxPollWaitMs), signal }
  }

  _read (since, topics, user) {
    const r = this._native.historyRead(since, topics, user, this._history.maxPollEvents)
    const result = { events: decodeFrames(r.frames, r.stored), cursor: r.cursor }
    if (r.reset !== undefined && r.reset !== null) {
      result.reset = { reason: r.reset, requested: r.requested ?? null, oldest: r.oldest ?? null, latest: r.latest ?? r.cursor }
    }
    return result
  }

  // Where a waiter's topic is indexed: a pattern ("chat/*") under its
  // prefix with the slash ("chat/") among the prefixes, else as it is.
  _indexOf (topic) {
    return topic.length >= 2 && topic.endsWith('/*') ? [this._prefix, topic.slice(0, -1)] : [this._exact, topic]
  }

  /** The latest position, read without events. */
  _latest () {
    return this._native.historyRead(undefined, NO_TOPICS, undefined, 0).cursor
  }

  _wait (o, cursor, resolve, reject) {
    const w = { topics: o.topics, user: o.user, since: o.since, cursor, resolve, reject, timer: null, signal: o.signal, onAbort: null }
    this._waiters.add(w)
    for (const topic of o.topics) {
      const [map, key] = this._indexOf(topic)
      let set = map.get(key)
      if (set === undefined) map.set(key, (set = new Set()))
      set.add(w)
    }
    w.timer = setTimeout(() => this._settle(w), o.waitMs)
    if (w.signal !== undefined) {
      w.onAbort = () => this._settle(w)
      w.signal.addEventListener('abort', w.onAbort, { once: true })
    }
  }

  /**
   * After a publish (its topic) or a broadcast (null) with history on:
   * schedules the re-read of the waiters it may concern. O(1) with none.
   */
  notify (topic) {
    if (this._waiters.size === 0) return
    if (typeof topic !== 'string') {
      for (const w of this._waiters) this._mark(w)
      return
    }
    const exact = this._exact.get(topic)
    if (exact !== undefined) for (const w of exact) this._mark(w)
    if (this._prefix.size === 0) return
    // "chat/*" matches "chat/42" and "chat/a/b", not "chat/" itself.
    for (let i = topic.indexOf('/'); i !== -1 && i + 1 < topic.length; i = topic.indexOf('/', i + 1)) {
      const set = this._prefix.get(topic.slice(0, i + 1))
      if (set !== undefined) for (const w of set) this._mark(w)
    }
  }

  _mark (w) {
    if (this._woken.size === 0) {
      // The first of this turn: the event just published is the latest.
      const latest = this._latest()
      const seq = seqOf(latest)
      this._floor = seq > 0 ? `${latest.slice(0, latest.lastIndexOf('-'))}-${seq - 1}` : null
      setImmediate(this._pass)
    }
    this._woken.add(w)
  }

  /**
   * Where a notified waiter reads from: the later of its cursor and the
   * floor, when both are of one epoch (after a rebase, hubInternals(hub).rebase,
   * a cursor of the old epoch must be read as it is: it gets its reset).
   */
  _from (w) {
    const f = this._floor
    return f !== null && seqOf(w.cursor) < seqOf(f) && epochOf(w.cursor) === epochOf(f) ? f : w.cursor
  }

  // Once per turn with notified waiters: each is re-read, and answered if it
  // has something; a waiter ended meanwhile (timeout, abort) is gone from
  // _woken already.
  _wakeUp () {
    const woken = this._woken
    if (woken.size === 0) return
    for (const w of woken) {
      let r
      try {
        r = this._read(this._from(w), w.topics, w.user)
      } catch (err) {
        this._end(w)
        w.reject(err)
        continue
      }
      if (r.reset !== undefined || r.events.length > 0) {
        this._end(w)
        w.resolve(settle(r, w.since))
      } else {
        w.cursor = r.cursor
      }
    }
    woken.clear()
    this._floor = null
  }

  // The end of a wait with nothing read yet (waitMs, abort, close): what
  // there is now, without reading past events that concern no one here
  // (`latest`: the latest position when the caller has it already).
  _settle (w, latest) {
    if (!this._waiters.has(w)) return
    let r
    try {
      r = this._woken.has(w) ? this._read(this._from(w), w.topics, w.user) : { events: [], cursor: latest ?? this._latest() }
    } catch {
      // The native hub is gone (closed): what the waiter knew.
      r = { events: [], cursor: w.cursor }
    }
    this._end(w)
    w.resolve(settle(r, w.since))
  }

  _end (w) {
    this._waiters.delete(w)
    this._woken.delete(w)
    for (const topic of w.topics) {
      const [map, key] = this._indexOf(topic)
      const set = map.get(key)
      if (set !== undefined && set.delete(w) && set.size === 0) map.delete(key)
    }
    clearTimeout(w.timer)
    if (w.onAbort !== null) w.signal.removeEventListener('abort', w.onAbort)
  }

  /**
   * Answers every waiter with what there is (the hub is closing: call before
   * the native hub closes, so the last events are still read). Idempotent.
   */
  close () {
    this._closed = true
    if (this._waiters.size === 0) return
    let latest
    try {
      latest = this._latest()
    } catch {} // the native hub is gone: each waiter gets what it knew
    for (const w of this._waiters) this._settle(w, latest)
  }

  /**
   * The node:http handler: `since` and `wait` (seconds) from the query, topics
   * and user from the app. Answers 200 (JSON), 204, 400, 503 or 500, and
   * resolves once it has (never rejects).
   */
  poll (req, res, options) {
    checkReqRes(req, res)
    return pollRequest((o) => this.catchUp(o), req, res, options).then(
      (result) => writeResult(res, result, this._compression, req),
      (err) => writeError(res, err))
  }
}

function checkReqRes (req, res) {
  if (req === null || typeof req !== 'object' || typeof req.url !== 'string') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an http.IncomingMessage', 'req', req)
  }
  if (res === null || typeof res !== 'object' || typeof res.writeHead !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an http.ServerResponse', 'res', res)
  }
}

/** One query parameter given at most once; a repeated one is refused (ambiguous). */
function single (params, name) {
  const values = params.getAll(name)
  if (values.length > 1) {
    throw withStatus(new SseError('ERR_SSE_INVALID_ARGUMENT',
      `Expected at most one ${name} parameter in the query but received ${values.length}`), 400)
  }
  return values[0]
}

/**
 * `since` and `wait` from the request's query: since as given ('' = none),
 * wait in whole seconds (digits only; at most 9). Throws an SseError with
 * statusCode 400.
 */
function pollQuery (req) {
  const url = req.url
  const q = url.indexOf('?')
  const params = new URLSearchParams(q === -1 ? '' : url.slice(q + 1))
  const since = single(params, 'since')
  const wait = single(params, 'wait')
  let waitMs = 0
  if (wait !== undefined) {
    if (!/^[0-9]{1,9}$/.test(wait)) {
      throw withStatus(invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-negative integer (seconds)', 'the query parameter wait', wait), 400)
    }
    waitMs = Math.min(Number(wait) * 1000, MAX_TIMER_MS)
  }
  return { since: since === '' ? undefined : since, waitMs }
}

/**
 * The catch-up of one poll request: reads the query, ends the wait when the
 * client goes away, and calls catchUp (hub.catchUp or CatchUp#catchUp) with
 * the app's topics and user. Rejects with an SseError with a statusCode.
 * @param {(options: object) => Promise<object | null>} catchUp
 */
function pollRequest (catchUp, req, res, options) {
  let o
  let query
  try {
    o = checkOptionsObject(options, 'options')
    checkKeys(o, POLL_OPTIONS, 'options')
    query = pollQuery(req)
  } catch (err) {
    return Promise.reject(withStatus(err, 400))
  }
  // Either 'close' before the answer means the client went away (the
  // listeners go before the answer is written). Not res.writableFinished: an
  // HTTP/2 response cut by the client says true.
  const controller = new AbortController()
  const abort = () => controller.abort()
  if (res.destroyed || req.socket?.destroyed) controller.abort()
  res.once('close', abort)
  req.once('close', abort)
  const done = () => {
    res.removeListener('close', abort)
    req.removeListener('close', abort)
  }
  return catchUp({ topics: o.topics, user: o.user, since: query.since, waitMs: query.waitMs, signal: controller.signal })
    .then((result) => { done(); return result }, (err) => {
      done()
      if (err instanceof SseError) withStatus(err, STATUS[err.code] || 400)
      throw err
    })
}

const JSON_HEADERS = Object.freeze({ 'content-type': 'application/json', 'cache-control': 'no-store' })

function gone (res) {
  return res.headersSent || res.destroyed || res.writableEnded
}

function writeJson (res, statusCode, value, body = JSON.stringify(value)) {
  if (gone(res)) return // the client went away
  res.writeHead(statusCode, { ...JSON_HEADERS, 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

// A catch-up answer on a hub with compression (docs/compression.md): JSON,
// not the stream's frames, so it is compressed per answer, on zlib's thread
// pool (never on the JS thread), when the client takes gzip and it is at
// least minBytes; Accept-Encoding joins the app's Vary. As on the stream, no
// compressor window spans two events: each event's JSON is written between
// two full flushes (Z_FULL_FLUSH: no back-reference crosses one), and an
// event published with compress: false at level 0 (stored). The raw DEFLATE
// goes in a gzip member of our own (header, CRC-32 of what was written,
// length): Node's gzip stream ignores a change of level. At most
// MAX_COMPRESSING answers are compressed at once (each holds a zlib stream,
// ~80 KiB): past it, answers go identity, as they do where zlib.crc32 is
// missing (Node < 20.15). The decoded body is exactly JSON.stringify(value).
const MAX_COMPRESSING = 64
const GZIP_HEADER = Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff])
const ANSWER_CODINGS = ['gzip']
let compressing = 0

function writeCompressedJson (res, value, compression, req) {
  if (gone(res)) return
  vary(res, 'Accept-Encoding')
  const body = JSON.stringify(value)
  const coding = res.hasHeader('content-encoding') ? null : negotiate(req.headers['accept-encoding'], ANSWER_CODINGS)
  if (coding === null || Buffer.byteLength(body) < compression.minBytes || compressing >= MAX_COMPRESSING ||
      typeof zlib.crc32 !== 'function' || Object.keys(value)[0] !== 'events') {
    writeJson(res, 200, value, body)
    return
  }
  compressing++
  gzipAnswer(value, compression.level).then((out) => {
    if (gone(res)) return
    res.writeHead(200, { ...JSON_HEADERS, 'content-encoding': coding, 'content-length': out.length })
    res.end(out)
  }, (err) => writeError(res, err)).finally(() => { compressing-- })
}

// value is { events, ...rest } with events first: written as
// '{"events":[' e1 ',' e2 ... '],' + rest's own members, which is what
// JSON.stringify(value) gives.
async function gzipAnswer (value, level) {
  const { Z_FULL_FLUSH, Z_DEFAULT_STRATEGY } = zlib.constants
  const z = zlib.createDeflateRaw({ level })
  const chunks = []
  z.on('data', (chunk) => chunks.push(chunk))
  const ended = new Promise((resolve, reject) => {
    z.once('end', resolve)
    z.once('error', reject)
  })
  let crc = 0
  let size = 0
  const write = (text) => {
    const bytes = Buffer.from(text)
    crc = zlib.crc32(bytes, crc)
    size += bytes.length
    z.write(bytes)
  }
  const flush = () => new Promise((resolve) => z.flush(Z_FULL_FLUSH, resolve))
  const params = (l) => new Promise((resolve, reject) => z.params(l, Z_DEFAULT_STRATEGY, (err) => err ? reject(err) : resolve()))
  const { events, ...rest } = value
  let current = level
  write('{"events":[')
  for (let i = 0; i < events.length; i++) {
    if (i > 0) write(',')
    await flush()
    const want = STORED.has(events[i]) ? 0 : level
    if (want !== current) {
      await params(want)
      current = want
    }
    write(JSON.stringify(events[i]))
    await flush()
  }
  const tail = JSON.stringify(rest)
  write(tail === '{}' ? ']}' : '],' + tail.slice(1))
  z.end()
  await ended
  const trailer = Buffer.alloc(8)
  trailer.writeUInt32LE(crc >>> 0, 0)
  trailer.writeUInt32LE(size >>> 0, 4)
  return Buffer.concat([GZIP_HEADER, ...chunks, trailer])
}

/**
 * 200 with the result as JSON, or 204 for null. Headers the app set before
 * are kept. With the hub's compression settings and the request, the JSON is
 * compressed as the request's Accept-Encoding allows.
 */
function writeResult (res, result, compression = null, req = null) {
  if (result !== null && compression !== null && req !== null) {
    writeCompressedJson(res, result, compression, req)
  } else if (result !== null) {
    writeJson(res, 200, result)
  } else if (!res.headersSent && !res.destroyed && !res.writableEnded) {
    res.writeHead(204, { 'cache-control': 'no-store' })
    res.end()
  }
}

/** An error as JSON { error, message }: an SseError's code and status; anything else a 500. */
function writeError (res, err) {
  if (err instanceof SseError) {
    writeJson(res, err.statusCode || STATUS[err.code] || 400, { error: err.code, message: err.message })
  } else {
    writeJson(res, 500, { error: 'Internal Server Error', message: 'the catch-up failed' })
  }
}

module.exports = { CatchUp, pollRequest, pollQuery, writeResult, writeError, decodeFrame, POLL_OPTIONS }
