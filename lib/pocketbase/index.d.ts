// Types of `sse-fanout/pocketbase`: the PocketBase realtime protocol on a Hub.
// fastify and express types are imported with `import type`; nothing is
// loaded at run time.
import type { EventEmitter } from 'node:events'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyPluginAsync } from 'fastify'
import type { RequestHandler } from 'express'
import type { DisconnectReason, Hub, HubOptions } from '../index'

/**
 * An auth record: at least `id` and `collectionId`. A record whose
 * `collectionName` is `"_superusers"` is a superuser (passes every rule).
 */
export interface AuthRecord {
  id: string
  collectionId: string
  collectionName?: string
  [field: string]: unknown
}

/** A record of a collection: at least `id`. */
export interface RecordData {
  id: string
  [field: string]: unknown
}

/**
 * A collection as `broadcastRecord()` needs it. Rules are PocketBase filter
 * strings: `null` (or absent) = superusers only, `""` = everyone.
 */
export interface CollectionInfo {
  name: string
  id?: string
  listRule?: string | null
  viewRule?: string | null
}

export type RecordAction = 'create' | 'update' | 'delete'

export interface RealtimeOptions {
  /** An existing hub to serve the streams; default: a new Hub (closed by `close()`). */
  hub?: Hub
  /**
   * Options of the hub the Realtime makes. Heartbeats keep the Hub default (15 s; PocketBase sends
   * none, the SDK ignores comments); `heartbeatMs: 0` turns them off.
   */
  hubOptions?: HubOptions
  /**
   * Called on every POST with the request (Fastify request, Express req or
   * node IncomingMessage); returns the caller's auth record or null (guest).
   */
  authenticate?: (request: any) => AuthRecord | null | undefined | Promise<AuthRecord | null | undefined>
  /**
   * The client's IP, for the same-IP check and the hub's per-IP limit; default: the request's
   * `ip` when it is a non-empty string (Fastify's `request.ip`, Express's `req.ip`, which follow
   * the app's trust-proxy setting), else the socket's remote address. Called on the GET and on every POST (with `checkIp`) with the same request
   * object `authenticate` gets (Fastify request, Express req or node IncomingMessage). Anything
   * but a non-empty string is an error: the request gets 500 and `requestError` is emitted.
   */
  clientIp?: (request: any) => string
  /**
   * Who may subscribe to what. Called on every POST (and `setSubscriptions`, `updateAuth`,
   * `revokeAuth`) once per distinct subscription string, custom and record topics alike, with the
   * client's auth record (null: guest), its id and the request (the framework's; undefined when
   * server code made the call). Only `true` allows; a refused subscription receives nothing, is
   * reported with `invalidSubscription`, and the POST still answers 204 with the others applied.
   * Throwing (or rejecting) answers the POST with 500 and emits `requestError`. Default: all allowed.
   */
  authorizeTopic?: (topic: string, context: TopicContext) => boolean | Promise<boolean>
  /** Refuse a POST from another IP than the stream's GET (400). Default true. */
  checkIp?: boolean
  /**
   * Bind `application/x-www-form-urlencoded` POST bodies as PocketBase does. Default false:
   * a form is a CORS-simple request any page can send with the visitor's cookies, so it
   * gets 400 like any other type but JSON.
   */
  allowFormBodies?: boolean
  /** End a stream after this long without an event. Default 300000 (5 min); 0 = never. */
  idleTimeoutMs?: number
  /** End a stream this long after it opened. Default 1800000 (30 min); 0 = never. */
  maxLifetimeMs?: number
  /** Larger POST bodies get 413. Default 1 MiB. */
  maxBodyBytes?: number
  /** Distinct subscriptions holding `?` (options) per client; past it a POST gets 400 `validation_budget_exceeded`, setSubscriptions() ERR_SSE_TOO_MANY_OPTION_SUBSCRIPTIONS. Default 100. */
  maxOptionSubscriptionsPerClient?: number
  /** Filter nodes of a client's subscriptions (a LIKE with a field on the right counts 100). Default 200. */
  maxFilterNodesPerClient?: number
  /** Estimated compiled bytes of a client's subscriptions (a shared one counts for each holder). Default 1 MiB. */
  maxCompiledBytesPerClient?: number
  /** Distinct subscription strings on the hub. Default 1000000. */
  maxDistinctSubscriptions?: number
  /** Estimated compiled bytes of every subscription on the hub. Default 256 MiB. */
  maxCompiledBytes?: number
  /** maxOptionSubscriptionsPerClient summed over the streams of one client address (`clientIp`). Default 200. */
  maxOptionSubscriptionsPerIp?: number
  /** maxFilterNodesPerClient summed over the streams of one client address. Default 400. */
  maxFilterNodesPerIp?: number
  /** maxCompiledBytesPerClient summed over the streams of one client address. Default 4 MiB. */
  maxCompiledBytesPerIp?: number
  /** Subscriptions (with or without options) summed over the streams of one client address. Default 5000. */
  maxSubscriptionsPerIp?: number
}

