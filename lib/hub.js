'use strict'
// Hub: the public face of the native fan-out (see README.md, "API").
//
// Validation happens here, once, with precise messages; the native hub trusts
// what it gets and answers with status codes that become SseErrors. The JS
// thread never waits on the fan-out: publish() encodes once, queues a frame
// reference per I/O thread and returns. Every mutating native call goes
// through a NativeCalls (native-calls.js), which also schedules the flush.
//
// The internal API for protocols on a hub (PocketBase now; history, Redis,
// Mercure later): hubInternals(hub), exported here and not from index.js,
// gives a frozen object with exactly what a protocol needs and nothing of the
// Hub's private fields:
//  - native: the NativeHub handle, for the protocol's own native object
//    (e.g. `new native.NativeRealtime(internals.native, budgets)`) and its
//    read-only calls;
//  - callsOn(target): a NativeCalls (status / id / result) on `target` (the
//    handle itself, or the protocol's native object on it) whose calls
//    schedule this hub's flush: the only way to make a mutating native call;
//  - assertOpen(): throws ERR_SSE_CLOSED once the hub is closed (or closing);
//  - publishBatch(epoch, firstSeq, entries) -> number and rebase(epoch, seq,
//    { reset = true }):
//    sequences from outside (the Redis bus; lib/history/sequenced.js), and
//    position() -> { epoch, seq } | null: where the history is (null: off).
// A protocol keeps its own state in its own objects; for anything else it
// uses the Hub's public API (accept, has, kick, the 'disconnect' event, ...).
const { EventEmitter } = require('node:events')
const os = require('node:os')
const native = require('./native')
const { SseError, invalid } = require('./errors')
const { takeoverFd, buildHead, writeJsHead } = require('./takeover')
const { CODINGS, resolveCompression, checkCompress, negotiate } = require('./compression')
const { emitAll } = require('./emit-all')
const { FlushScheduler, NativeCalls } = require('./native-calls')

const REASONS = native.disconnectReasons // index -> name, from the addon
const REASON = Object.fromEntries(REASONS.map((name, i) => [name, i]))
const { checkTopic, checkTopics, checkUser, checkRetry, pickRetry, MAX_TOPIC_BYTES } = require('./validate')
const { resolveHistory, cursorOf, checkLastEventId } = require('./history')
const { CatchUp } = require('./history/catch-up')
const sequenced = require('./history/sequenced')
const { listen } = require('./listener')
const KIND_DISCONNECT = 0
const KIND_DELIVER = 1
const KIND_STOPPED = 2
const KIND_DELIVER_CONTROL = 3 // a heartbeat: no stream id in front
const MAX_STREAM_ID_BYTES = 256

/** Default I/O threads: leave one core to the JS thread; at most 4. */
function defaultThreads () {
  return Math.max(1, Math.min(4, os.availableParallelism() - 1))
}

const DEFAULTS = Object.freeze({
  threads: defaultThreads(),
  heartbeatMs: 15000,
  maxQueueBytes: 1024 * 1024,
  maxSubscriptions: 1000,
  maxConnections: 100000,
  maxConnectionsPerIp: 256,
  sndbufBytes: 128 * 1024,
  closeTimeoutMs: 5000,
  keepAliveMs: 30000,
  tcpUserTimeoutMs: 60000,
  maxPendingCommands: 100000,
  maxPendingBytes: 64 * 1024 * 1024,
  transport: 'auto',
  history: false,
  compression: false
})

// The kernel's longest keepalive idle time (Linux MAX_TCP_KEEPIDLE, 32767 s):
// past it TCP_KEEPIDLE fails with EINVAL and the socket keeps the default.
const MAX_KEEPALIVE_MS = 32767 * 1000

