import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'

/** Every `code` an SseError can carry (lib/errors.js, README "Error codes"). */
export type ErrorCode =
  | 'ERR_SSE_INVALID_ARGUMENT'
  | 'ERR_SSE_INVALID_TOPIC'
  | 'ERR_SSE_INVALID_EVENT'
  | 'ERR_SSE_INVALID_ID'
  | 'ERR_SSE_INVALID_RETRY'
  | 'ERR_SSE_INVALID_DATA'
  | 'ERR_SSE_DATA_TOO_LARGE'
  | 'ERR_SSE_TOO_MANY_SUBSCRIPTIONS'
  | 'ERR_SSE_UNKNOWN_CONNECTION'
  | 'ERR_SSE_TOO_MANY_CONNECTIONS'
  | 'ERR_SSE_CLOSED'
  | 'ERR_SSE_TOO_MANY_OPTION_SUBSCRIPTIONS'
  | 'ERR_SSE_CLIENT_FILTER_BUDGET'
  | 'ERR_SSE_CLIENT_MEMORY_BUDGET'
  | 'ERR_SSE_TOO_MANY_DISTINCT_SUBSCRIPTIONS'
  | 'ERR_SSE_SUBSCRIPTION_MEMORY_BUDGET'
  | 'ERR_SSE_TOO_MANY_IP_OPTION_SUBSCRIPTIONS'
  | 'ERR_SSE_IP_FILTER_BUDGET'
  | 'ERR_SSE_IP_MEMORY_BUDGET'
  | 'ERR_SSE_TOO_MANY_IP_SUBSCRIPTIONS'
  | 'ERR_SSE_INVALID_FILTER'
  | 'ERR_SSE_NATIVE_LOAD'
  | 'ERR_SSE_MISSING_DEPENDENCY'
  | 'ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP'
  | 'ERR_SSE_QUEUE_FULL'
  | 'ERR_SSE_LISTEN'
  | 'ERR_SSE_BAD_REQUEST'
  | 'ERR_SSE_NOT_FOUND'
  | 'ERR_SSE_UNAUTHORIZED'
  | 'ERR_SSE_FORBIDDEN'
  | 'ERR_SSE_AUTHORIZE'

/** The one error class of the package: every failure has a stable `code`. */
export class SseError extends Error {
  constructor (code: ErrorCode, message: string)
  readonly name: 'SseError'
  readonly code: ErrorCode
}

/** Every code with what it means. */
export const codes: Readonly<Record<ErrorCode, string>>

export interface HubOptions {
  /** I/O threads, 1 to 64. Default: available cores - 1, between 1 and 4. */
  threads?: number
  /** Comment line sent on connections idle this long; 0 disables. Default 15000. */
  heartbeatMs?: number
  /** Bytes queued per connection before it is closed as `slow`; also the largest event accepted. At least 1024. Default 1 MiB. */
  maxQueueBytes?: number
  /** Subscriptions per connection, 1 to 1e6. Default 1000. */
  maxSubscriptions?: number
  /** Connections per hub, 1 to 2097152. Default 100000. */
  maxConnections?: number
  /** Connections per client address (`accept()`'s `ip`, else the socket's); past it accept() throws ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP (statusCode 429). Behind a proxy pass `ip`. 0 = no limit. Default 256. */
  maxConnectionsPerIp?: number
  /** SO_SNDBUF for taken-over sockets; 0 keeps the kernel default. Default 128 KiB. */
  sndbufBytes?: number
  /** How long a closing or kicked stream may take to receive its last bytes. Default 5000. */
  closeTimeoutMs?: number
  /**
   * TCP keepalive on taken-over sockets: first probe after this long idle, then every keepAliveMs / 3 (at least 1 s),
   * 3 probes; on JS-transport streams (TLS, HTTP/2, transport 'js') the first probe only (Node's setKeepAlive), the rest
   * the kernel's defaults. At most 32767000 (the kernel's limit); 0 = kernel default. Default 30000.
   */
  keepAliveMs?: number
  /** TCP_USER_TIMEOUT (Linux) on taken-over sockets only (Node has no API for it on JS-transport streams): reset once data stays unacknowledged this long; 0 = kernel default. Default 60000. */
  tcpUserTimeoutMs?: number
  /** Per I/O thread: commands waiting for it; past it publish/broadcast/send throw ERR_SSE_QUEUE_FULL and queue nothing. 0 = no bound. Default 100000. */
  maxPendingCommands?: number
  /** Per I/O thread: encoded event bytes waiting for it; same behaviour. 0 = no bound. Default 64 MiB. */
  maxPendingBytes?: number
  /** `auto` takes plain HTTP/1.x sockets over; `js` keeps every stream on the JS transport. Default `auto`. */
  transport?: 'auto' | 'js'
  /**
   * History and resume (README, "History and resume"): `true` for the defaults, an object to set them, `false`
   * (default) for none. With history on, every publish/broadcast gets the wire id `<epoch>-<seq>` (unless
   * the publisher gives one), and a stream resumes after its `Last-Event-ID`.
   */
  history?: boolean | HistoryOptions
  /**
   * A Redis bus (`new RedisBus()` from `sse-fanout/redis`; docs/redis.md): many instances as one hub. Needs
   * history. While the bus is up, publish/broadcast go through Redis and return null (the id comes back with
   * the event); while it is down they are delivered here and queued for Redis.
   */
  bus?: import('./redis/index').RedisBus
  /**
   * Compressed streams (README, "Compression"): `true` for the defaults, an object to set them, `false`
   * (default) for none. A taken-over stream whose request accepts gzip or deflate (Accept-Encoding) is sent
   * compressed; each event is compressed once, and the same bytes go to every compressed stream.
   */
  compression?: boolean | CompressionOptions
}

