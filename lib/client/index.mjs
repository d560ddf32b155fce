// sse-fanout/client: a browser EventSource wrapper that never loses its place
// (docs in lib/client/README.md). No dependencies, no Node built-ins: it runs
// in browsers and in Node given an EventSource implementation.
//
// The cursor: the id of the last event or position delivered (stream or
// poll). A new EventSource cannot be given Last-Event-ID, so a reconnect
// passes it in the query as `lastEventId` (the hub reads it). A hub with
// `history.positionEvent` sends its position as an event after each replay
// and in each heartbeat: the cursor moves on quiet streams too, and silence
// past stallTimeoutMs is a stall. Without it, id-only position frames are
// invisible here and the cursor is the last *event's* id.
//
// States: connecting -> open; open -> reconnecting on an error or a cut;
// reconnecting -> open, or -> polling after maxRetries attempts in a row
// refused (an answer that is not a stream) or held, or a stall, when a
// catch-up URL is given and it answers (network errors, and a catch-up that
// fails too, mean the server is out of reach: streams are retried); polling -> open
// when a stream probe (every streamRetryMs) opens, -> reconnecting when a
// poll fails; any -> closed on close().
// Streaming and polling never run at once: a probe pauses the polling, so an
// event is delivered once whichever way it comes.

const OWN_EVENTS = new Set(['open', 'error', 'reset', 'statechange'])
const DEFAULTS = {
  minRetryMs: 500,
  maxRetryMs: 30000,
  maxRetries: 3,
  stallTimeoutMs: 2 * 15000 + 5000,
  pollIntervalMs: 5000,
  longPoll: false,
  pollWaitSeconds: 25,
  streamRetryMs: 30000,
  resetEvent: 'reset',
  positionEvent: 'sse-position'
}

/**
 * Full-jitter exponential backoff: a delay in [0, min(maxRetryMs,
 * minRetryMs * 2^(attempt-1))) for attempt 1, 2, ...
 */
export function backoff (attempt, { minRetryMs = DEFAULTS.minRetryMs, maxRetryMs = DEFAULTS.maxRetryMs, random = Math.random } = {}) {
  const cap = Math.min(maxRetryMs, minRetryMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30))
  return Math.floor(random() * cap)
}

/** The default logger: console, `[SSE] <ISO time>` in front. */
export function consoleLogger (out = console) {
  const at = (level) => (message, ...rest) => out[level](`[SSE] ${new Date().toISOString()} ${message}`, ...rest)
  return { info: at('info'), warn: at('warn'), error: at('error') }
}

const SILENT = { info () {}, warn () {}, error () {} }

function withQuery (base, params) {
  const origin = globalThis.location ? globalThis.location.href : undefined
  const url = new URL(base, origin)
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value)
  }
  return url.href
}

export class SseClient extends EventTarget {
  constructor (url, options = {}) {
    super()
    const o = { ...DEFAULTS, ...options }
    this.url = url
    this._o = o
    this._ES = o.EventSource || globalThis.EventSource
    if (typeof this._ES !== 'function') throw new TypeError('Expected an EventSource implementation for options.EventSource (none in globalThis)')
    this._fetch = o.fetch || (globalThis.fetch && globalThis.fetch.bind(globalThis))
    this._poll = o.poll || null
    this._random = o.random || Math.random
    this._log = o.logger === false ? SILENT : o.logger || consoleLogger()
    this.lastEventId = o.lastEventId || ''
    this.state = 'connecting'
    this._names = new Set(['message'])
    this._listeners = new Set()
    this._es = null
    this._failures = 0 // stream attempts in a row that never opened (the backoff's exponent)
    this._blocked = 0 // of those, the ones refused (an answer that is not a stream) or held
    this._timers = new Set()
    this._stall = null
    this._pollRun = null // { abort } of the polling loop while polling
    this._window = o.window !== undefined ? o.window : globalThis.window
    this._onOffline = () => this._offline()
    this._onOnline = () => this._online()
    if (this._window && this._window.addEventListener) {
      this._window.addEventListener('offline', this._onOffline)
      this._window.addEventListener('online', this._onOnline)
    }
    this._connect(false)
  }