function intOption (options, name, min, max) {
  const value = options[name] === undefined ? DEFAULTS[name] : options[name]
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between ${min} and ${max}`, `options.${name}`, value)
  }
  return value
}

function checkUsers (users, name) {
  if (users === undefined) return undefined
  if (!Array.isArray(users)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an array of user strings', name, users)
  for (let i = 0; i < users.length; i++) {
    if (typeof users[i] !== 'string') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a string', `${name}[${i}]`, users[i])
  }
  return users
}

/** Data as the addon takes it: a string or a Uint8Array. */
function toPayload (data, name) {
  if (typeof data === 'string' || data instanceof Uint8Array) return data
  if (data === undefined) throw invalid('ERR_SSE_INVALID_DATA', 'a string, a Buffer or a JSON-serialisable value', name, data)
  let json
  try {
    json = JSON.stringify(data)
  } catch (err) {
    throw new SseError('ERR_SSE_INVALID_DATA', `Expected a JSON-serialisable value for ${name} but JSON.stringify failed: ${err.message}`)
  }
  if (json === undefined) throw invalid('ERR_SSE_INVALID_DATA', 'a string, a Buffer or a JSON-serialisable value', name, data)
  return json
}

function checkTimeout (value, name) {
  if (value === undefined) return 0
  if (!Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between 0 and ${2 ** 31 - 1} (milliseconds)`, name, value)
  }
  return value
}

function checkStreamId (value, name) {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value.length === 0 || Buffer.byteLength(value) > MAX_STREAM_ID_BYTES || /[\r\n\0]/.test(value)) {
    throw invalid('ERR_SSE_INVALID_ID', `a non-empty string of at most ${MAX_STREAM_ID_BYTES} bytes without CR, LF or NUL`, name, value)
  }
  return value
}

/** "id:<streamId>\n", with the space a parser drops when the id begins with one (as the native side writes it). */
function streamIdLine (streamId) {
  return streamId[0] === ' ' ? `id: ${streamId}\n` : `id:${streamId}\n`
}

function checkEventOptions (options, name) {
  if (options === undefined) return EMPTY
  if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', name, options)
  const { event, id, compress } = options
  if (event !== undefined && typeof event !== 'string') throw invalid('ERR_SSE_INVALID_EVENT', 'a string', `${name}.event`, event)
  if (id !== undefined && typeof id !== 'string') throw invalid('ERR_SSE_INVALID_ID', 'a string', `${name}.id`, id)
  if (compress !== undefined && typeof compress !== 'boolean') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', `${name}.compress`, compress)
  return options
}
const EMPTY = Object.freeze({})

// compress: false keeps a secret out of compression on this instance; the
// Redis bus's entries (format v1) do not carry the flag, so the other
// instances would compress it: refused rather than lost on the way.
function checkBusCompress (o) {
  if (o.compress === false) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'options.compress: false is not carried by the Redis bus (entry format v1): the other instances would compress the event. Publish it on a hub without compression, or keep the secret in an event of its own')
  }
}

/** options.bus: null, or a RedisBus (sse-fanout/redis) not attached yet; needs history on. */
function checkBus (bus, history) {
  if (bus === undefined || bus === null) return null
  if (typeof bus !== 'object' || typeof bus._attach !== 'function' || typeof bus._checkAttachable !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a RedisBus (new RedisBus() from sse-fanout/redis)', 'options.bus', bus)
  }
  if (history === null) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT',
      'Expected history on (options.history) with options.bus: every instance keeps the stream\'s events in its history')
  }
  bus._checkAttachable()
  return bus
}

function checkId (id, name = 'connectionId') {
  if (!Number.isSafeInteger(id) || id < 1) throw invalid('ERR_SSE_UNKNOWN_CONNECTION', 'a connection id (a positive integer)', name, id)
  return id
}

/** The SseError of a native status, naming the argument. */
function statusError (status, context) {
  const name = native.statusNames[status] || 'UNKNOWN'
  const code = `ERR_SSE_${name}`
  const messages = {
    INVALID_EVENT: `${context.event || 'options.event'} must not contain CR, LF or NUL`,
    INVALID_ID: `${context.id || 'options.id'} must not contain CR, LF or NUL`,
    INVALID_TOPIC: `${context.topic || 'topic'} must be a non-empty string of at most ${MAX_TOPIC_BYTES} bytes without CR, LF or NUL`,
    DATA_TOO_LARGE: `${context.data || 'data'} encodes to more than maxQueueBytes, so no client could receive it`,
    TOO_MANY_SUBSCRIPTIONS: context.connection === undefined
      ? `${context.topic || 'topics'} holds more topics than maxSubscriptions allows`
      : `connection ${context.connection} would pass maxSubscriptions; nothing was subscribed`,
    UNKNOWN_CONNECTION: `connection ${context.connection} is unknown to this hub or has ended`,
    TOO_MANY_CONNECTIONS: 'the hub already holds maxConnections connections',
    CLOSED: 'the hub is closed',
    QUEUE_FULL: 'the I/O threads are behind: maxPendingCommands or maxPendingBytes reached; nothing was queued'
  }
  return new SseError(code, messages[name] || `native call failed with status ${name}`)
}