export interface CompressionOptions {
  /** zlib level, 1 (fastest) to 9 (smallest). Default 6. */
  level?: number
  /** Events smaller than this many encoded bytes are sent stored (uncompressed) inside the stream. Default 128. */
  minBytes?: number
}

export interface HistoryOptions {
  /** Events held. 0 turns history off. Default 10000. */
  maxEvents?: number
  /** Encoded frame bytes held. 0 turns history off. Default 16 MiB. */
  maxBytes?: number
  /** Age of the oldest event held (ms). 0 turns history off. Default 300000. */
  maxAgeMs?: number
  /** A resume that would replay more matching events (or more than maxQueueBytes) gets a reset. Default 1000. */
  maxReplayEvents?: number
  /** The event name of the in-band reset. Default `reset`. */
  resetEvent?: string
  /**
   * Position frames as visible events: `true` (the name `sse-position`, what
   * sse-fanout/client listens for) or an event name. A stream then gets
   * `event: <name>`, `id: <cursor>` and empty data after its replay and in
   * each heartbeat, so an EventSource sees its place move on quiet streams.
   * Default `false`: id-only frames and `: ` comment heartbeats.
   */
  positionEvent?: boolean | string
  /** The longest a long-poll waits (ms); a larger `wait` is clamped. Default 25000. */
  maxPollWaitMs?: number
  /** Events in one catch-up answer; more page on through its cursor. Default 1000. */
  maxPollEvents?: number
  /** Long-polls waiting at once; past it a poll answers 503. Default 10000. */
  maxPollWaiters?: number
  /** The epoch of the ids: 1 to 32 of [A-Za-z0-9]. Default: 8 random characters made by the Hub. */
  epoch?: string
}

/** Why a stream or a poll could not resume where it asked (the `reset` event's `reason`). */
export type ResetReason = 'unknown' | 'epoch' | 'expired' | 'limit'

/** The data of the in-band `reset` event (JSON), and `reset` of a catch-up answer. */
export interface ResetInfo {
  reason: ResetReason
  /** The cursor asked for, re-formatted by the hub (`expired`, `limit`); null otherwise (nothing is echoed). */
  requested: string | null
  /** The id of the oldest event held, or null when the history is empty. */
  oldest: string | null
  /** The current position; also the reset event's own id. */
  latest: string
}

/**
 * The options in effect: `history` resolved to its limits (with the epoch), or null when off; `compression`
 * to its settings, or null when off.
 */
export type ResolvedHubOptions = Readonly<Required<Omit<HubOptions, 'history' | 'compression'>>> & {
  readonly history: Readonly<Required<HistoryOptions>> | null
  readonly compression: Readonly<Required<CompressionOptions>> | null
}

