'use strict'
// MercureHub: the Mercure protocol (draft-dunglas-mercure-07, as the
// reference hub v0.24.2 serves it) on a Hub, at one path:
//   GET      subscribe: `topic` selectors, Last-Event-ID resume, a stream
//   POST     publish: a form, answered with the update's id
//   OPTIONS  CORS preflight
// Authorization is auth.js's (it decides, this file answers); selectors,
// private updates and replay are the native index's (native-mercure.js);
// request bodies are form.js's, update rules update.js's, CORS cors.js's.
//
// Errors: an SseError for server code (publish(), the constructor); a plain
// text answer for a request (http.js), never an exception out of handle().
const { EventEmitter } = require('node:events')
const { SseError } = require('../errors')
const { emitAll } = require('../emit-all')
const { Hub } = require('../hub')
const { MAX_TOPIC_BYTES } = require('../validate')
const { createAuthContext, authorizePublish, authorizeSubscribe } = require('./auth')
const { readOptions } = require('./options')
const { corsHeaders, isPreflight, answerPreflight } = require('./cors')
const { HttpError, isForm, readBody, parseForm, formFromObject } = require('./form')
const { checkUpdate, updateFromForm, CONTROL } = require('./update')
const { sendText, sendId, sendNotAllowed, setStreamHeaders } = require('./http')
const { NativeMercure, selectorMatches } = require('./native-mercure')

// The routes (routes.js) serve a request they matched themselves.
const kServe = Symbol('serve')

// The spec's value for "no event before the first one sent".
const EARLIEST = 'earliest'
const MISSING_TOPIC_SUBSCRIBE = 'Missing "topic" parameter.'
const MISSING_TOPIC_PUBLISH = 'Missing "topic" parameter'
// Refusals of the hub (accept, publish) that say "not now": 503.
const UNAVAILABLE = new Set(['ERR_SSE_CLOSED', 'ERR_SSE_TOO_MANY_CONNECTIONS', 'ERR_SSE_QUEUE_FULL'])

/** The query string of a request URL ('' when none). */
function queryOf (url) {
  const q = typeof url === 'string' ? url.indexOf('?') : -1
  return q === -1 ? '' : url.slice(q + 1)
}

function pathOf (url) {
  const q = typeof url === 'string' ? url.indexOf('?') : -1
  return q === -1 ? url : url.slice(0, q)
}

/** The cursor a subscriber resumes from: the Last-Event-ID header, else the lastEventID query parameter. */
function lastEventIdOf (req, params) {
  const header = req.headers['last-event-id']
  if (typeof header === 'string' && header !== '') return header
  const query = params.get('lastEventID')
  return query === null || query === '' ? undefined : query
}

/** The subscriber's selectors: 1..max non-empty strings of at most MAX_TOPIC_BYTES, no control character; duplicates dropped. */
function selectorsOf (params, max) {
  const selectors = params.getAll('topic')
  if (selectors.length === 0) throw new HttpError(400, MISSING_TOPIC_SUBSCRIBE)
  if (selectors.length > max) throw new HttpError(400, `Too many "topic" parameters (at most ${max}).`)
  for (const selector of selectors) {
    if (selector === '' || Buffer.byteLength(selector) > MAX_TOPIC_BYTES || CONTROL.test(selector)) {
      throw new HttpError(400, `Invalid "topic" parameter: a selector is a non-empty string of at most ${MAX_TOPIC_BYTES} bytes without control characters.`)
    }
  }
  return [...new Set(selectors)]
}

/**
 * The token's `mercure.subscribe` selectors for the native index (null: no
 * private update). One that no topic can match (empty, or with a control
 * character: update.js refuses such topics) is left out, so a token carrying
 * one is not refused for it; duplicates are dropped.
 */
function claimSelectors (claims) {
  if (claims === null || claims.subscribe === undefined) return null
  return [...new Set(claims.subscribe.filter((s) => s !== '' && !CONTROL.test(s)))]
}

/** The HTTP answer of an error thrown while handling a request (undefined: not the request's fault). */
function answerOf (err) {
  if (err instanceof HttpError) return { status: err.status, reason: err.message, headers: err.headers }
  if (err instanceof SseError && err.statusCode !== undefined) return { status: err.statusCode, reason: err.message, headers: {} }
  if (err instanceof SseError && UNAVAILABLE.has(err.code)) return { status: 503, reason: err.message, headers: {} }
  return undefined
}

