'use strict'
// RedisBus: many hubs (processes, machines) as one, through one Redis
// (docs/redis.md, "The bus"). Every publish goes through the Redis Function
// (lib/redis/function.lua), which gives it the hub-wide epoch and sequence;
// every instance, the publisher too, reads the stream back and hands each
// batch to its native hub in one call (hubInternals(hub).publishBatch), so
// every instance's history is the same prefix of the stream, ids are global
// and every client sees the stream's order.
//
// States: 'connecting' (the first connect), 'up', 'down' (Redis unreachable:
// reconnecting with capped full-jitter backoff), 'closed'.
//  - up: hub.publish() sends one FCALL (not awaited) and returns null; the
//    event reaches local clients when the reader reads it back.
//  - connecting / down: the history is at a local epoch; hub.publish()
//    delivers at once (local ids) and queues the event in the outbox (bounded
//    in events and bytes: past either the event is dropped from Redis's view,
//    counted, and still delivered here).
//  - reconnect: load the function, read meta; the same Redis epoch as before:
//    back to it without a reset (nothing was missed) and catch up from our
//    last seq; another epoch (Redis lost its data): the catch-up rebases with
//    a reset. Then the outbox is flushed through the function, in order, each
//    event with its origin marker; an entry read back with an origin of ours
//    that was delivered here during the outage is kept in the history as a
//    skipped sequence (data null), not delivered twice.
//  - dedupe: every FCALL carries origin "<instanceId>:<n>" (n increasing);
//    the reader records the highest own n it read; an outbox event whose n
//    is not above it was already published (its reply was lost): skipped.
//    Sound because the FCALLs of one connection run in their send order.
//
// Nothing here ever throws from a timer or a client event: every failure is
// caught, recorded (stats().lastError), reported through 'state' / 'warning'
// events, and turned into 'down' + a reconnect. close() clears every timer
// and destroys both clients synchronously.
//
// JS thread only (it calls the addon through hubInternals).
const { EventEmitter } = require('node:events')
const { SseError, invalid } = require('../errors')
const format = require('./format')
const { BATCH_SLOTS, MAX_BATCH_EVENTS } = require('../history/sequenced')
const { makeEpoch } = require('../history')

const INSTANCE_ID = /^[A-Za-z0-9_.-]{1,64}$/

const DEFAULTS = Object.freeze({
  prefix: format.DEFAULT_PREFIX,
  readCount: 512,
  blockMs: 2000,
  pingIntervalMs: 1000,
  timeoutMs: 2000,
  maxOutboxEvents: 10000,
  maxOutboxBytes: 16 * 1024 * 1024,
  minReconnectMs: 100,
  maxReconnectMs: 5000,
  maxData: format.LIMITS.maxDataBytes,
  maxLen: 10000
})
const RANGES = {
  readCount: [1, MAX_BATCH_EVENTS],
  blockMs: [1, 60000],
  pingIntervalMs: [10, 600000],
  timeoutMs: [10, 600000],
  maxOutboxEvents: [0, 1e7],
  maxOutboxBytes: [0, 2 ** 40],
  minReconnectMs: [1, 600000],
  maxReconnectMs: [1, 600000],
  maxData: [1, format.LIMITS.maxDataCeiling],
  maxLen: [1, format.LIMITS.maxLen]
}
const KEYS = new Set(['url', 'prefix', 'instanceId', ...Object.keys(RANGES)])
// An outbox event's fixed cost in bytes beside its data (topic, names, bookkeeping).
const EVENT_OVERHEAD = 64

// A local epoch (as the hub's own) or an instance id: 8 characters of [A-Za-z0-9].
const randomName = makeEpoch