export interface AcceptOptions {
  /** Exact topics, or prefix patterns ending in `/*`. */
  topics?: string | string[]
  /** The user this connection belongs to; targets of `publish(..., { users })`. */
  user?: string | null
  /**
   * Reconnection delay sent to the client as `retry:` (ms, a non-negative integer), or a range from which each
   * connection draws its own, so a reconnect storm spreads out.
   */
  retry?: number | { min: number, max: number }
  /**
   * With history on: the cursor to resume after. Default: the `Last-Event-ID` header, else the query's
   * `lastEventId`, `last_event_id` or `lastEventID`.
   */
  lastEventId?: string
  /** `false`: this stream takes no part in history (no replay, no position frames). Default true. */
  history?: boolean
  /** End the stream (reason `timeout`) after this long without an event; 0 = never. Checked about once a second. */
  idleTimeoutMs?: number
  /** End the stream (reason `timeout`) this long after it was accepted; 0 = never. */
  maxLifetimeMs?: number
  /**
   * An SSE id written as `id:<streamId>` before every event on this connection,
   * as its own small write (PocketBase sends its client id this way). At most
   * 256 bytes, no CR, LF or NUL. An event's own `id` comes after it and wins.
   */
  streamId?: string
  /** The client's address for `maxConnectionsPerIp` (behind a proxy); default: the socket's remote address. */
  ip?: string
  /**
   * Compress this stream when its request accepts gzip or deflate (`true`, with the hub's settings or the
   * defaults), or never (`false`). Default: as the hub's `compression` option says.
   */
  compress?: boolean
}

/** A request as the native listener's `authorize` hook sees it: a plain object, nothing of Node's. */
export interface ListenRequest {
  readonly token: number
  readonly method: 'GET'
  /** The target before `?`, as sent. */
  readonly path: string
  /** The raw query after `?` (`''` when none); `new URLSearchParams(request.query)` reads it. */
  readonly query: string
  readonly httpVersion: '1.0' | '1.1'
  /** Lower-cased names; a repeated field's values joined with `', '`. */
  readonly headers: Readonly<Record<string, string>>
  readonly remoteAddress: string
  readonly remotePort: number
}

/** What `authorize` answers: the stream's topics and user, or a refusal with an HTTP status (4xx/5xx). */
export type ListenGrant =
  | { topics?: string | string[], user?: string | null, lastEventId?: string, status?: undefined }
  | { status: number, code?: string, message?: string }

/** One verification key of the token path: an HS256 secret, or an RS256 (2048 bits or more) / ES256 (P-256) public key as PEM or KeyObject; never a private key. */
export interface ListenTokenKey {
  algorithm: 'HS256' | 'RS256' | 'ES256'
  key: string | Buffer | Uint8Array | import('node:crypto').KeyObject
  /** Compared with the token header's `kid` when both have one. */
  kid?: string
}

/** Where tokens come from and what their claims grant (the Mercure defaults). */
export interface ListenTokenClaims {
  /** The cookie holding a token; `null`: none. Default `'mercureAuthorization'`. */
  cookie?: string | null
  /** The query parameter holding a token; `null`: none. Default `'authorization'`. */
  query?: string | null
  /** The topic selectors' claim, a dotted path to an array of strings (`'*'`, exact topics, URI templates). Default `'mercure.subscribe'` (the `https://mercure.rocks/` object too). */
  claim?: string
  /** The claim naming the stream's user (`hub.publish(..., { users })`); `null`: anonymous streams. Default `'sub'`. */
  userClaim?: string | null
  /** Seconds of clock skew allowed on `exp` and `nbf`. Default 0. */
  clockToleranceSec?: number
  /** Verified tokens each I/O thread keeps, so a reconnecting token is not verified again while its `exp` and `nbf` hold (at most 1 KiB each on average); 0: none. Default 1024, at most 65536. */
  cache?: number
}

/** The native token path: JWTs verified on the I/O threads, no JS per connection. At most 8 keys (rotation). */
export type ListenToken = ListenTokenClaims & (ListenTokenKey | { keys: ListenTokenKey[] })

export type ListenOptions = ListenCommonOptions & (
  | {
    /**
     * Called on the JS thread, in batches per I/O loop turn, with each stream request (a plain object); answers (or
     * resolves to) the stream's topics and user, or `{ status }` to refuse. Throwing answers 500 (or the error's own
     * 4xx `statusCode`). Without it, topics come from the query and the streams are anonymous, opened with no JS at all.
     */
    authorize?: (request: ListenRequest) => ListenGrant | null | undefined | Promise<ListenGrant | null | undefined>
    token?: undefined
  }
  | {
    /**
     * JWT auth verified natively (HS256, RS256, ES256), exclusive with `authorize`: the token from `Authorization:
     * Bearer`, else the query, else the cookie; each requested topic must match a selector of the claim (none
     * requested: the claim's exact topics). 401 (no or bad token), 403 (a topic not granted), 400 (none to subscribe).
     */
    token: ListenToken
    authorize?: undefined
  }
)