export interface TopicContext {
  auth: AuthRecord | null
  clientId: string
  /** The POST's request (Fastify request, Express req or IncomingMessage); undefined from server code. */
  request: any
}

export interface ClientInfo {
  clientId: string
  connectionId: number
  auth: AuthRecord | null
  subscriptions: string[]
}

export interface RealtimeEvents {
  connect: [{ clientId: string }]
  disconnect: [{ clientId: string, reason: DisconnectReason }]
  subscribe: [{ clientId: string, subscriptions: string[] }]
  /**
   * A subscription whose filter or fields do not compile (it receives no record events), or one
   * `authorizeTopic` refused (it receives nothing; message `refused by options.authorizeTopic`).
   */
  invalidSubscription: [{ clientId: string, subscription: string, message: string }]
  /**
   * `authenticate` threw or returned something that is not an auth record, or `clientIp` did not
   * return a non-empty string (the request got 500), or `updateAuth`/`revokeAuth` ended a client
   * that could not take the change (a budget, or any other failure).
   */
  requestError: [Error]
}

export declare class Realtime extends EventEmitter<RealtimeEvents> {
  constructor (options?: RealtimeOptions)
  readonly hub: Hub
  readonly options: Readonly<{
    idleTimeoutMs: number,
    maxLifetimeMs: number,
    maxBodyBytes: number,
    checkIp: boolean,
    allowFormBodies: boolean,
    maxOptionSubscriptionsPerClient: number,
    maxFilterNodesPerClient: number,
    maxCompiledBytesPerClient: number,
    maxDistinctSubscriptions: number,
    maxCompiledBytes: number,
    maxOptionSubscriptionsPerIp: number,
    maxFilterNodesPerIp: number,
    maxCompiledBytesPerIp: number,
    maxSubscriptionsPerIp: number
  }>

