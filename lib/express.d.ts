// Types of `sse-fanout/express`. They use @types/express (`Request`,
// `RequestHandler`); a project that uses this entry point with Express has it
// already. The types are imported with `import type`, so nothing is loaded at
// run time.
import type { Server as HttpServer } from 'node:http'
import type { Server as HttpsServer } from 'node:https'
import type { Request, RequestHandler } from 'express'
import type { Connection, Hub } from './index'

type SseMiddlewareFactory = typeof sse

/**
 * A middleware (named `sseFanout`) that turns the request into an SSE stream
 * of `hub`. On success it does not call `next()`: the response is the stream,
 * and the Connection is on `res.locals.sse`. Every failure (a throwing or
 * rejecting `topics`/`user` function, an SseError from `hub.accept()`) goes to
 * `next(err)` with the response untouched.
 *
 * Static `topics`, `user` and `retry` are checked when the middleware is
 * made (an SseError is thrown); values returned by functions on each request.
 *
 * @example
 * const { sse, closeWithServer } = require('sse-fanout/express')
 * app.get('/events', auth, sse(hub, { topics: ['news', 'chat/*'], user: (req) => req.user.id }))
 * closeWithServer(hub, app.listen(3000))
 */
declare function sse (hub: Hub, options?: sse.SseMiddlewareOptions): RequestHandler

declare namespace sse {
  /** A value, or a promise of it. */
  type MaybePromise<T> = T | Promise<T>

  interface SseMiddlewareOptions {
    /** Topics (exact, or prefix patterns ending in `/*`), or a function of the request giving them. */
    topics?: string | string[] | ((req: Request) => MaybePromise<string | string[] | undefined>)
    /** The connection's user (a non-empty string), or a function of the request giving it. */
    user?: string | ((req: Request) => MaybePromise<string | null | undefined>)
    /** Reconnection delay sent to the client as `retry:` (ms, a non-negative integer). */
    retry?: number
    /** Compress the stream when the request accepts gzip or deflate (true), or never (false); default: the hub's `compression`. */
    compress?: boolean
  }

  interface PollMiddlewareOptions {
    /** Topics (exact, or prefix patterns ending in `/*`), or a function of the request giving them. */
    topics?: string | string[] | ((req: Request) => MaybePromise<string | string[] | undefined>)
    /** The user whose private events may be returned, or a function of the request giving it. */
    user?: string | ((req: Request) => MaybePromise<string | null | undefined>)
  }

  /**
   * A middleware (named `ssePoll`) answering a catch-up poll of `hub`'s history: `since` and `wait` (whole seconds)
   * from the query, topics and user from the options. 200 with the JSON CatchUpResult, or 204; every failure (a
   * throwing or rejecting function, a bad query, a closed hub, too many waiting polls) goes to `next(err)` with a
   * `statusCode` (400, 503) and the response untouched.
   */
  function poll (hub: Hub, options?: PollMiddlewareOptions): RequestHandler

  /**
   * A handler (named `sseFanoutClient`) serving the browser module (`sse-fanout/client`) at the path it is mounted on:
   * `app.get('/sse-fanout-client.js', client())`. GET and HEAD: 200 (ETag, `cache-control: no-cache` unless set
   * before) or 304; other methods go to `next()`; a file that cannot be read to `next(err)`.
   */
  function client (): RequestHandler

  /** `res.locals` after the middleware has accepted the request. */
  interface SseLocals {
    sse: Connection
  }

  /**
   * Closes the hub when the server closes: wraps `server.close` on this
   * instance so that `hub.close()` starts first (the hub's streams would
   * otherwise hold `server.close()` open); a callback given to
   * `server.close(cb)` is called once the server and the hub have both
   * closed. Listens to `close` too, for a server closed some other way.
   * Returns a function that undoes both.
   */
  function closeWithServer (hub: Hub, server: HttpServer | HttpsServer): () => void

  /** The same function as the module itself. */
  const sse: SseMiddlewareFactory
}

export = sse