export interface ListenCommonOptions {
  /** Default 0: a free port (`listener.port`). */
  port?: number
  /** An IP address (`'127.0.0.1'`, `'::'`, `'0.0.0.0'`) or `'localhost'`. Default `'127.0.0.1'`. */
  host?: string
  /** The one path served (anything else 404). Default `'/events'`. */
  path?: string
  /** The query parameter naming the topics, comma-separated and repeatable (`?topics=a,b&topics=c`). Default `'topics'`. */
  topicsParam?: string
  /** Topics one request may name (also capped by `maxSubscriptions`). Default 64. */
  maxTopics?: number
  /** As `accept()`'s: a delay or a `{ min, max }` range each stream draws from. */
  retry?: number | { min: number, max: number }
  idleTimeoutMs?: number
  maxLifetimeMs?: number
  /** `false`: no replay, no position frames for these streams. Default true (with the hub's history). */
  history?: boolean
  /** gzip/deflate by Accept-Encoding. Default: as the hub's `compression` option. */
  compress?: boolean
  /** CORS: `true` (any origin) or `{ origin: '*' | origin | origin[], credentials?, maxAge? (s, default 600) }` (credentials need named origins, not `'*'`); preflights answered natively. Default off. */
  cors?: boolean | { origin?: string | string[], credentials?: boolean, maxAge?: number }
  /** Connections per client address, those whose request is still being read included; past it 429 before any byte is read. 0 = none. Default: the hub's `maxConnectionsPerIp`. */
  maxConnectionsPerIp?: number
  /** Connections accepted per second over all threads (the rest wait in the kernel's backlog). 0 = no limit. Default 0. */
  acceptRate?: number
  /** From accept (or the previous answer) to a complete request head; slower clients are closed. Default 10000. */
  headerTimeoutMs?: number
  /** A request head's size (431 past it). Default 8192. */
  maxHeaderBytes?: number
  /** Header fields in one request (431 past it). Default 64. */
  maxHeaders?: number
  /** Requests being read per I/O thread; accepting pauses at it. Default 4096. */
  maxPendingPerThread?: number
  /** How long a request may wait for `authorize`'s answer; past it 503 `ERR_SSE_AUTHORIZE`. Default 10000. */
  authorizeTimeoutMs?: number
  /**
   * Connections the kernel may hold before they are accepted, over all the listener's sockets: each socket's queue
   * is capped at `net.core.somaxconn`, so the listener opens as many `SO_REUSEPORT` sockets per I/O thread as this
   * needs (at most 8). Default 16384.
   */
  backlog?: number
}

export interface ListenerStats {
  authorizeTimeouts: number
  accepted: number
  streams: number
  refused: number
  refusedPerIp: number
  badRequests: number
  headerTimeouts: number
  preflights: number
  /** Requests the token path refused (401, 403, 400). */
  tokenRefused: number
  /** Token requests answered from the I/O threads' caches of verified tokens (`token.cache`). */
  tokenCacheHits: number
  pending: number
  authorizing: number
  addresses: number
  /** Listening sockets over all threads (`backlog`). */
  sockets: number
}

/** The native listener (`hub.listen()`). */
export class Listener extends EventEmitter<{ close: [] }> {
  readonly port: number
  address (): { address: string, port: number, family: 'IPv4' | 'IPv6' }
  stats (): ListenerStats
  /** Stops accepting (open streams stay with the hub); resolves once every I/O thread's socket is closed. */
  close (): Promise<void>
  /** A listening listener keeps the process alive; `unref()` lets it exit. */
  unref (): this
  ref (): this
}

/** What `accept()` returns and `connect` listeners receive (frozen). */
export interface Connection {
  readonly id: number
  /** `native` when the socket was taken over, `js` otherwise (TLS, HTTP/2, `transport: 'js'`). */
  readonly transport: 'native' | 'js'
  readonly user: string | undefined
}