  addEventListener (type, listener, options) {
    if (!OWN_EVENTS.has(type) && !this._names.has(type)) {
      this._names.add(type)
      if (this._es) this._es.addEventListener(type, this._forward)
    }
    super.addEventListener(type, listener, options)
  }

  /** The connection state, for React's useSyncExternalStore. */
  getSnapshot () { return this.state }

  /** listener() on every state change; returns the unsubscribe. */
  subscribe (listener) {
    this._listeners.add(listener)
    return () => this._listeners.delete(listener)
  }

  close () {
    if (this.state === 'closed') return
    this._stop()
    if (this._window && this._window.removeEventListener) {
      this._window.removeEventListener('offline', this._onOffline)
      this._window.removeEventListener('online', this._onOnline)
    }
    this._setState('closed')
  }

  _setState (state) {
    if (state === this.state) return
    const previous = this.state
    this.state = state
    this._log.info(`state ${previous} -> ${state}`)
    const event = new CustomEvent('statechange', { detail: { state, previous } })
    event.state = state
    this.dispatchEvent(event)
    for (const listener of this._listeners) listener()
  }

  _later (ms, fn) {
    const timer = setTimeout(() => { this._timers.delete(timer); fn() }, ms)
    this._timers.add(timer)
    return timer
  }

  _clear (timer) {
    clearTimeout(timer)
    this._timers.delete(timer)
  }

  /** Ends the stream, the polling and every timer. */
  _stop () {
    this._closeStream()
    this._stopPolling()
    for (const timer of this._timers) clearTimeout(timer)
    this._timers.clear()
  }

  _closeStream () {
    if (this._stall) this._clear(this._stall)
    this._stall = null
    if (!this._es) return
    this._es.close()
    this._es = null
  }

  _error (message, detail = {}) {
    this._log.warn(message)
    this.dispatchEvent(new CustomEvent('error', { detail: { message, ...detail } }))
  }

  _deliver (type, data, id) {
    if (id) this.lastEventId = id
    this.dispatchEvent(new MessageEvent(type, { data, lastEventId: id || this.lastEventId }))
  }

  /** Opens a stream from the cursor; probe: a try while polling (the polling is paused meanwhile). */
  _connect (probe) {
    const es = new this._ES(withQuery(this.url, { lastEventId: this.lastEventId }), this._o.eventSourceInit)
    this._es = es
    let opened = false
    this._positions = false // whether this stream has shown a position event
    const mine = (fn) => (event) => { if (this._es === es) fn(event) }
    this._forward = mine((event) => {
      this._armStall()
      this._deliver(event.type, event.data, event.lastEventId)
    })
    for (const name of this._names) es.addEventListener(name, this._forward)
    if (this._o.positionEvent) {
      es.addEventListener(this._o.positionEvent, mine((event) => {
        this._positions = true
        if (event.lastEventId) this.lastEventId = event.lastEventId
        this._armStall()
      }))
    }
    es.addEventListener(this._o.resetEvent, mine((event) => {
      this._armStall()
      let data = event.data
      try { data = JSON.parse(data) } catch {}
      this._deliver('reset', data, event.lastEventId)
    }))
    es.addEventListener('open', mine(() => {
      opened = true
      this._failures = 0
      this._blocked = 0
      if (probe) {
        probe = false // from here on, an ordinary stream
        this._stopPolling()
        this._log.info('stream back: polling ends')
      }
      this._setState('open')
      this.dispatchEvent(new Event('open'))
      this._armStall()
    }))
    // An error with readyState CLOSED: an answer that is not a stream (a 502,
    // another content type), which EventSource does not retry. With
    // CONNECTING: a network error (the server out of reach, or a cut).
    es.addEventListener('error', mine((event) => {
      const refused = !opened && es.readyState === 2
      this._failed(probe, opened, (event && event.message) || (opened ? 'stream ended' : refused ? 'stream refused' : 'stream failed'), refused)
    }))
    // Not open within stallTimeoutMs (a proxy that holds the request): a failed attempt.
    this._armStall(probe ? Math.min(this._o.stallTimeoutMs, this._o.pollIntervalMs) : undefined)
  }