// How each kind of call reports a refusal (NativeCalls' `refuse`): the
// context is built only when a call fails.
const refuseAccept = (status) => statusError(status, { topic: 'options.topics' })
const refuseEvent = (status) => statusError(status, {})
const refuseConnection = (status, connectionId) => statusError(status, { connection: connectionId })
const refuseSubscriptions = (status, connectionId) => statusError(status, { connection: connectionId, topic: 'topics' })

// hub -> its frozen internal API (see the top of the file).
const internals = new WeakMap()

/** The internal API of a Hub for the protocols built on it (see the top of the file). */
function hubInternals (hub) {
  const api = internals.get(hub)
  if (api === undefined) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Hub', 'hub', hub)
  return api
}

// Hubs whose streams have not all ended, ended by one 'exit' listener (see
// _closeSync).
const openHubs = new Set()
let exitHooked = false
function closeOpenHubs () {
  for (const hub of openHubs) hub._closeSync()
}

class Hub extends EventEmitter {
  /**
   * @param {object} [options] see README.md, "Options"
   */
  constructor (options = {}) {
    super()
    if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
    const transport = options.transport === undefined ? 'auto' : options.transport
    if (transport !== 'auto' && transport !== 'js') throw invalid('ERR_SSE_INVALID_ARGUMENT', '"auto" or "js"', 'options.transport', transport)
    this.options = Object.freeze({
      threads: intOption(options, 'threads', 1, 64),
      heartbeatMs: intOption(options, 'heartbeatMs', 0, 2 ** 31 - 1),
      maxQueueBytes: intOption(options, 'maxQueueBytes', 1024, 2 ** 40),
      maxSubscriptions: intOption(options, 'maxSubscriptions', 1, 1e6),
      maxConnections: intOption(options, 'maxConnections', 1, 1 << 21),
      maxConnectionsPerIp: intOption(options, 'maxConnectionsPerIp', 0, 1 << 21),
      sndbufBytes: intOption(options, 'sndbufBytes', 0, 2 ** 31 - 1),
      closeTimeoutMs: intOption(options, 'closeTimeoutMs', 0, 2 ** 31 - 1),
      keepAliveMs: intOption(options, 'keepAliveMs', 0, MAX_KEEPALIVE_MS),
      tcpUserTimeoutMs: intOption(options, 'tcpUserTimeoutMs', 0, 2 ** 31 - 1),
      maxPendingCommands: intOption(options, 'maxPendingCommands', 0, 2 ** 40),
      maxPendingBytes: intOption(options, 'maxPendingBytes', 0, 2 ** 50),
      transport,
      history: resolveHistory(options.history),
      compression: resolveCompression(options.compression)
    })
    const bus = checkBus(options.bus, this.options.history)
    this._native = new native.NativeHub(this.options, (reports) => this._onReports(reports))
    // With history on, every successful publish()/broadcast() took the next
    // sequence number natively: this mirrors it for the ids they return. A
    // sequenced batch or a rebase (the Redis bus) sets both to the epoch and
    // sequence it gave the history (_publishBatch, _rebase).
    this._seq = 0
    this._idPrefix = this.options.history === null ? '' : `${this.options.history.epoch}-`
    // Commands wait in native per-thread batches until the end of the current
    // JS job: one lock and one wake-up per batch, not per call.
    const flush = new FlushScheduler(this._native)
    this._calls = new NativeCalls(this._native, flush)
    internals.set(this, Object.freeze({
      native: this._native,
      callsOn: (target) => new NativeCalls(target, flush),
      assertOpen: () => this._assertOpen(),
      publishBatch: (epoch, firstSeq, entries) => this._publishBatch(epoch, firstSeq, entries),
      rebase: (epoch, seq, options) => this._rebase(epoch, seq, options),
      deliverLocal: (topic, payload, o, users) => this._deliver(topic, payload, o, users),
      position: () => this._idPrefix === '' ? null : { epoch: this._idPrefix.slice(0, -1), seq: this._seq },
      // A protocol's stream (Mercure): accept() with the native adopt/attach
      // of `calls` (a NativeCalls over the protocol's object), which take
      // `extra` after the stream options.
      accept: (req, res, options, calls, extra) => this._accept(req, res, options, calls, extra),
      // The native listener (lib/listener): streams it opened, natively.
      listenerOpened: (ids, user) => this._listenerOpened(ids, user),
      listenerStarted: (listener) => this._listeners.add(listener),
      listenerClosed: (listener) => this._listeners.delete(listener),
      // A protocol's event took a history sequence (Mercure's publish).
      advanceSeq: () => {
        if (this._idPrefix !== '') this._seq++
      }
    }))
    this._catchUp = new CatchUp(this, internals.get(this))
    // options.bus (sse-fanout/redis): publish()/broadcast() go through Redis
    // while it is up (null returned: the id comes back with the event); else
    // they are delivered here and queued in the bus's outbox. The bus reads
    // the stream back into this hub through publishBatch/rebase above.
    this._bus = bus
    if (bus !== null) bus._attach(this, internals.get(this))
    openHubs.add(this)
    if (!exitHooked) {
      exitHooked = true
      process.on('exit', closeOpenHubs)
    }
    this._js = new Map() // id -> { res, ending } for JS-transport connections
    this._perIp = new Map() // ip -> open connections (maxConnectionsPerIp only)
    this._ipOf = new Map() // id -> ip (maxConnectionsPerIp only)
    this._connections = 0
    this._stoppedShards = 0
    this._closing = null // the close() promise
    this._resolveClose = null
    this._ending = new Set() // JS-transport responses still finishing during close()
    this._abandoned = new Set() // ids accept() took back before announcing them
    this._outOfFds = 0
    this._listeners = new Set() // native listeners (hub.listen) not yet closed
  }