  /** Open realtime clients. */
  readonly size: number
  /** node:http handler for the realtime path: GET opens a stream, POST sets subscriptions, else 405. */
  handler (req: IncomingMessage, res: ServerResponse): void
  /**
   * GET: opens a stream and sends PB_CONNECT. Throws an SseError (nothing written) when the hub
   * refuses it. `request` (default `req`) is what `clientIp` gets: the framework's request.
   */
  connect (req: IncomingMessage, res: ServerResponse, request?: unknown): { clientId: string, connectionId: number }
  /**
   * POST: replaces a client's subscriptions and answers the response (204 or PocketBase's error
   * body). `authRequest` (default `req`) is what `authenticate`, `clientIp` and `authorizeTopic` get.
   */
  subscribe (req: IncomingMessage, res: ServerResponse, body?: unknown, authRequest?: unknown): Promise<void>
  /**
   * Sets a client's subscriptions from server code (replace-all; `auth` binds like a POST;
   * `authorizeTopic` is asked). A promise when `authorizeTopic` answered with one.
   */
  setSubscriptions (clientId: string, subscriptions: string[], auth?: AuthRecord | null): void | Promise<void>
  client (clientId: string): ClientInfo | undefined
  /** The ids of the live clients bound to the auth record `(collectionId, id)`. */
  clientsOf (collectionId: string, id: string): string[]
  /**
   * A fresher auth record for its identity (PocketBase's realtimeUpdateClientsAuth): every live
   * client bound to `(record.collectionId, record.id)` gets it; their subscriptions are evaluated
   * with it from the next event on (`authorizeTopic` is asked again; while async answers are
   * pending, only topics already allowed are kept). Returns the number of clients updated in
   * place: one that cannot take the record (a budget refuses its set, or anything else fails)
   * has its stream ended instead and is reported as `requestError`.
   */
  updateAuth (record: AuthRecord): number
  /**
   * Unbinds the live clients of `(collectionId, id)` (PocketBase's realtimeUnsetClientsAuthState):
   * they become guests, keep their subscriptions (now evaluated as a guest), and a later POST may
   * bind them again. Returns the number of clients updated in place (one that fails is ended, as
   * with `updateAuth`).
   */
  revokeAuth (collectionId: string, id: string): number
  /**
   * A record event to every subscription its collection's rule and its own filter let see it; `record.id` must not be `"*"`.
   * Throws `ERR_SSE_QUEUE_FULL` (nothing queued) when its frames do not fit the hub's maxPendingCommands/maxPendingBytes.
   */
  broadcastRecord (collection: CollectionInfo, action: RecordAction, record: RecordData): void
  /** A custom message to the clients subscribed to exactly `topic`; the event name defaults to `topic`. Throws `ERR_SSE_QUEUE_FULL` as broadcastRecord. */
  publish (topic: string, data: unknown, options?: { event?: string }): void
  /** A message to one client; false when it is unknown. Throws `ERR_SSE_QUEUE_FULL` as broadcastRecord. */
  sendToClient (clientId: string, data: unknown, options: { event: string }): boolean
  stats (): { clients: number, keys: number, groups: number, identities: number, compiledBytes: number }
  /**
   * Ends every realtime stream; closes the hub when this Realtime made it. Afterwards the methods
   * throw `ERR_SSE_CLOSED` and GET/POST answer 503 (also on a shared hub). Idempotent.
   */
  close (): Promise<void>
  /** True once `close()` was called. */
  readonly closed: boolean
}

/** A compiled PocketBase filter or rule (the engine the realtime rules use). */
export interface Filter {
  readonly expression: string
  /** True when the record (seen by `auth`, or a guest) passes. */
  test (record: object, auth?: AuthRecord | null): boolean
}

/**
 * Compiles a filter; throws an SseError `ERR_SSE_INVALID_FILTER` saying why it does not compile.
 * `""` is always true; only whitespace or comments is refused (as PocketBase does).
 */
export declare function compileFilter (expression: string): Filter

/** A new 40-character client id ([A-Za-z0-9], crypto random). */
export declare function newClientId (): string

export interface FastifyRealtimeOptions extends RealtimeOptions {
  /** Serve this Realtime instead of making one (it is then not closed with the app). */
  realtime?: Realtime
  /** Default `/api/realtime`. */
  path?: string
}

/** Fastify plugin: GET and POST on the realtime path; decorates `app.pocketbase`. */
export declare const fastifyRealtime: FastifyPluginAsync<FastifyRealtimeOptions>

/** Express middleware: GET and POST on the realtime path, `next()` for everything else. */
export declare function expressRealtime (realtime: Realtime, options?: { path?: string }): RequestHandler

export declare const DEFAULTS: Readonly<{
  idleTimeoutMs: number,
  maxLifetimeMs: number,
  checkIp: boolean,
  allowFormBodies: boolean,
  maxBodyBytes: number,
  maxOptionSubscriptionsPerClient: number,
  maxFilterNodesPerClient: number,
  maxCompiledBytesPerClient: number,
  maxDistinctSubscriptions: number,
  maxCompiledBytes: number,
  maxOptionSubscriptionsPerIp: number,
  maxFilterNodesPerIp: number,
  maxCompiledBytesPerIp: number,
  maxSubscriptionsPerIp: number
}>

declare module 'fastify' {
  interface FastifyInstance {
    /** The Realtime of the sse-fanout/pocketbase plugin. */
    pocketbase: Realtime
  }
}