  /**
   * A stream failed or ended. blocked: refused or held, what a proxy that
   * blocks or buffers streams does; after maxRetries of those in a row (and
   * no open), polling is tried. Network errors (a server down, restarting,
   * no network) only back off: polling would not reach it either.
   */
  _failed (probe, opened, message, blocked = false) {
    this._closeStream()
    this._error(message, { source: 'stream' })
    if (probe) {
      this._log.info(`stream probe failed: polling goes on, next probe in ${this._o.streamRetryMs} ms`)
      this._startPolling()
      return
    }
    // A stream that opened and then ended is not a failed attempt: the counts
    // are of attempts in a row that never opened.
    if (!opened) {
      this._failures++
      if (blocked) this._blocked++
    }
    if (this._poll && this._blocked >= this._o.maxRetries) return this._tryPolling()
    this._retry()
  }

  /** The next stream attempt, after a full-jitter backoff. */
  _retry () {
    const attempt = this._failures + 1
    const delay = backoff(attempt, { minRetryMs: this._o.minRetryMs, maxRetryMs: this._o.maxRetryMs, random: this._random })
    this._setState('reconnecting')
    this._log.info(`reconnecting in ${delay} ms (attempt ${attempt}) from ${this.lastEventId || 'the latest position'}`)
    this._later(delay, () => this._connect(false))
  }

  /**
   * maxRetries stream attempts refused or held: poll if the catch-up endpoint answers.
   * If it fails too, the server is out of reach (down, restarting, no
   * network), which polling cannot help: streams are retried.
   */
  async _tryPolling () {
    this._setState('reconnecting')
    this._stopPolling()
    const run = new AbortController()
    this._pollRun = run
    let body
    try {
      body = await this._read(this.lastEventId, 0, run.signal)
    } catch (err) {
      if (run.signal.aborted) return
      this._pollRun = null
      this._error(`poll failed: ${err.message}`, { source: 'poll' })
      return this._retry()
    }
    if (run.signal.aborted) return
    this._log.warn(`${this._blocked} stream attempts refused or held: polling ${this._poll}`)
    this._startPolling(body || undefined)
  }

  /**
   * The stall timer. Before open: the attempt failed. Once open, on a stream
   * that has shown position events: a stall. Without them, heartbeats are
   * comments EventSource does not show, so silence alone proves nothing; a
   * catch-up read says whether the stream has missed events (a buffering
   * proxy): then polling takes over.
   */
  _armStall (ms = this._o.stallTimeoutMs) {
    if (this._stall) this._clear(this._stall)
    this._stall = null
    if (!(ms > 0)) return
    const es = this._es
    this._stall = this._later(ms, () => {
      this._stall = null
      if (this._es !== es) return
      if (es.readyState !== 1) return this._failed(this.state === 'polling', false, `stream not open after ${ms} ms`, true)
      if (this._positions) return this._stalled(null)
      if (this._poll) this._checkStall(es)
    })
  }

  async _checkStall (es) {
    const since = this.lastEventId
    const body = await this._read(since, 0, null).catch(() => null)
    if (this._es !== es || this.lastEventId !== since) return
    if (body && (body.reset || body.events.length > 0)) {
      this._stalled(body)
    } else {
      this._armStall()
    }
  }