function resolveOptions (options) {
  if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
  for (const key of Object.keys(options)) {
    if (!KEYS.has(key)) throw new SseError('ERR_SSE_INVALID_ARGUMENT', `Unknown option options.${key} (expected one of ${[...KEYS].join(', ')})`)
  }
  const { url } = options
  if (url !== undefined && (typeof url !== 'string' || !/^rediss?:\/\//.test(url))) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a redis:// or rediss:// URL', 'options.url', url)
  }
  const prefix = options.prefix === undefined ? DEFAULTS.prefix : options.prefix
  const keys = format.keysFor(prefix) // validates it
  const instanceId = options.instanceId === undefined ? randomName() : options.instanceId
  if (typeof instanceId !== 'string' || !INSTANCE_ID.test(instanceId)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', '1 to 64 characters of [A-Za-z0-9_.-]', 'options.instanceId', instanceId)
  }
  const out = { url, prefix, keys, instanceId }
  for (const [name, [min, max]] of Object.entries(RANGES)) {
    const value = options[name] === undefined ? DEFAULTS[name] : options[name]
    if (!Number.isInteger(value) || value < min || value > max) {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between ${min} and ${max}`, `options.${name}`, value)
    }
    out[name] = value
  }
  if (out.minReconnectMs > out.maxReconnectMs) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', `Expected options.minReconnectMs (${out.minReconnectMs}) to be at most options.maxReconnectMs (${out.maxReconnectMs})`)
  }
  return Object.freeze(out)
}

// @redis/client, required on first use: an optional peer dependency.
let redisModule = null
function redisClient () {
  if (redisModule === null) {
    try {
      redisModule = require('@redis/client')
    } catch (err) {
      if (err.code !== 'MODULE_NOT_FOUND') throw err
      throw new SseError('ERR_SSE_MISSING_DEPENDENCY', 'sse-fanout/redis needs @redis/client (npm install @redis/client)')
    }
  }
  return redisModule
}

/** Resolves or rejects as p does, or rejects with `message` after ms (the timer is always cleared). */
function within (p, ms, message) {
  let timer
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms)
  })
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer))
}

// An error reply from Redis (@redis/client decodes them as subclasses of ErrorReply).
const isErrorReply = (err) => err instanceof redisClient().ErrorReply

class RedisBus extends EventEmitter {
  /** @param {object} options see docs/redis.md, "The bus" */
  constructor (options = {}) {
    super()
    this.options = resolveOptions(options)
    redisClient() // fails now, not at the first connect, when the package is absent
    this._hub = null
    this._internals = null
    this._state = 'connecting'
    this._closed = false
    this._generation = 0 // a connection attempt's number: late callbacks of an older one do nothing
    this._cmd = null // the command client (FCALL, PING, HGETALL, XRANGE)
    this._reader = null // the XREAD BLOCK client
    this._routeRedis = false // publishes go to Redis (else: local + outbox)
    this._atRedisEpoch = false // the history is at a Redis epoch (else at a local one)
    this._redisEpoch = null // the epoch of the last entry read, or of meta
    this._lastSeq = 0 // the last seq read
    // This instance's last origin number. It starts at the clock (µs), so
    // that a restart with the same configured instanceId never takes the
    // origins of its previous life (in the stream) for its own: those are at
    // or below _nBase, and the dedupe and the outage's set ignore them.
    this._nBase = Date.now() * 1000
    this._n = this._nBase
    this._ownSeen = 0 // the highest own origin number read back
    this._skippedId = null // the id of an entry read past _lastSeq that is not <seq>-0 (reads resume after it)
    this._deliveredHere = new Set() // origin numbers delivered locally during an outage
    this._outbox = [] // { n, topic, data, event, id, users, bytes, delivered }
    this._outboxBytes = 0
    this._inflight = 0 // FCALLs sent and not answered
    this._timers = new Set()
    this._attempt = 0
    this._waiters = [] // ready() callers: { resolve, reject }
    this._stats = { published: 0, read: 0, rejected: 0, rebases: 0, reconnects: 0, resyncs: 0, dropped: 0, lastError: null }
    this._resync = false // Redis lost its data while up: the reader reads the stream again from its start
    this._readyReached = false
  }

  get state () { return this._state }
  get instanceId () { return this.options.instanceId }

  /** Resolves once the bus is up (connected, caught up, outbox flushed); rejects when a connect attempt fails first, or on close(). */
  ready () {
    if (this._state === 'up') return Promise.resolve()
    if (this._closed) return Promise.reject(new SseError('ERR_SSE_CLOSED', 'the bus is closed'))
    if (this._hub === null) return Promise.reject(new SseError('ERR_SSE_INVALID_ARGUMENT', 'the bus is not attached to a hub yet (new Hub({ history: true, bus }))'))
    return new Promise((resolve, reject) => this._waiters.push({ resolve, reject }))
  }

  /** hub.publish() for a caller that wants the id: resolves with it (null: queued for Redis, id not known yet). */
  publish (topic, data, options) {
    return this._viaHub(() => this._hubOrThrow().publish(topic, data, options))
  }

  /** hub.broadcast(), as publish(). */
  broadcast (data, options) {
    return this._viaHub(() => this._hubOrThrow().broadcast(data, options))
  }

  _viaHub (call) {
    this._want = true
    let id
    try {
      id = call()
    } catch (err) {
      this._want = false
      return Promise.reject(err)
    }
    this._want = false
    const promise = this._wanted
    this._wanted = null
    return id !== null ? Promise.resolve(id) : promise
  }

  _hubOrThrow () {
    if (this._hub === null) throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'the bus is not attached to a hub (new Hub({ history: true, bus }))')
    return this._hub
  }

  stats () {
    const position = this._internals === null ? null : this._internals.position()
    return {
      state: this._state,
      instanceId: this.options.instanceId,
      epoch: this._redisEpoch,
      seq: this._lastSeq,
      position,
      outbox: { events: this._outbox.length, bytes: this._outboxBytes, dropped: this._stats.dropped },
      inflight: this._inflight,
      published: this._stats.published,
      read: this._stats.read,
      rejected: this._stats.rejected,
      rebases: this._stats.rebases,
      reconnects: this._stats.reconnects,
      resyncs: this._stats.resyncs,
      lastError: this._stats.lastError
    }
  }

  /** Ends the bus: every timer cleared, both clients destroyed. Idempotent; resolves at once. */
  close () {
    if (this._closed) return Promise.resolve()
    this._closed = true
    this._generation++
    this._routeRedis = false
    this._dropClients()
    for (const timer of this._timers) clearTimeout(timer)
    this._timers.clear()
    this._setState('closed', 'close()')
    const err = new SseError('ERR_SSE_CLOSED', 'the bus is closed')
    for (const w of this._waiters.splice(0)) w.reject(err)
    return Promise.resolve()
  }

  // ---- for lib/hub.js ------------------------------------------------------

  /** Throws unless this bus can be attached to a new hub (Hub's option check). */
  _checkAttachable () {
    if (this._closed) throw new SseError('ERR_SSE_CLOSED', 'the bus is closed')
    if (this._hub !== null) throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'Expected a RedisBus of its own for options.bus but it is already attached to a hub (one bus per hub)')
  }

  /** Called once by the Hub's constructor: starts connecting. */
  _attach (hub, internals) {
    this._checkAttachable()
    this._hub = hub
    this._internals = internals
    this._connect()
  }

  /** Throws when the event cannot go through the function (the format's limits): before anything is published. */
  _check (payload, o) {
    const bytes = typeof payload === 'string' ? Buffer.byteLength(payload) : payload.byteLength
    if (bytes > this.options.maxData) {
      throw new SseError('ERR_SSE_DATA_TOO_LARGE', `data is ${bytes} bytes, more than the bus's maxData (${this.options.maxData})`)
    }
    if (o.event !== undefined && Buffer.byteLength(o.event) > format.LIMITS.eventBytes) {
      throw new SseError('ERR_SSE_INVALID_EVENT', `options.event must be at most ${format.LIMITS.eventBytes} bytes with a bus`)
    }
    if (o.id !== undefined && Buffer.byteLength(o.id) > format.LIMITS.idBytes) {
      throw new SseError('ERR_SSE_INVALID_ID', `options.id must be at most ${format.LIMITS.idBytes} bytes with a bus`)
    }
  }

  /**
   * Up: sends the FCALL and returns true (the hub returns null). Otherwise
   * false: the hub publishes locally, then calls _queueDelivered().
   */
  _send (topic, payload, o, users) {
    if (!this._routeRedis) return false
    const event = { n: ++this._n, topic, data: payload, event: o.event, id: o.id, users, bytes: 0, delivered: false, localId: null }
    event.bytes = eventBytes(event)
    const reply = this._fcall(event)
    if (this._want) this._wanted = reply
    else reply.catch(() => {}) // the outcome is booked by _fcall
    return true
  }

  /** An event delivered locally while Redis is not reachable: queued for Redis. */
  _queueDelivered (topic, payload, o, users) {
    const event = { n: ++this._n, topic, data: payload, event: o.event, id: o.id, users, bytes: 0, delivered: true, localId: null }
    event.bytes = eventBytes(event)
    if (this._enqueue(event)) this._deliveredHere.add(event.n)
  }

  // ---- publishing ----------------------------------------------------------

  // One FCALL; resolves with the event's id; when Redis did not take it
  // (connection lost, a timeout, Redis refusing writes) the event goes to the
  // outbox and is delivered here: its local id (null if that failed too);
  // rejects when the function refused the event (counted, reported, dropped).
  _fcall (event, timed = false) {
    const o = this.options
    const generation = this._generation
    const cmd = this._cmd
    this._inflight++
    const { topic, data, id, users } = event
    const entry = { topic, data, event: event.event, id, users, origin: `${o.instanceId}:${event.n}` }
    const args = format.fcallCommand(o.keys, entry, { maxLen: o.maxLen, maxData: o.maxData })
    let sent
    try {
      // No per-command options on the hot path (they cost @redis/client
      // about 2 µs a call): the liveness probe, sent on this connection
      // after the call and answered after it, has the timeout. The outbox
      // flush, before the probe runs, times each call.
      sent = timed ? cmd.sendCommand(args, { timeout: o.timeoutMs, rejectInFlight: true }) : cmd.sendCommand(args)
    } catch (err) {
      sent = Promise.reject(err)
    }
    // Redis answers slower than we publish: its queue is bounded like the outbox.
    if (this._inflight > Math.max(1, o.maxOutboxEvents)) this._down(new Error(`${this._inflight} publishes wait for Redis: more than maxOutboxEvents`))
    return sent.then((reply) => {
      this._inflight--
      this._stats.published++
      return event.id ?? `${reply[0]}-${reply[1]}`
    }, (err) => {
      this._inflight--
      if (isErrorReply(err) && format.refusedByFunction(err.message)) {
        // The function refused this event (its limits): no other event is concerned.
        this._deliveredHere.delete(event.n)
        this._stats.rejected++
        this._warn(`Redis refused an event: ${err.message}`)
        throw new SseError('ERR_SSE_INVALID_ARGUMENT', `Redis refused the event: ${err.message}`)
      }
      // The connection failed, or Redis cannot take writes now (OOM,
      // READONLY after a failover, the library flushed): down, as for an
      // outage. Never lost: the outbox keeps the event (the dedupe skips it
      // if Redis ran it), and it is delivered here at once, as every publish
      // of the outage is; the caller gets its local id.
      const queued = this._enqueue(event)
      if (generation === this._generation) this._down(isErrorReply(err) ? new Error(`Redis refused a write: ${err.message}`) : err)
      if (!this._routeRedis && !event.delivered) this._deliverHere(event, queued)
      return event.localId
    })
  }

  // An event whose FCALL failed, delivered to this hub's clients (a local id).
  // queued: it waits in the outbox (its read-back is then skipped here).
  _deliverHere (event, queued) {
    if (this._closed || this._hub.closed) return
    try {
      event.localId = this._internals.deliverLocal(event.topic, event.data, { event: event.event, id: event.id }, event.users)
    } catch (err) {
      this._warn(`an event Redis did not take was not delivered here either: ${err.message}`)
      return
    }
    event.delivered = true
    if (queued) this._deliveredHere.add(event.n)
  }

  // Into the outbox, in origin order (a failed FCALL may come back after
  // later ones were queued). False when a bound dropped it.
  _enqueue (event) {
    const o = this.options
    if (this._outbox.length + 1 > o.maxOutboxEvents || this._outboxBytes + event.bytes > o.maxOutboxBytes) {
      this._stats.dropped++
      return false
    }
    let at = this._outbox.length
    while (at > 0 && this._outbox[at - 1].n > event.n) at--
    this._outbox.splice(at, 0, event)
    this._outboxBytes += event.bytes
    return true
  }

  // ---- connecting ----------------------------------------------------------

  _timer (fn, ms) {
    const timer = setTimeout(() => {
      this._timers.delete(timer)
      fn()
    }, ms)
    this._timers.add(timer)
    return timer
  }

  _clearTimer (timer) {
    if (timer === null) return
    clearTimeout(timer)
    this._timers.delete(timer)
  }

  // One connect attempt; any failure -> _down() (which schedules the next).
  _connect () {
    const generation = ++this._generation
    this._run(generation).catch((err) => {
      if (generation === this._generation && !this._closed) this._down(err)
    })
  }

  async _run (generation) {
    const o = this.options
    const { createClient, RESP_TYPES } = redisClient()
    const stale = () => generation !== this._generation || this._closed
    const base = createClient({
      url: o.url,
      disableOfflineQueue: true,
      socket: { reconnectStrategy: false, connectTimeout: o.timeoutMs }
    })
    const reader = base.duplicate()
    this._cmd = base
    this._reader = reader
    for (const client of [base, reader]) {
      client.on('error', (err) => { if (!stale()) this._down(err) })
      client.on('end', () => { if (!stale()) this._down(new Error('the connection to Redis ended')) })
    }
    await within(Promise.all([base.connect(), reader.connect()]), o.timeoutMs, `no connection to Redis within ${o.timeoutMs} ms`)
    if (stale()) return
    await within(format.loadFunction(base), o.timeoutMs, `FUNCTION LOAD took more than ${o.timeoutMs} ms`)
    if (stale()) return
    // Binary-safe reads: blob strings as Buffers (format.js decodes them).
    const binary = base.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer })
    let meta = await base.sendCommand(['HMGET', o.keys.meta, 'epoch', 'seq'], { timeout: o.timeoutMs, rejectInFlight: true })
    if (stale()) return
    if (typeof meta[0] !== 'string') {
      // No epoch yet (a new hub, or Redis lost its data): start it now, so
      // that every instance is at it before the first event.
      meta = await base.sendCommand(format.epochCommand(o.keys), { timeout: o.timeoutMs, rejectInFlight: true })
      if (stale()) return
    }
    const epoch = String(meta[0])
    const metaSeq = Number(meta[1])
    if (epoch === this._redisEpoch && metaSeq < this._lastSeq) {
      // Redis went back in time (restored from an older snapshot): the seqs
      // after metaSeq will be given again, to other events. Our clients get a
      // reset and we read on from there (the function cannot tell; a new
      // epoch would be better: docs/redis.md, "Limits").
      this._warn(`Redis is at seq ${metaSeq} of epoch ${epoch}, behind the ${this._lastSeq} read before (restored from an older snapshot?)`)
      this._lastSeq = metaSeq
      this._skippedId = null
      this._rebase(epoch, metaSeq, true)
    } else if (epoch === this._redisEpoch) {
      // The Redis we left: back to its epoch without a reset (nothing was
      // missed), and on from our last seq.
      this._rebase(epoch, this._lastSeq, false)
    } else {
      // First connect, or Redis lost its data: everything it holds is read
      // from the start (the ingest rebases, with a reset where clients may
      // hold ids of before).
      this._lastSeq = 0
      this._skippedId = null
      this._redisEpoch = epoch
    }
    await this._catchUp(binary, stale)
    if (stale()) return
    if (!this._atRedisEpoch) {
      // Nothing of meta's epoch was read (a new hub at seq 0, or a stream
      // trimmed past us): the history goes to meta's position, so that the
      // ids given out from here (position frames: <epoch>-<seq>) mean the
      // same on every instance. A reset where seqs of it were missed.
      const p = this._position()
      this._rebase(epoch, metaSeq, metaSeq > (p.epoch === epoch ? p.seq : 0))
      this._atRedisEpoch = true
      this._lastSeq = metaSeq
      this._redisEpoch = epoch
    }
    // From here publishes go to Redis, after the outbox (same connection, in order).
    this._routeRedis = true
    await this._flushOutbox(stale)
    if (stale()) return
    this._attempt = 0
    this._setState('up', 'connected')
    for (const w of this._waiters.splice(0)) w.resolve()
    this._readyReached = true
    this._startPing(generation)
    this._readLoop(generation, reader.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }))
  }

  async _flushOutbox (stale) {
    while (this._outbox.length > 0) {
      const batch = this._outbox.splice(0)
      this._outboxBytes = 0
      const replies = []
      for (const event of batch) {
        if (event.n <= this._ownSeen) continue // Redis ran it: its reply was lost
        replies.push(this._fcall(event, true).catch(() => null))
      }
      await Promise.all(replies)
      if (stale()) return
      if (!this._routeRedis) throw new Error('the outbox flush failed')
    }
  }

  // The stream from our last seq to its end, read with XRANGE in pages.
  async _catchUp (client, stale) {
    const o = this.options
    for (;;) {
      const after = this._readAfter()
      const from = after === '0-0' ? '-' : `(${after}`
      const entries = await client.sendCommand(['XRANGE', o.keys.stream, from, '+', 'COUNT', String(o.readCount)], { timeout: o.timeoutMs, rejectInFlight: true })
      if (stale()) return
      if (entries.length > 0) await this._ingest(entries, stale)
      if (stale()) return
      if (entries.length < o.readCount) return
    }
  }

  // Redis lost its data while we were up (FLUSHALL, a failover to an empty
  // replica): the function started a new epoch and a new stream. The reader
  // reads that stream from its start at its next turn; its first entries are
  // new to every client here, so nobody gets a reset for them.
  _lostData (why) {
    if (this._resync) return
    this._resync = true
    this._stats.resyncs++
    this._warn(`Redis lost its data while up (${why}): reading its stream again from the start`)
  }

  _startPing (generation) {
    const o = this.options
    let busy = false
    const tick = () => {
      if (generation !== this._generation) return
      this._timer(tick, o.pingIntervalMs)
      if (busy) return
      busy = true
      // The probe reads meta's epoch, not a PING: a Redis that answers but
      // lost its data (FLUSHALL, a failover to an empty replica) is caught
      // here too, not only a silent connection. The reader has its own
      // watchdog (blockMs + timeoutMs).
      this._cmd.sendCommand(['HGET', o.keys.meta, 'epoch'], { timeout: o.timeoutMs, rejectInFlight: true }).then((epoch) => {
        busy = false
        if (generation !== this._generation) return
        const known = this._redisEpoch
        // meta gone and nothing published since: nothing to read yet. A new
        // epoch: the reader reads it from its start at its next turn (its
        // XREAD after our old seq would miss the new epoch's first entries).
        if (known !== null && epoch !== null && epoch !== known) this._lostData(`meta's epoch is ${epoch}, not ${known}`)
      }, (err) => {
        busy = false
        if (generation === this._generation) this._down(new Error(`liveness probe: ${err.message}`))
      })
    }
    this._timer(tick, o.pingIntervalMs)
  }

  _readLoop (generation, reader) {
    const o = this.options
    const stale = () => generation !== this._generation || this._closed
    const step = async () => {
      if (stale()) return
      if (this._resync) {
        // Meta's epoch decides. Another one: its stream from the start. The
        // same (an entry of another epoch was written past the function):
        // on from our seq, the catch-up rejects that entry. The flag stays
        // up until then: a probe meanwhile must not ask for another resync.
        try {
          const meta = await reader.sendCommand(['HGET', o.keys.meta, 'epoch'], { timeout: o.timeoutMs, rejectInFlight: true })
          if (stale()) return
          const epoch = meta === null ? null : String(meta)
          if (epoch !== null && epoch !== this._redisEpoch) {
            this._redisEpoch = epoch
            this._lastSeq = 0
            this._skippedId = null
          }
          await this._catchUp(reader, stale)
        } catch (err) {
          if (!stale()) this._down(err)
          return
        }
        if (stale()) return
        this._resync = false
      }
      const watchdog = this._timer(() => {
        if (!stale()) this._down(new Error(`XREAD did not return within blockMs + timeoutMs (${o.blockMs + o.timeoutMs} ms)`))
      }, o.blockMs + o.timeoutMs)
      let read
      try {
        read = reader.sendCommand(['XREAD', 'COUNT', String(o.readCount), 'BLOCK', String(o.blockMs), 'STREAMS', o.keys.stream, this._readAfter()])
      } catch (err) {
        read = Promise.reject(err)
      }
      read.then(async (reply) => {
        this._clearTimer(watchdog)
        if (stale()) return
        const entries = entriesOf(reply)
        if (entries.length > 0) await this._ingest(entries, stale, true)
        step()
      }).catch((err) => {
        this._clearTimer(watchdog)
        if (!stale()) this._down(err)
      })
    }
    step()
  }

  // ---- reading -------------------------------------------------------------

  // Entries [[id, fields], ...] (ids increasing) into the native history: one
  // publishBatch per run of one epoch and contiguous seqs.
  //
  // live (the XREAD loop): an entry of another epoch than the one read so far
  // means Redis lost its data while we were up, and XREAD only returns what is
  // past our old seq: the new epoch's first entries would be missed. The rest
  // of the batch is left for the resync (_lostData).
  async _ingest (entries, stale, live = false) {
    const held = this._position() // what the history holds: entries at or below it are not delivered again
    let run = []
    let own = [] // this process's origin numbers in run: booked once run is in the history
    let runEpoch = null
    let runFirst = 0
    let next = 0
    for (const [rawId, fields] of entries) {
      const seq = format.seqOf(String(rawId))
      if (seq === 0) {
        // Not read again: the next read starts after it.
        this._skippedId = String(rawId)
        this._reject(`entry id ${String(rawId).slice(0, 40)} is not <seq>-0`)
        continue
      }
      const decoded = format.decodeEntry(fields, { maxData: this.options.maxData })
      let reason = decoded instanceof format.RejectedEntry ? decoded.reason : null
      if (reason === null && this._redisEpoch !== null && decoded.epoch !== this._redisEpoch) {
        if (live) {
          // Meta's epoch changed (Redis lost its data), or this entry was
          // written past the function: the resync reads meta and tells.
          if (run.length > 0) await this._apply(runEpoch, runFirst, run, stale, own)
          this._lostData(`the stream went on at ${decoded.epoch}-${seq}, after ${this._redisEpoch}-${this._lastSeq}`)
          return
        }
        // Not of meta's epoch: the function deletes the stream when it starts
        // an epoch, so this entry was written past it.
        reason = `entry ${seq} is of epoch ${decoded.epoch}, not meta's ${this._redisEpoch}`
      }
      const rejected = reason !== null
      const epoch = rejected ? (runEpoch ?? this._redisEpoch ?? this._position().epoch) : decoded.epoch
      if (epoch === held.epoch && seq <= held.seq) {
        // In the history already (a resync read the stream from its start,
        // but it had not restarted: meta or an entry written past the
        // function): delivered once, not again, and no rebase back.
        if (run.length === 0 && epoch === this._redisEpoch && seq > this._lastSeq) this._lastSeq = seq
        continue
      }
      if (run.length > 0 && (epoch !== runEpoch || seq !== next || run.length / BATCH_SLOTS >= MAX_BATCH_EVENTS)) {
        await this._apply(runEpoch, runFirst, run, stale, own)
        if (stale()) return
        run = []
        own = []
      }
      if (run.length === 0) {
        runEpoch = epoch
        runFirst = seq
      }
      next = seq + 1
      if (rejected) {
        this._reject(reason)
        run.push(null, null, undefined, undefined, undefined)
        continue
      }
      let data = decoded.data
      if (decoded.origin !== undefined && decoded.origin.startsWith(`${this.options.instanceId}:`)) {
        const n = originNumber(decoded.origin.slice(this.options.instanceId.length + 1))
        // Only numbers this process gave out (not a previous life's, not a forged one).
        if (n > this._nBase && n <= this._n) {
          if (this._deliveredHere.has(n)) data = null // delivered here during the outage
          own.push(n)
        }
      }
      run.push(decoded.topic, data, decoded.event, decoded.id, decoded.users)
    }
    if (run.length > 0) await this._apply(runEpoch, runFirst, run, stale, own)
  }

  // own: this process's origin numbers in run. They count (the flush's
  // dedupe, the outage's set) only once run is in the history: a run given
  // up (the bus went down meanwhile) is read again, and must be judged the
  // same way then.
  async _apply (epoch, firstSeq, run, stale, own = []) {
    const position = this._position()
    if (epoch !== position.epoch || firstSeq !== position.seq + 1) {
      // A gap (trimmed past us, or an epoch entered past its start): events
      // are lost to our clients, so they get a reset. None when nothing was
      // missed: the history held nothing yet (seq 0: no id was ever given
      // out), or a new epoch is read from its first entry (after an outage
      // where Redis lost its data, every entry of it reaches our clients).
      const missed = position.seq > 0 && !(epoch !== position.epoch && firstSeq === 1)
      this._rebase(epoch, firstSeq - 1, missed)
    }
    for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
      try {
        this._internals.publishBatch(epoch, firstSeq, run)
        break
      } catch (err) {
        // The I/O threads are behind: wait for them (the reader is the back-pressure).
        if (err.code !== 'ERR_SSE_QUEUE_FULL') throw err
        await new Promise((resolve) => this._timer(resolve, wait))
        if (stale()) return
      }
    }
    this._stats.read += run.length / BATCH_SLOTS
    if (own.length > 0) {
      for (const n of own) {
        this._deliveredHere.delete(n)
        if (n > this._ownSeen) this._ownSeen = n
      }
      // Own events come back in origin order: one of the outage's not read
      // back by now never will be (trimmed, or Redis lost it).
      if (this._deliveredHere.size > 0) for (const n of this._deliveredHere) if (n < this._ownSeen) this._deliveredHere.delete(n)
    }
    this._atRedisEpoch = true
    this._redisEpoch = epoch
    this._lastSeq = firstSeq + run.length / BATCH_SLOTS - 1
  }

  // Where the next read starts (exclusive): after our last seq, or after an
  // entry with an id not <seq>-0 read past it (else XREAD would return that
  // entry at every turn, and a page of them would hold the catch-up).
  _readAfter () {
    const id = `${this._lastSeq}-0`
    if (this._skippedId === null) return id
    if (compareIds(this._skippedId, id) > 0) return this._skippedId
    this._skippedId = null
    return id
  }

  _reject (reason) {
    this._stats.rejected++
    this._warn(`skipped a stream entry: ${reason}`)
  }

  _position () {
    return this._internals.position()
  }

  _rebase (epoch, seq, reset) {
    const p = this._position()
    if (p.epoch === epoch && p.seq === seq) return
    this._internals.rebase(epoch, seq, { reset })
    this._stats.rebases++
  }

  // ---- failures ------------------------------------------------------------

  // Redis is unreachable: local mode (a fresh local epoch, no reset), both
  // clients dropped, the next attempt scheduled. Idempotent per attempt.
  _down (err) {
    if (this._closed) return
    const message = err && err.message ? err.message : String(err)
    this._stats.lastError = message
    this._generation++ // every callback of this attempt is stale now
    this._routeRedis = false
    this._resync = false // the reconnect compares epochs itself
    this._dropClients()
    for (const timer of this._timers) clearTimeout(timer)
    this._timers.clear()
    if (this._atRedisEpoch) {
      this._atRedisEpoch = false
      try {
        if (!this._hub.closed) this._rebase(randomName(), 0, false)
      } catch (e) {
        this._warn(`local rebase failed: ${e.message}`)
      }
    }
    // Events whose FCALL failed before this: delivered here now, in order.
    for (const event of this._outbox) if (!event.delivered) this._deliverHere(event, true)
    if (this._state !== 'down') this._setState('down', message)
    for (const w of this._waiters.splice(0)) w.reject(new Error(`Redis is not reachable: ${message}`, { cause: err }))
    const o = this.options
    const cap = Math.min(o.maxReconnectMs, o.minReconnectMs * 2 ** Math.min(this._attempt++, 20))
    const delay = Math.max(o.minReconnectMs, Math.floor(Math.random() * cap))
    this._timer(() => {
      if (this._closed) return
      this._stats.reconnects++
      this._connect()
    }, delay)
  }

  _dropClients () {
    for (const client of [this._cmd, this._reader]) {
      if (client === null) continue
      try {
        client.destroy()
      } catch {} // not open yet, or already destroyed
    }
    this._cmd = null
    this._reader = null
  }

  _setState (state, reason) {
    const previous = this._state
    if (previous === state) return
    this._state = state
    this._safeEmit('state', { state, previous, reason })
  }

  _warn (message) {
    this._safeEmit('warning', { message })
  }

  // A listener's exception must not break the bus's bookkeeping.
  _safeEmit (name, value) {
    try {
      this.emit(name, value)
    } catch (err) {
      process.nextTick(() => { throw err })
    }
  }
}