class MercureHub extends EventEmitter {
  /**
   * @param {object} [options] see docs/mercure.md, "Options"
   */
  constructor (options = {}) {
    super()
    const { options: checked, cors, hub, hubOptions } = readOptions(options)
    this.options = checked
    this._cors = cors
    // Keys and claims first: a misconfigured hub fails before it makes a Hub.
    this._auth = createAuthContext(options, { selectorMatches })
    this.hub = hub || new Hub(hubOptions)
    this._ownsHub = hub === undefined
    try {
      this._index = new NativeMercure(this.hub, this.options)
    } catch (err) {
      if (this._ownsHub) this.hub.close()
      throw err
    }
    this._history = this.hub.options.history !== null
    this._streams = new Set() // connection ids of this MercureHub's subscribers
    this._onDisconnect = ({ id }) => { this._streams.delete(id) }
    this.hub.on('disconnect', this._onDisconnect)
    this._closing = null
    this.handle = this.handle.bind(this)
  }

  /** Open subscription streams. */
  get size () { return this._streams.size }

  /**
   * node:http handler: true when the request is for the hub's path (it is
   * answered, now or later), false for any other path (untouched).
   * `body`: the request body when a framework already parsed it (Express).
   */
  handle (req, res, body) {
    if (pathOf(req.url) !== this.options.path) return false
    this[kServe](req, res, body)
    return true
  }

  // A request for the hub's path, by method.
  [kServe] (req, res, body) {
    const done = (promise) => promise.catch((err) => this._failed(res, err))
    if (req.method === 'GET') {
      done(this._subscribe(req, res))
    } else if (req.method === 'POST') {
      done(this._publish(req, res, body))
    } else if (isPreflight(req)) {
      answerPreflight(req, res, this._cors)
    } else if (req.method === 'OPTIONS') {
      corsHeaders(req, res, this._cors)
      res.setHeader('allow', 'GET, POST, OPTIONS')
      res.statusCode = 204
      res.end()
    } else {
      corsHeaders(req, res, this._cors)
      sendNotAllowed(res)
    }
  }

  // A request that failed: its answer, or 500 (and requestError) for a bug.
  _failed (res, err) {
    const answer = answerOf(err)
    if (answer !== undefined) {
      sendText(res, answer.status, answer.reason, answer.headers)
      return
    }
    sendText(res, 500, 'Internal Server Error')
    emitAll(this, 'requestError', [err])
  }

  // GET: authorization, selectors, cursor, then the stream bound to the
  // profile of (selectors, claims). The profile is released once the stream
  // holds its own reference (or accept() refused it).
  async _subscribe (req, res) {
    corsHeaders(req, res, this._cors)
    this._assertOpen()
    const auth = await authorizeSubscribe(req, this._auth)
    if (!auth.ok) throw new HttpError(auth.status, auth.reason, auth.headers)
    // The client may have gone, or the hub closed, while the token was checked.
    if (res.destroyed || req.socket?.destroyed) return
    this._assertOpen()
    const params = new URLSearchParams(queryOf(req.url))
    const selectors = selectorsOf(params, this.options.maxSelectorsPerSubscriber)
    const lastEventId = lastEventIdOf(req, params)
    const claims = claimSelectors(auth.claims)
    const acceptOptions = { lastEventId: lastEventId ?? '' }
    // The spec: the hub closes the connection when the token expires (with
    // the clock tolerance the token was accepted under: a token just past
    // `exp` would otherwise get a stream of 1 ms, and a reconnect loop).
    if (auth.claims !== null && typeof auth.claims.exp === 'number') {
      const expiresMs = (auth.claims.exp + this._auth.options.clockToleranceSec) * 1000
      acceptOptions.maxLifetimeMs = Math.max(1, Math.min(2 ** 31 - 1, Math.floor(expiresMs - Date.now())))
    }
    const profile = this._index.acquire(selectors, claims)
    try {
      setStreamHeaders(res, this._responseLastEventId(lastEventId, profile, acceptOptions))
      const conn = this._index.accept(req, res, acceptOptions, profile)
      this._streams.add(conn.id)
    } finally {
      this._index.release(profile)
    }
  }

