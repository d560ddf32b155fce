// Types of `sse-fanout/redis`: the Redis bus (docs/redis.md). @redis/client is
// an optional peer dependency, loaded when a RedisBus is made; nothing here
// refers to its types.
import { EventEmitter } from 'node:events'
import type { EventData, PublishOptions } from '../index'

export type BusState = 'connecting' | 'up' | 'down' | 'closed'

export interface RedisBusOptions {
  /** `redis://` or `rediss://` URL. Default: @redis/client's (redis://localhost:6379). */
  url?: string
  /** The hub's key prefix; must hold a Redis Cluster hash tag (`app:{hub}`). Default `sse-fanout:{default}`. */
  prefix?: string
  /** This instance's name in origin markers, 1 to 64 of `[A-Za-z0-9_.-]`. Default: 8 random characters. */
  instanceId?: string
  /** Entries per XREAD / XRANGE (1 to 4096). Default 512. */
  readCount?: number
  /** XREAD BLOCK, ms. Default 2000. */
  blockMs?: number
  /** PING interval, ms. Default 1000. */
  pingIntervalMs?: number
  /** A command (PING, FCALL, connect) unanswered this long means Redis is down, ms. Default 2000. */
  timeoutMs?: number
  /** Events the outbox holds while Redis is down (also the bound on unanswered publishes). Default 10000. */
  maxOutboxEvents?: number
  /** Bytes the outbox holds. Default 16 MiB. */
  maxOutboxBytes?: number
  /** Reconnect backoff (capped full jitter), ms. Defaults 100 and 5000. */
  minReconnectMs?: number
  maxReconnectMs?: number
  /** Largest event data, bytes. Default 1 MiB. */
  maxData?: number
  /** The stream's bound (XADD MAXLEN ~). Default 10000. */
  maxLen?: number
}

export interface BusStats {
  state: BusState
  instanceId: string
  /** The Redis epoch and the last seq read (null before the first entry). */
  epoch: string | null
  seq: number
  /** Where the hub's history is (a local epoch while down). */
  position: { epoch: string, seq: number } | null
  outbox: { events: number, bytes: number, dropped: number }
  /** Publishes sent to Redis and not answered yet. */
  inflight: number
  published: number
  read: number
  rejected: number
  rebases: number
  reconnects: number
  /** Times Redis lost its data while up and the stream was read again from its start. */
  resyncs: number
  lastError: string | null
}

export interface BusStateEvent {
  state: BusState
  previous: BusState
  reason: string
}

export declare class RedisBus extends EventEmitter {
  constructor (options?: RedisBusOptions)
  readonly options: Readonly<Required<Omit<RedisBusOptions, 'url'>>> & { url: string | undefined }
  readonly state: BusState
  readonly instanceId: string
  /** Resolves once up (connected, caught up, outbox flushed); rejects when a connect attempt fails first, or once closed. */
  ready (): Promise<void>
  /** hub.publish() for a caller that wants the id: the Redis id, a local id while down, null when queued for Redis. */
  publish (topic: string, data: EventData, options?: PublishOptions): Promise<string | null>
  /** hub.broadcast(), as publish(). */
  broadcast (data: EventData, options?: PublishOptions): Promise<string | null>
  stats (): BusStats
  /** Clears every timer and destroys both Redis connections. Idempotent; hub.close() calls it. */
  close (): Promise<void>
  on (event: 'state', listener: (event: BusStateEvent) => void): this
  on (event: 'warning', listener: (event: { message: string }) => void): this
  on (event: string | symbol, listener: (...args: any[]) => void): this
}

export declare const DEFAULTS: Readonly<Required<Omit<RedisBusOptions, 'url' | 'instanceId'>>>
export declare const DEFAULT_PREFIX: string
export declare const FORMAT_VERSION: string
export declare const FUNCTION_NAME: string
export declare const LIMITS: Readonly<{
  topicBytes: number
  eventBytes: number
  idBytes: number
  originBytes: number
  maxDataBytes: number
  maxDataCeiling: number
  maxLen: number
}>

export interface BusEvent {
  topic?: string | null
  data: string | Uint8Array
  event?: string
  id?: string
  users?: string[]
  origin?: string
}

export interface DecodedEntry {
  epoch: string
  topic: string | null
  data: string | Buffer
  event?: string
  id?: string
  users?: string[]
  origin?: string
}

export declare class RejectedEntry {
  readonly reason: string
  readonly version: string | undefined
}

/** The keys of a hub: `<prefix>:meta`, `<prefix>:stream`. */
export declare function keysFor (prefix?: string): Readonly<{ meta: string, stream: string }>
/** The whole FCALL for client.sendCommand(). */
export declare function fcallCommand (keys: { meta: string, stream: string }, event: BusEvent, options: { maxLen: number, maxData?: number }): Array<string | Buffer>
/** A stream entry's fields as an event, or a RejectedEntry. */
export declare function decodeEntry (fields: unknown, options?: { maxData?: number }): DecodedEntry | RejectedEntry
/** Loads the Redis Function library (FUNCTION LOAD) unless Redis holds it or a newer one. */
export declare function loadFunction (client: { sendCommand (args: ReadonlyArray<string | Buffer>): Promise<unknown> }): Promise<'loaded' | 'replaced' | 'present' | 'newer'>