export interface EventOptions {
  /** The SSE `event:` name. Must not contain CR, LF or NUL. */
  event?: string
  /** The SSE `id:`. Must not contain CR, LF or NUL. */
  id?: string
  /**
   * `false`: compressed streams get this event stored, not compressed, so no part of it shares a compressor
   * with anything (keep a secret and text an attacker chooses apart). Default true. Refused with a Redis bus.
   */
  compress?: boolean
}

export interface PublishOptions extends EventOptions {
  /** Deliver only to connections accepted for one of these users. */
  users?: string[]
}

/**
 * Why a connection ended: `client` (it went away), `slow` (it fell
 * `maxQueueBytes` behind), `kicked`, `error` (a socket error), `shutdown` (`close()`),
 * `timeout` (past the connection's `idleTimeoutMs` or `maxLifetimeMs`).
 */
export type DisconnectReason = 'client' | 'slow' | 'kicked' | 'error' | 'shutdown' | 'timeout'

/** What `disconnect` listeners receive. */
export interface DisconnectInfo {
  id: number
  reason: DisconnectReason
}

export interface ThreadStats {
  connections: number
  subscriptions: number
  published: number
  delivered: number
  bytesWritten: number
  slow: number
  queueBytes: number
  heartbeats: number
  /** Commands waiting for the thread (see maxPendingCommands). */
  pendingCommands: number
  /** Event bytes those commands hold (see maxPendingBytes). */
  pendingBytes: number
}

export interface HubStats extends ThreadStats {
  /** Connections whose socket was taken over. */
  native: number
  /** Connections on the JS transport. */
  js: number
  users: number
  /** Encoded frames still referenced by some queue. */
  frames: number
  /** publish/broadcast/send calls refused with ERR_SSE_QUEUE_FULL. */
  queueFull: number
  /** Streams refused because the process had no file descriptor left (ERR_SSE_TOO_MANY_CONNECTIONS, 503). */
  outOfFds: number
  /** Per-I/O-thread figures. */
  threads: ThreadStats[]
  /** The history, or null when it is off. */
  history: HistoryStats | null
  /** The Redis bus (options.bus only). */
  bus?: import('./redis/index').BusStats
  /** Compressed streams: how many are open, and the bytes of what they were sent before and after compression. */
  compression: { connections: number, bytesIn: number, bytesOut: number }
}

export interface HistoryStats {
  epoch: string
  /** Events held, and their encoded bytes. */
  events: number
  bytes: number
  /** Ids of the oldest event held (null when empty) and of the latest published. */
  oldest: string | null
  latest: string
  /** Streams that resumed from the history, and the events replayed to them. */
  replays: number
  replayedEvents: number
  /** Resets (streams and polls) by reason. */
  resets: Record<ResetReason, number>
  /** Rebases (sequences from outside: the Redis bus), each with one reset to every history stream. */
  rebases: number
  /** Catch-up reads. */
  polls: number
}

/**
 * Event data: a string or bytes are sent as they are; anything else is
 * JSON-encoded once (`undefined`, functions and symbols are refused at run time).
 */
export type EventData = string | Uint8Array | object | number | boolean | null

/**
 * The hub's events, as an event map for `EventEmitter<T>` (@types/node since
 * early 2024): `on`, `once`, `off`, `emit`, ... accept only these names, and
 * listeners get these argument types.
 */
export interface HubEvents {
  /** Emitted inside `accept()`. */
  connect: [connection: Connection]
  disconnect: [info: DisconnectInfo]
}

export interface CatchUpOptions {
  /** Exact topics, or prefix patterns ending in `/*`, as for `accept()`. */
  topics?: string | string[]
  /** Private events (`publish(..., { users })`) are returned only to their user. */
  user?: string | null
  /** The cursor: an event id (`<epoch>-<seq>`, or an explicit id still in the history). Absent: the latest position. */
  since?: string | null
  /** When nothing matches now, wait this long for a matching event (ms; capped at the history's `maxPollWaitMs`). Default 0. */
  waitMs?: number
  /** Ends the wait early; the promise then resolves with what there is. */
  signal?: AbortSignal
}

/** One event of a catch-up, as an EventSource would deliver it. */
export interface CatchUpEvent {
  /** The wire id (`<epoch>-<seq>`, or the publisher's explicit id). */
  id: string
  /** The event name, `message` when it has none. */
  event: string
  /** The data, its lines joined by `\n`. */
  data: string
  /** The topic it was published on; null for a broadcast. */
  topic: string | null
}

