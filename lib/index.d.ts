import { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Http2ServerRequest, Http2ServerResponse } from 'node:http2'

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
  | 'ERR_SSE_NATIVE_LOAD'

export class SseError extends Error {
  readonly name: 'SseError'
  readonly code: ErrorCode
}

export const codes: Readonly<Record<ErrorCode, string>>

export interface HubOptions {
  /** I/O threads. Default: available cores - 1, between 1 and 4. */
  threads?: number
  /** Comment line sent on connections idle this long; 0 disables. Default 15000. */
  heartbeatMs?: number
  /** Bytes queued per connection before it is closed as `slow`. Default 1 MiB. */
  maxQueueBytes?: number
  /** Subscriptions per connection. Default 1000. */
  maxSubscriptions?: number
  /** Connections per hub. Default 2097152. */
  maxConnections?: number
  /** SO_SNDBUF for taken-over sockets; 0 keeps the kernel default. Default 128 KiB. */
  sndbufBytes?: number
  /** How long a closing or kicked stream may take to receive its last bytes. Default 5000. */
  closeTimeoutMs?: number
  /** `auto` takes plain HTTP/1.x sockets over; `js` keeps every stream on the JS transport. */
  transport?: 'auto' | 'js'
}

export interface AcceptOptions {
  /** Exact topics, or prefix patterns ending in `/*`. */
  topics?: string | string[]
  /** The user this connection belongs to; targets of `publish(..., { users })`. */
  user?: string | null
  /** Reconnection delay sent to the client as `retry:` (ms). */
  retry?: number
}

export interface Connection {
  readonly id: number
  readonly transport: 'native' | 'js'
  readonly user: string | undefined
}

export interface EventOptions {
  /** The SSE `event:` name. Must not contain CR, LF or NUL. */
  event?: string
  /** The SSE `id:`. Must not contain CR, LF or NUL. */
  id?: string
}

export interface PublishOptions extends EventOptions {
  /** Deliver only to connections accepted for one of these users. */
  users?: string[]
}

export type DisconnectReason = 'client' | 'slow' | 'kicked' | 'error' | 'shutdown'

export interface ThreadStats {
  connections: number
  subscriptions: number
  published: number
  delivered: number
  bytesWritten: number
  slow: number
  queueBytes: number
  heartbeats: number
}

export interface HubStats extends ThreadStats {
  native: number
  js: number
  users: number
  frames: number
  threads: ThreadStats[]
}

export type EventData = string | Uint8Array | object | number | boolean | null

export interface HubEvents {
  connect: [Connection]
  disconnect: [{ id: number, reason: DisconnectReason }]
}

export class Hub extends EventEmitter<HubEvents> {
  constructor (options?: HubOptions)
  readonly options: Readonly<Required<HubOptions>>
  readonly closed: boolean
  accept (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse, options?: AcceptOptions): Connection
  subscribe (connectionId: number, topics: string | string[]): void
  unsubscribe (connectionId: number, topics: string | string[]): void
  subscriptions (connectionId: number): string[] | undefined
  has (connectionId: number): boolean
  publish (topic: string, data: EventData, options?: PublishOptions): void
  broadcast (data: EventData, options?: PublishOptions): void
  send (connectionId: number, data: EventData, options?: EventOptions): void
  kick (connectionId: number): void
  stats (): HubStats
  close (): Promise<void>
}

export const defaults: Readonly<Required<HubOptions>>