  /** True once close() was called. */
  get closed () { return this._closing !== null }

  /**
   * Turns an HTTP request into an SSE stream owned by the hub.
   * @returns {{ id: number, transport: 'native' | 'js', user: string | undefined }}
   */
  accept (req, res, options = {}) {
    return this._accept(req, res, options, this._calls, undefined)
  }

  _accept (req, res, options, calls, extra) {
    this._assertOpen()
    if (!req || typeof req !== 'object' || !req.headers) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an http.IncomingMessage', 'req', req)
    if (!res || typeof res !== 'object' || typeof res.writeHead !== 'function') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an http.ServerResponse', 'res', res)
    if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
    if (res.writableEnded || res.destroyed) throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'Expected an open response for res but it has already ended')
    if (req.method === 'HEAD') throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'Expected a GET request for req but received HEAD: a HEAD response has no body to stream')
    const topics = options.topics === undefined ? [] : checkTopics(options.topics, 'options.topics')
    const user = checkUser(options.user, 'options.user')
    const retry = checkRetry(options.retry, 'options.retry')
    const idleMs = checkTimeout(options.idleTimeoutMs, 'options.idleTimeoutMs')
    const lifetimeMs = checkTimeout(options.maxLifetimeMs, 'options.maxLifetimeMs')
    const streamId = checkStreamId(options.streamId, 'options.streamId')
    const lastEventId = checkLastEventId(options.lastEventId, 'options.lastEventId')
    if (options.history !== undefined && typeof options.history !== 'boolean') {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', 'options.history', options.history)
    }
    const compress = checkCompress(options.compress, 'options.compress') ?? this.options.compression !== null
    const ip = this._admitIp(req, options.ip)
    const stream = { topics, user, retryMs: retry === -1 ? -1 : pickRetry(retry), streamId, idleMs, lifetimeMs, history: true, lastEventId: undefined, coding: 0 }
    if (this.options.history !== null && options.history !== false) stream.lastEventId = cursorOf(req, lastEventId)
    else stream.history = false

    const fd = this.options.transport === 'auto' ? takeoverFd(req, res) : -1
    if (fd >= 0) {
      const chunked = req.httpVersionMinor >= 1
      // A compressed stream when the hub (or this accept) wants one, the
      // client accepts one, and the app set no Content-Encoding of its own.
      // Vary tells caches the answer depends on Accept-Encoding.
      const offered = compress && !res.hasHeader('content-encoding')
      const coding = offered ? negotiate(req.headers['accept-encoding']) : null
      if (coding !== null) stream.coding = CODINGS[coding]
      const head = buildHead(res, chunked, coding, offered)
      const id = extra === undefined
        ? calls.id('adopt', refuseAccept, undefined, fd, head, chunked, stream)
        : calls.id('adopt', refuseAccept, undefined, fd, head, chunked, stream, extra)
      if (id === 0) {
        // The fd could not be duplicated: the process is out of descriptors.
        // Refused rather than served from JS: that fallback would hide the
        // exhaustion and put every later stream on the slower transport.
        this._outOfFds++
        const err = new SseError('ERR_SSE_TOO_MANY_CONNECTIONS', 'the process has no file descriptor left to take the stream over (EMFILE); raise its limit (ulimit -n) or lower maxConnections')
        err.statusCode = 503
        throw err
      }
      // Node closes the socket below, then calls its request aborted unless
      // the request was read to its end: a GET's (empty) body is consumed
      // now, so its 'end' comes first.
      if (!req.readableEnded) req.resume()
      // The addon owns the connection now; Node's socket only closes its fd.
      req.socket.destroy()
      return this._connected(id, 'native', user, ip)
    }

    const id = extra === undefined
      ? calls.id('attach', refuseAccept, undefined, stream)
      : calls.id('attach', refuseAccept, undefined, stream, extra)
    try {
      writeJsHead(req, res)
    } catch (err) {
      // Nothing was announced yet: take the connection back, silently.
      this._abandoned.add(id)
      this._calls.result('detach', id, REASON.error)
      throw err
    }
    this._keepAlive(req)
    const entry = { res, ending: false, prefix: streamId === undefined ? null : Buffer.from(streamIdLine(streamId)) }
    this._js.set(id, entry)
    res.on('close', () => {
      if (!entry.ending && this._js.get(id) === entry) {
        entry.ending = true
        this._calls.result('detach', id, REASON.client)
      }
    })
    return this._connected(id, 'js', user, ip)
  }

  // keepAliveMs on a stream Node keeps writing (TLS, HTTP/2, transport 'js'):
  // Node's setKeepAlive sets SO_KEEPALIVE and the idle time (whole seconds, at
  // least 1 as on taken-over sockets); the probe interval and count stay the
  // kernel's, and Node has no way to set TCP_USER_TIMEOUT. For TLS and HTTP/2
  // the TCP socket is the one under the session: TLSSocket and the HTTP/2
  // request's socket proxy hand setKeepAlive down to it.
  _keepAlive (req) {
    const ms = this.options.keepAliveMs
    if (ms === 0) return
    const socket = req.socket
    if (typeof socket?.setKeepAlive !== 'function') return
    try {
      socket.setKeepAlive(true, Math.max(1, Math.ceil(ms / 1000)) * 1000)
    } catch {
      // A socket that is not TCP (a pipe, a test double): nothing to set.
    }
  }

  // The client's address when maxConnectionsPerIp applies; throws (with
  // statusCode 429 for the framework integrations) past the limit.
  _admitIp (req, given) {
    const limit = this.options.maxConnectionsPerIp
    if (limit === 0) return undefined
    if (given !== undefined && (typeof given !== 'string' || given === '')) {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty string', 'options.ip', given)
    }
    const ip = given ?? (req.socket?.remoteAddress || '')
    if ((this._perIp.get(ip) || 0) >= limit) {
      const err = new SseError('ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP', `the hub already holds maxConnectionsPerIp (${limit}) connections from ${ip}`)
      err.statusCode = 429
      throw err
    }
    return ip
  }

  /**
   * Serves SSE on a port of its own, natively (docs/listener.md): the I/O
   * threads accept, parse and open streams with no JS object per connection.
   * @returns {Promise<import('./listener').Listener>}
   */
  listen (options) {
    return listen(this, internals.get(this), options)
  }

  // Streams the native listener opened: counted like accept()'s, and a
  // 'connect' event each only when someone listens for them.
  _listenerOpened (ids, user) {
    if (this._connections === 0 && ids.length > 0) this._native.ref()
    this._connections += ids.length
    if (this.listenerCount('connect') === 0) return
    const conns = []
    for (let i = 0; i < ids.length; i++) conns.push(Object.freeze({ id: ids[i], transport: 'native', user }))
    this._emitAll('connect', conns)
  }

  _connected (id, transport, user, ip) {
    if (ip !== undefined) {
      this._perIp.set(ip, (this._perIp.get(ip) || 0) + 1)
      this._ipOf.set(id, ip)
    }
    if (this._connections++ === 0) this._native.ref()
    const conn = Object.freeze({ id, transport, user })
    // The connection is registered: a throwing listener must not make
    // accept() throw (the caller would answer a stream the hub now owns).
    this._emitAll('connect', [conn])
    return conn
  }

  // Emits name once per argument in args, every listener isolated (emit-all.js).
  _emitAll (name, args) {
    emitAll(this, name, args)
  }

  /** Adds subscriptions; all or nothing (see maxSubscriptions). */
  subscribe (connectionId, topics) {
    this._changeSubscriptions('subscribe', connectionId, topics)
  }

  unsubscribe (connectionId, topics) {
    this._changeSubscriptions('unsubscribe', connectionId, topics)
  }

  _changeSubscriptions (method, connectionId, topics) {
    this._assertOpen()
    checkId(connectionId)
    const list = checkTopics(topics, 'topics')
    this._calls.status(method, refuseSubscriptions, connectionId, connectionId, list)
  }

  /** The connection's current subscriptions (sorted), or undefined for an unknown id. */
  subscriptions (connectionId) {
    return this._native.subscriptions(connectionId)
  }

  /** True while connectionId names an open connection of this hub. */
  has (connectionId) {
    return this._native.has(connectionId)
  }

  /**
   * Sends an event to every connection subscribed to a matching topic.
   * @param {string} topic
   * @param {string | Uint8Array | unknown} data
   * @param {{ event?: string, id?: string, users?: string[] }} [options]
   * @returns {string | undefined | null} the event's wire id (with history on, always);
   *   null when a bus sent it to Redis (the id comes back with the event)
   */
  publish (topic, data, options) {
    this._assertOpen()
    checkTopic(topic, 'topic')
    const payload = toPayload(data, 'data')
    const o = checkEventOptions(options, 'options')
    const users = checkUsers(o.users, 'options.users')
    const bus = this._bus
    if (bus !== null) {
      bus._check(payload, o)
      checkBusCompress(o)
      if (bus._send(topic, payload, o, users)) return null
    }
    const id = this._deliver(topic, payload, o, users)
    if (bus !== null) bus._queueDelivered(topic, payload, o, users)
    return id
  }

  // publish() (topic null: broadcast()) to this hub's connections; the id.
  // hubInternals(hub).deliverLocal: the bus delivers here what Redis did not take.
  _deliver (topic, payload, o, users) {
    if (topic === null) this._calls.status('broadcast', refuseEvent, undefined, payload, o.event, o.id, users, o.compress)
    else this._calls.status('publish', refuseEvent, undefined, topic, payload, o.event, o.id, users, o.compress)
    const id = this._published(o.id)
    this._catchUp.notify(topic)
    return id
  }

  /** Sends an event to every connection (optionally only those of `users`). */
  broadcast (data, options) {
    this._assertOpen()
    const payload = toPayload(data, 'data')
    const o = checkEventOptions(options, 'options')
    const users = checkUsers(o.users, 'options.users')
    const bus = this._bus
    if (bus !== null) {
      bus._check(payload, o)
      checkBusCompress(o)
      if (bus._send(null, payload, o, users)) return null
    }
    const id = this._deliver(null, payload, o, users)
    if (bus !== null) bus._queueDelivered(null, payload, o, users)
    return id
  }

  // The wire id of the event just published: the publisher's, else with
  // history on "<epoch>-<seq>" (the sequence it took natively).
  _published (id) {
    if (this._idPrefix === '') return id
    const seq = ++this._seq // taken by this event whatever its wire id
    return id ?? this._idPrefix + seq
  }

  // hubInternals(hub).publishBatch: the history's epoch and latest sequence
  // are the batch's from here on; waiting long-polls are told of each event.
  _publishBatch (epoch, firstSeq, entries) {
    this._assertOpen()
    const n = sequenced.publishBatch(this._calls, this.options.history, epoch, firstSeq, entries)
    if (n === 0) return 0
    this._idPrefix = `${epoch}-`
    this._seq = firstSeq + n - 1
    for (let at = 0; at < entries.length; at += sequenced.BATCH_SLOTS) {
      if (entries[at + 1] !== null) this._catchUp.notify(entries[at])
    }
    return n
  }

  // hubInternals(hub).rebase: every waiting long-poll is re-read (it gets a
  // reset, or with { reset: false } the events of the new epoch).
  _rebase (epoch, seq, { reset = true } = {}) {
    this._assertOpen()
    sequenced.rebase(this._calls, this.options.history, epoch, seq, reset)
    this._idPrefix = `${epoch}-`
    this._seq = seq
    this._catchUp.notify(null)
  }

  /** Sends an event to one connection. */
  send (connectionId, data, options) {
    this._assertOpen()
    checkId(connectionId)
    const payload = toPayload(data, 'data')
    const o = checkEventOptions(options, 'options')
    this._calls.status('send', refuseConnection, connectionId, connectionId, payload, o.event, o.id, undefined, o.compress)
  }

  /** Ends one connection's stream (after what is queued for it); reason "kicked". */
  kick (connectionId) {
    this._assertOpen()
    checkId(connectionId)
    this._calls.status('kick', refuseConnection, connectionId, connectionId)
  }

  stats () {
    const s = this._native.stats()
    s.js = this._js.size
    s.native = s.connections - s.js - this._abandoned.size
    s.connections -= this._abandoned.size
    s.outOfFds = this._outOfFds
    if (this._bus !== null) s.bus = this._bus.stats()
    if (s.history !== null) {
      // polls: catchUp() calls (a long-poll once), not the native reads behind them.
      const { reads, ...rest } = s.history
      s.history = { ...rest, polls: this._catchUp.polls }
    }
    return s
  }

  /**
   * Flushes what is queued, ends every stream and stops the I/O threads.
   * Resolves once every stream has ended. Idempotent.
   */
  close () {
    if (this._closing) return this._closing
    // The bus first: it stops reading into the hub and drops its clients.
    const busClosed = this._bus === null ? null : this._bus.close()
    const ended = new Promise((resolve) => { this._resolveClose = resolve })
    this._closing = busClosed === null ? ended : Promise.all([ended, busClosed]).then(() => {})
    this._catchUp.close()
    // Listeners stop accepting first; the shards' shutdown ends them anyway.
    const listenersClosed = [...this._listeners].map((l) => l.close())
    this._native.close()
    if (listenersClosed.length > 0) this._closing = Promise.all([this._closing, ...listenersClosed]).then(() => {})
    return this._closing
  }

  // process.exit() runs no later turn of any loop: end every stream now, as
  // far as the sockets take it (the last chunk included), and stop the
  // threads. A stream whose socket buffer is full is cut.
  _closeSync () {
    openHubs.delete(this)
    if (this._bus !== null) this._bus.close()
    this._closing ??= new Promise((resolve) => { this._resolveClose = resolve })
    for (const entry of this._js.values()) {
      entry.ending = true
      try {
        if (entry.corked) entry.res.uncork()
        entry.res.end()
      } catch {} // best effort: the process is exiting
    }
    this._native.closeSync()
  }

  /** The events after a cursor, from the history (docs/history.md, "The catch-up endpoint"). */
  catchUp (options) { return this._catchUp.catchUp(options) }

  /** The catch-up endpoint for node:http: GET ?since=&wait= answered as JSON. */
  poll (req, res, options) { return this._catchUp.poll(req, res, options) }

  _assertOpen () {
    if (this._closing) throw new SseError('ERR_SSE_CLOSED', 'the hub is closed')
  }

  // Reports from the I/O threads, in order, as a flat array of triples. The
  // addon has already forgotten the connections it reports, so the whole batch
  // is booked (JS-transport writes, counts, stopped shards, close()) before
  // any listener runs: a throwing listener cannot leave the hub half-updated.
  _onReports (list) {
    let corked = null
    const disconnects = []
    for (let i = 0; i < list.length; i += 3) {
      const kind = list[i]
      if (kind === KIND_DELIVER || kind === KIND_DELIVER_CONTROL) {
        const frame = list[i + 1]
        const ids = list[i + 2]
        const event = kind === KIND_DELIVER
        for (let k = 0; k < ids.length; k++) {
          const entry = this._js.get(ids[k])
          if (entry === undefined || entry.ending) continue
          const res = entry.res
          if (!entry.corked && typeof res.cork === 'function') {
            res.cork()
            entry.corked = true
            ;(corked ??= []).push(entry)
          }
          if (event && entry.prefix !== null) res.write(entry.prefix)
          res.write(frame)
          if (res.writableLength > this.options.maxQueueBytes) this._dropSlow(ids[k], entry)
        }
      } else if (kind === KIND_DISCONNECT) {
        const event = this._disconnected(list[i + 1], REASONS[list[i + 2]] || 'error')
        if (event !== null) disconnects.push(event)
      } else if (kind === KIND_STOPPED) {
        this._stoppedShards++
      }
    }
    if (corked !== null) {
      for (const entry of corked) {
        entry.corked = false
        entry.res.uncork()
      }
    }
    this._maybeClosed()
    this._emitAll('disconnect', disconnects)
  }

  _dropSlow (id, entry) {
    entry.ending = true
    entry.res.destroy()
    this._calls.result('detach', id, REASON.slow)
  }

  _disconnected (id, reason) {
    if (this._abandoned.delete(id)) return null
    const entry = this._js.get(id)
    if (entry !== undefined) {
      this._js.delete(id)
      const res = entry.res
      if (!res.destroyed && !res.writableEnded) {
        entry.ending = true
        if (entry.corked) {
          entry.corked = false
          res.uncork()
        }
        if (this._closing) {
          this._ending.add(res)
          const done = () => { this._ending.delete(res); this._maybeClosed() }
          res.once('close', done)
          res.once('finish', done)
        }
        // The stream is over: close an HTTP/1 connection after its last
        // chunk, as the native side does, rather than keep it alive.
        if (res.stream === undefined && res.socket) {
          const socket = res.socket
          res.once('finish', () => socket.end())
        }
        res.end()
        // A client that takes nothing more must not hold close() or a kick
        // open: after closeTimeoutMs its stream is cut, as the native side does.
        if (!res.destroyed && !res.writableFinished) {
          const timer = setTimeout(() => res.destroy(), this.options.closeTimeoutMs)
          timer.unref()
          const stop = () => clearTimeout(timer)
          res.once('finish', stop)
          res.once('close', stop)
        }
      }
    }
    const ip = this._ipOf.get(id)
    if (ip !== undefined) {
      this._ipOf.delete(id)
      const left = this._perIp.get(ip) - 1
      if (left === 0) this._perIp.delete(ip)
      else this._perIp.set(ip, left)
    }
    if (--this._connections === 0 && !this._closing) this._native.unref()
    return { id, reason }
  }

  _maybeClosed () {
    if (this._resolveClose && this._stoppedShards === this.options.threads && this._ending.size === 0) {
      const resolve = this._resolveClose
      this._resolveClose = null
      // Until now a process.exit() still had streams to end (_closeSync).
      openHubs.delete(this)
      resolve()
    }
  }
}

module.exports = { Hub, DEFAULTS, hubInternals }