  /**
   * An open stream that delivers nothing: with positions (a heartbeat at
   * least every heartbeat interval), silence itself; without, events waiting
   * at the catch-up endpoint (body). Polls, or reconnects without `poll`.
   */
  _stalled (body) {
    const message = `stream silent for ${this._o.stallTimeoutMs} ms`
    if (!this._poll) return this._failed(false, true, message)
    this._closeStream()
    this._error(`${message}: polling ${this._poll}`, { source: 'stream' })
    this._failures = 0
    this._blocked = 0
    this._startPolling(body)
  }

  /**
   * GET poll?since=&wait=: the body ({ events, cursor, reset? }), or null
   * for 204. A read (answer and body) that takes longer than its wait plus
   * stallTimeoutMs is aborted and fails: a proxy that holds it cannot stall
   * the client.
   */
  async _read (since, waitSeconds, signal) {
    const ms = (waitSeconds || 0) * 1000 + this._o.stallTimeoutMs
    const ac = new AbortController()
    const onAbort = () => ac.abort()
    if (signal) {
      if (signal.aborted) ac.abort()
      signal.addEventListener('abort', onAbort)
    }
    let timedOut = false
    const timer = this._later(ms, () => { timedOut = true; ac.abort() })
    try {
      const res = await this._fetch(withQuery(this._poll, { since, wait: waitSeconds || undefined }), { signal: ac.signal, headers: { accept: 'application/json' }, cache: 'no-store' })
      if (res.status === 204) return null
      if (!res.ok) throw new Error(`catch-up answered ${res.status}`)
      return await res.json()
    } catch (err) {
      throw timedOut ? new Error(`catch-up did not answer within ${ms} ms`) : err
    } finally {
      this._clear(timer)
      if (signal) signal.removeEventListener('abort', onAbort)
    }
  }

  _apply (body) {
    if (!body) return
    if (body.reset) this._deliver('reset', body.reset, body.cursor)
    for (const e of body.events) this._deliver(e.event || 'message', e.data, e.id)
    if (body.cursor) this.lastEventId = body.cursor
  }

  /**
   * Polls until a stream probe opens; first: a body already read. A poll
   * that fails ends the polling: the state is `reconnecting` and streams are
   * tried again (then the catch-up endpoint, as after maxRetries).
   */
  _startPolling (first) {
    this._setState('polling')
    this._stopPolling()
    const run = new AbortController()
    this._pollRun = run
    const probe = this._later(this._o.streamRetryMs, () => {
      if (this._pollRun !== run) return
      this._stopPolling()
      this._connect(true)
    })
    const loop = async () => {
      if (first) this._apply(first)
      while (!run.signal.aborted) {
        try {
          const body = await this._read(this.lastEventId, this._o.longPoll ? this._o.pollWaitSeconds : 0, run.signal)
          if (run.signal.aborted) return
          this._apply(body)
        } catch (err) {
          if (run.signal.aborted) return
          this._stopPolling()
          this._error(`poll failed: ${err.message}`, { source: 'poll' })
          return this._retry()
        }
        if (!this._o.longPoll) {
          await new Promise((resolve) => {
            const done = () => {
              this._clear(timer)
              run.signal.removeEventListener('abort', done)
              resolve()
            }
            const timer = this._later(this._o.pollIntervalMs, done)
            run.signal.addEventListener('abort', done)
          })
        }
      }
    }
    run.signal.addEventListener('abort', () => this._clear(probe), { once: true })
    loop()
  }

  _stopPolling () {
    if (!this._pollRun) return
    this._pollRun.abort()
    this._pollRun = null
  }

  _offline () {
    if (this.state === 'closed') return
    this._log.warn('offline: waiting for the network')
    this._stop()
    this._setState('reconnecting')
  }

  _online () {
    if (this.state === 'closed' || this.state === 'open') return
    this._log.info('online: reconnecting now')
    this._stop()
    this._failures = 0
    this._blocked = 0
    this._connect(false)
  }
}