// The entries of an XREAD reply for one stream: a raw RESP2 array
// [[key, entries]], or (@redis/client 6 maps it) { key: entries } or a Map;
// null when BLOCK timed out.
function entriesOf (reply) {
  if (reply === null || reply === undefined) return []
  if (Array.isArray(reply)) return reply.length === 0 ? [] : reply[0][1]
  const values = reply instanceof Map ? [...reply.values()] : Object.values(reply)
  if (values.length === 0) return []
  const first = values[0]
  // RESP3 or a mapped reply may hold { name, messages } per stream.
  return Array.isArray(first) ? first : (first.messages ?? [])
}

// A stream id "<ms>-<seq>" compared with another: < 0, 0, > 0.
function compareIds (a, b) {
  const [am, as] = a.split('-').map(BigInt)
  const [bm, bs] = b.split('-').map(BigInt)
  if (am !== bm) return am < bm ? -1 : 1
  return as === bs ? 0 : (as < bs ? -1 : 1)
}

// The <n> of an origin "<instanceId>:<n>", or 0 when it is not a decimal integer.
function originNumber (text) {
  return /^[1-9][0-9]{0,15}$/.test(text) ? Number(text) : 0
}

function eventBytes (event) {
  const data = typeof event.data === 'string' ? Buffer.byteLength(event.data) : event.data.byteLength
  return data + EVENT_OVERHEAD + (event.topic === null ? 0 : event.topic.length)
}

module.exports = { RedisBus, DEFAULTS }