  // The Last-Event-ID response header (the spec's "Reconciliation"): the id
  // of the update before the first one the stream gets. The cursor itself
  // when the stream resumes from it (a cursor naming a private update the
  // subscriber may not read counts as unknown: nothing is replayed);
  // `earliest` when it asked for everything; otherwise (no cursor, or one
  // the history does not place: nothing is replayed) the newest update
  // this subscriber may see, as the reference hub does, never one it may not
  // (the id would tell a private update exists); `earliest` when there is
  // none. Without history: `earliest` when the request asked to resume.
  // A replay past maxReplayEvents (or the stream's queue) keeps the newest
  // updates: the header then names the update before the first one sent, so
  // the client can tell it missed some, and the stream resumes from there.
  _responseLastEventId (lastEventId, profile, acceptOptions) {
    if (!this._history) return lastEventId === undefined ? undefined : EARLIEST
    if (lastEventId === EARLIEST || (lastEventId !== undefined && this._index.resumes(profile, lastEventId))) {
      const start = this._index.replayStart(profile, lastEventId)
      if (start === null) return lastEventId
      // Resumed from that update's id (every Mercure update has one; a
      // Mercure stream is placed by ids only, never by the hub's cursors).
      acceptOptions.lastEventId = start[0]
      return start[0]
    }
    return this._index.lastVisibleId(profile) ?? EARLIEST
  }

  // POST: the token (401 before the body is read), the body, the topics'
  // authorization (403), the update's checks, then one native publish.
  async _publish (req, res, parsed) {
    corsHeaders(req, res, this._cors)
    this._assertOpen()
    // Refused before its body is read: the connection closes after the
    // answer rather than reading a stranger's body to its end.
    const unread = parsed === undefined && !req.readableEnded ? { connection: 'close' } : {}
    const known = await authorizePublish(req, [], this._auth)
    if (!known.ok) throw new HttpError(known.status, known.reason, { ...known.headers, ...unread })
    if (!isForm(req)) throw new HttpError(400, 'Expected an application/x-www-form-urlencoded body', unread)
    const fields = parsed !== undefined ? formFromObject(parsed) : parseForm(await readBody(req, this.options.maxBodyBytes))
    const topics = fields.get('topic')
    if (topics === undefined) throw new HttpError(400, MISSING_TOPIC_PUBLISH)
    if (topics.length > this.options.maxTopicsPerUpdate) {
      throw new HttpError(400, `too many topics in update (at most ${this.options.maxTopicsPerUpdate}: maxTopicsPerUpdate)`)
    }
    const auth = await authorizePublish(req, topics, this._auth)
    if (!auth.ok) throw new HttpError(auth.status, auth.reason, auth.headers)
    const update = updateFromForm(fields, this.options.maxTopicsPerUpdate)
    this._assertOpen()
    sendId(res, this._publishChecked(update))
  }

  /**
   * Publishes an update from server code, with the checks of a POST (no
   * authorization: the app is the publisher). Returns its id: update.id, or
   * `urn:uuid:` and a random UUID.
   * @param {{ topic?: string, topics?: string[], data?: unknown, private?: boolean, id?: string, type?: string, retry?: number }} update
   */
  publish (update) {
    this._assertOpen()
    const checked = checkUpdate(update, this.options.maxTopicsPerUpdate)
    // A status for HTTP means nothing here: plain SseErrors from server code.
    try {
      return this._publishChecked(checked)
    } catch (err) {
      delete err.statusCode
      throw err
    }
  }

  _publishChecked ({ topics, data, isPrivate, id, type, retry }) {
    this._index.publish(topics, data, isPrivate, id, type, retry)
    return id
  }

  /** Counts of the native index: profiles, selectors, templates. */
  stats () { return this._index.stats() }

  /**
   * Ends every subscription stream; closes the hub when this MercureHub made
   * it. A shared hub stays open, but this MercureHub answers 503 and its
   * publish() throws ERR_SSE_CLOSED. Idempotent: the same promise each call.
   */
  close () {
    if (this._closing === null) this._closing = this._close()
    return this._closing
  }

  async _close () {
    this.hub.removeListener('disconnect', this._onDisconnect)
    const streams = [...this._streams]
    this._streams.clear()
    if (this._ownsHub) {
      await this.hub.close()
      return
    }
    for (const id of streams) {
      if (!this.hub.closed && this.hub.has(id)) this.hub.kick(id)
    }
  }

  get closed () { return this._closing !== null }

  _assertOpen () {
    if (this._closing !== null || this.hub.closed) throw new SseError('ERR_SSE_CLOSED', 'the Mercure hub is closed')
  }
}

module.exports = { MercureHub, EARLIEST, kServe }
