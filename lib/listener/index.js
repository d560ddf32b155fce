'use strict'
// The native listener (hub.listen(), docs/listener.md): the hub's I/O threads
// accept SSE requests on a port of their own, parse them natively and open
// the streams with no JS object per connection. This module is its JS side:
// options, the authorize hook, and the hub's bookkeeping of the streams it
// opens (through hubInternals: counts, 'connect' events).
const { EventEmitter } = require('node:events')
const native = require('../native')
const { SseError, invalid } = require('../errors')
const { resolveListenOptions } = require('./options')
const { checkTopics, checkUser } = require('../validate')

const STATUS = /^[45]\d\d$/
// The codes src/listener answers with itself (the JSON body's `error`), listed
// here so lib/errors.js and the ErrorCode type document them with the rest;
// besides these it answers the Dispatcher's (ERR_SSE_INVALID_TOPIC, ...).
const NATIVE_ANSWER_CODES = Object.freeze(['ERR_SSE_BAD_REQUEST', 'ERR_SSE_NOT_FOUND', 'ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP', 'ERR_SSE_UNAUTHORIZED', 'ERR_SSE_FORBIDDEN'])

class Listener extends EventEmitter {
  constructor (hub, internals, options) {
    super()
    const { native: nativeOptions, authorize, authorizeTimeoutMs } = resolveListenOptions(options, hub.options)
    this._authorizeTimeoutMs = authorizeTimeoutMs
    this._expiry = null
    this._internals = internals
    this._authorize = authorize ?? null
    this._host = nativeOptions.host
    this._port = 0
    this._closed = null
    this._resolveClosed = null
    try {
      this._native = new native.NativeListener(internals.native, nativeOptions, (kind, list, users) => this._onBatch(kind, list, users))
    } catch (err) {
      // The token's verifier refused a key (a message that never quotes one).
      if (err && err.code === 'ERR_SSE_INVALID_ARGUMENT') throw new SseError('ERR_SSE_INVALID_ARGUMENT', err.message)
      throw err
    }
    // grant/deny queue commands on the hub's threads (flushed natively too).
    this._calls = internals.callsOn(this._native)
  }

  _listen () {
    try {
      this._port = this._calls.result('listen')
      // A hook that never answers holds nothing for long: one timer for the
      // listener (not one per request) answers 503 past authorizeTimeoutMs.
      if (this._authorize !== null) {
        const every = Math.max(25, Math.min(1000, this._authorizeTimeoutMs / 4))
        this._expiry = setInterval(() => this._calls.result('expire', this._authorizeTimeoutMs), every)
        this._expiry.unref()
      }
    } catch (err) {
      const e = new SseError('ERR_SSE_LISTEN', `the native listener could not listen: ${err.message}`)
      e.errno = err.errno
      throw e
    }
  }

  /** The bound port. */
  get port () { return this._port }

  /** { address, port, family } as net.Server's address(). */
  address () {
    return { address: this._host, port: this._port, family: this._host.includes(':') ? 'IPv6' : 'IPv4' }
  }

  /** Counters: accepted, streams, refused, refusedPerIp, badRequests, headerTimeouts, preflights, tokenRefused, tokenCacheHits, pending, authorizing, authorizeTimeouts, addresses. */
  stats () { return this._native.stats() }

  /** Stops accepting (open streams stay with the hub); resolves once every thread's socket is closed. */
  close () {
    if (this._closed === null) {
      this._closed = new Promise((resolve) => { this._resolveClosed = resolve })
      this._native.close()
    }
    return this._closed
  }

  /** A listening native listener keeps the process alive; unref() lets it exit. */
  unref () { this._native.unref(); return this }
  ref () { this._native.ref(); return this }

  _onBatch (kind, list, users) {
    if (kind === 'opened') {
      // With a token, users[i] is the user of list[i] (undefined: anonymous).
      if (users === undefined) this._internals.listenerOpened(list, undefined)
      else for (let i = 0; i < list.length; i++) this._internals.listenerOpened([list[i]], users[i])
    } else if (kind === 'authorize') {
      for (let i = 0; i < list.length; i++) this._ask(list[i])
    } else if (kind === 'closed') {
      if (this._expiry !== null) clearInterval(this._expiry)
      this._internals.listenerClosed(this)
      if (this._resolveClosed === null) this._closed = Promise.resolve()
      else this._resolveClosed()
      this.emit('close')
    }
  }

  // The authorize hook: its answer (or promise of one) opens or refuses the
  // stream. A request is a plain object: { token, method, path, query,
  // httpVersion, headers, remoteAddress, remotePort }.
  _ask (request) {
    const token = request.token
    let answer
    try {
      answer = this._authorize(request)
    } catch (err) {
      this._refuseWithError(token, err)
      return
    }
    if (answer !== null && typeof answer === 'object' && typeof answer.then === 'function') {
      answer.then((a) => this._answer(token, a), (err) => this._refuseWithError(token, err))
    } else {
      this._answer(token, answer)
    }
  }

  _answer (token, answer) {
    try {
      this._answerOrThrow(token, answer)
    } catch (err) {
      // A getter of the answer that throws, say: the request still gets one.
      this._refuseWithError(token, err)
    }
  }

  _answerOrThrow (token, answer) {
    if (answer === null || typeof answer !== 'object' || answer === false) {
      this._calls.result('deny', token, 403, 'ERR_SSE_FORBIDDEN', 'the request was not authorized')
      return
    }
    if (answer.status !== undefined) {
      const status = STATUS.test(String(answer.status)) ? Number(answer.status) : 403
      const code = typeof answer.code === 'string' ? answer.code : status === 401 ? 'ERR_SSE_UNAUTHORIZED' : 'ERR_SSE_FORBIDDEN'
      const message = typeof answer.message === 'string' ? answer.message : 'the request was not authorized'
      this._calls.result('deny', token, status, code, message)
      return
    }
    let topics, user, lastEventId
    try {
      topics = answer.topics === undefined ? [] : checkTopics(answer.topics, 'authorize().topics')
      user = checkUser(answer.user, 'authorize().user')
      lastEventId = answer.lastEventId
      if (lastEventId !== undefined && typeof lastEventId !== 'string') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a string', 'authorize().lastEventId', lastEventId)
    } catch (err) {
      this._refuseWithError(token, err)
      return
    }
    const id = this._calls.result('grant', token, topics, user, lastEventId)
    if (id > 0) this._internals.listenerOpened([id], user)
  }

  // A hook that threw: 500, unless the error names its own HTTP status.
  _refuseWithError (token, err) {
    const status = err && STATUS.test(String(err.statusCode)) ? Number(err.statusCode) : 500
    const code = err && typeof err.code === 'string' && status < 500 ? err.code : 'ERR_SSE_AUTHORIZE'
    const message = status < 500 && err && typeof err.message === 'string' ? err.message : 'the authorize hook failed'
    this._calls.result('deny', token, status, code, message)
  }
}

/** hub.listen(options): resolves with the Listener once its sockets listen. */
async function listen (hub, internals, options) {
  internals.assertOpen()
  const listener = new Listener(hub, internals, options)
  listener._listen()
  internals.listenerStarted(listener)
  return listener
}

module.exports = { listen, Listener, NATIVE_ANSWER_CODES }
