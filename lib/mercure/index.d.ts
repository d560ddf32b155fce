// Types of `sse-fanout/mercure`: the Mercure protocol on a Hub. fastify and
// express types are imported with `import type`; nothing is loaded at run time.
import type { EventEmitter } from 'node:events'
import type { KeyObject } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import type { RequestHandler } from 'express'
import type { Hub, HubOptions } from '../index'

export type JwtAlgorithm =
  | 'HS256' | 'HS384' | 'HS512'
  | 'RS256' | 'RS384' | 'RS512'
  | 'PS256' | 'PS384' | 'PS512'
  | 'ES256' | 'ES384' | 'ES512'
  | 'EdDSA'

/**
 * A role's verification key: an HMAC secret (string or bytes) or a public key
 * (PEM or KeyObject), with its algorithm (default HS256).
 */
export interface JwtKey {
  key: string | Uint8Array | KeyObject
  alg?: JwtAlgorithm
}

export interface MercureHubOptions {
  /** A hub to serve the streams (without a Redis bus); default: a new Hub with history on, closed by `close()`. */
  hub?: Hub
  /** Options of the hub the MercureHub makes (`history: true` unless given). */
  hubOptions?: HubOptions
  /** The hub's path. Default `/.well-known/mercure`. */
  path?: string
  /** Publisher key; default from MERCURE_PUBLISHER_JWT_KEY / _ALG. `null`: no publishing over HTTP (403). */
  publisherJwt?: JwtKey | null
  /** Subscriber key; default from MERCURE_SUBSCRIBER_JWT_KEY / _ALG. `null`: anonymous subscribers only. */
  subscriberJwt?: JwtKey | null
  /** Subscribers without a token get public updates. Default false. */
  anonymous?: boolean
  /** The token cookie. Default `mercureAuthorization`. */
  cookieName?: string
  /** Accept the `authorization` query parameter (as the reference hub). Default true. */
  allowQueryToken?: boolean
  /** Origins allowed to publish with the cookie (`*`, exact, or one `*` wildcard). Default none. */
  publishOrigins?: string[]
  /** Leeway on `exp` and `nbf`, in seconds. Default 0. */
  clockToleranceSec?: number
  /** Verified tokens kept. Default 10000. */
  maxCachedTokens?: number
  /** CORS: origins allowed (with credentials), `*` for any. Default: no CORS headers. */
  cors?: { origins: string[] }
  /** Largest publish body, in bytes (413 past it). Default 1048576. */
  maxBodyBytes?: number
  /** Topics of one update. Default 32 (the reference hub allows 1000). */
  maxTopicsPerUpdate?: number
  /** `topic` selectors of one subscriber. Default 32 (the reference hub allows 1000). */
  maxSelectorsPerSubscriber?: number
  /** Distinct selectors held by the native index, hub-wide. Default 100000. */
  maxDistinctSelectors?: number
  /** Of those, URI templates, each counted once per expression (each update may try every one). Default 10000. */
  maxDistinctTemplates?: number
  /** One subscriber's topic selectors: their template expressions together. Default 64. */
  maxExpressionsPerSubscriber?: number
}

/** An update from server code (no authorization: the app is the publisher). */
export type MercureUpdate = ({ topic: string, topics?: never } | { topics: string[], topic?: never }) & {
  /** A string as it is; anything else JSON-encoded. */
  data?: unknown
  private?: boolean
  /** Default `urn:uuid:` and a random UUID. Not starting with `#`. */
  id?: string
  /** The SSE event type. */
  type?: string
  /** The SSE retry, in ms; 0 = none. */
  retry?: number
}

export interface MercureHubEvents {
  /** A request failed on a bug (answered 500). */
  requestError: [Error]
}

/** The options a MercureHub runs with (its `options`, and `DEFAULTS`). */
export type MercureHubSettings = Readonly<{
  path: string,
  maxBodyBytes: number,
  maxTopicsPerUpdate: number,
  maxSelectorsPerSubscriber: number,
  maxDistinctSelectors: number,
  maxDistinctTemplates: number,
  maxExpressionsPerSubscriber: number
}>

export declare class MercureHub extends EventEmitter<MercureHubEvents> {
  constructor (options?: MercureHubOptions)
  readonly hub: Hub
  readonly options: MercureHubSettings

  /** Open subscription streams. */
  readonly size: number
  readonly closed: boolean
  /** node:http handler: true when the request is for the hub's path (answered), false otherwise (untouched). */
  handle (req: IncomingMessage, res: ServerResponse): boolean
  /** Publishes an update; returns its id. */
  publish (update: MercureUpdate): string
  /** Counts of the native index. */
  stats (): { profiles: number, selectors: number, templates: number }
  close (): Promise<void>
}

export interface FastifyMercureOptions extends MercureHubOptions {
  /** Serve this MercureHub instead of making one (it is then not closed with the app). */
  mercure?: MercureHub
}

/** Fastify plugin: GET, POST and OPTIONS on the hub's path; decorates `app.mercure`. */
export declare const fastifyMercure: FastifyPluginAsync<FastifyMercureOptions>

/** Express middleware: the hub's path (any method), `next()` for everything else. */
export declare function expressMercure (mercure: MercureHub): RequestHandler

/** Adds `Link: <hubUrl>; rel="mercure"` to a response (node, Express or a Fastify reply). */
export declare function mercureLink<R extends ServerResponse | FastifyReply> (res: R, hubUrl: string): R

export declare const DEFAULTS: MercureHubSettings

declare module 'fastify' {
  interface FastifyInstance {
    /** The MercureHub of the sse-fanout/mercure plugin. */
    mercure: MercureHub
  }
}