export interface CatchUpResult {
  /** In publish order; at most the history's `maxPollEvents` (then `cursor` pages on). */
  events: CatchUpEvent[]
  /** The next `since` (`<epoch>-<seq>`). */
  cursor: string
  /** Present when `since` could not be placed: `events` is empty and `cursor` is the latest position. */
  reset?: ResetInfo
}

/** What `poll()` takes from the app (the cursor and wait come from the query). */
export interface PollOptions {
  topics?: string | string[]
  user?: string | null
}

export class Hub extends EventEmitter<HubEvents> {
  /** Starts the I/O threads. Throws ERR_SSE_INVALID_ARGUMENT for a bad option. */
  constructor (options?: HubOptions)
  /** The options in effect, defaults filled in (frozen). */
  readonly options: ResolvedHubOptions
  /** True once `close()` was called. */
  readonly closed: boolean
  /**
   * Serves SSE on a port of its own through the native listener (docs/listener.md): the I/O threads accept, parse
   * and open the streams, with no JS object per connection. Rejects with ERR_SSE_INVALID_ARGUMENT, ERR_SSE_LISTEN
   * (the port is in use, ...) or ERR_SSE_CLOSED. `hub.close()` closes it too.
   */
  listen (options?: ListenOptions): Promise<Listener>
  /** Turns the request into an SSE stream owned by the hub; do not write to `res` afterwards. */
  accept (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, options?: AcceptOptions): Connection
  /** Adds subscriptions; all or nothing (see `maxSubscriptions`). */
  subscribe (connectionId: number, topics: string | string[]): void
  unsubscribe (connectionId: number, topics: string | string[]): void
  /** The connection's subscriptions (sorted), or undefined for an unknown id. */
  subscriptions (connectionId: number): string[] | undefined
  /** True while the id names an open connection of this hub. */
  has (connectionId: number): boolean
  /**
   * One event to every connection with a matching subscription. Returns its wire id: with history on always
   * (`<epoch>-<seq>`, or `options.id`), otherwise `options.id`; null when a Redis bus sent it to Redis.
   */
  publish (topic: string, data: EventData, options?: PublishOptions): string | null | undefined
  /** One event to every connection (or to those of `options.users`). Returns its id, as `publish`. */
  broadcast (data: EventData, options?: PublishOptions): string | null | undefined
  /** One event to one connection. */
  send (connectionId: number, data: EventData, options?: EventOptions): void
  /** Ends one stream after what is queued for it; `disconnect` says `kicked`. */
  kick (connectionId: number): void
  stats (): HubStats
  /**
   * The events after `options.since` that a stream with these topics and user would get (history on), waiting up to
   * `waitMs` for one when none matches now. Resolves with null when there is nothing new and the cursor equals `since`.
   * Rejects with an SseError: ERR_SSE_INVALID_ARGUMENT / ERR_SSE_INVALID_TOPIC (statusCode 400), ERR_SSE_CLOSED (503),
   * ERR_SSE_TOO_MANY_CONNECTIONS (503) when `maxPollWaiters` long-polls are waiting already.
   */
  catchUp (options?: CatchUpOptions): Promise<CatchUpResult | null>
  /**
   * A node:http handler over `catchUp()`: `since` and `wait` (whole seconds) from the query; answers 200 (JSON
   * CatchUpResult), 204, 400 or 503 (JSON `{ error, message }`). Resolves once answered; never rejects.
   */
  poll (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, options?: PollOptions): Promise<void>
  /** Flushes, ends every stream and stops the I/O threads. Idempotent. */
  close (): Promise<void>
}

/** The default options (`threads` as computed on this machine). */
export const defaults: Readonly<Required<HubOptions>>

/**
 * Serves the browser module (`sse-fanout/client`) for node:http at whatever path the app routes to it, so a page can
 * `import { SseClient } from '/sse-fanout-client.js'` without a bundler. GET and HEAD: 200 with
 * `content-type: text/javascript; charset=utf-8`, a strong ETag, `cache-control: no-cache` (unless the app set one),
 * `x-content-type-options: nosniff`; 304 when If-None-Match names the ETag; 405 (Allow: GET, HEAD) for other methods;
 * 500 if the file cannot be read. The file is read once. Resolves once answered; never rejects.
 */
export function serveClient (req: IncomingMessage, res: ServerResponse): Promise<void>
