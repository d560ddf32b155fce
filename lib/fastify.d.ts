// Types of `sse-fanout/fastify` (Fastify 5). The fastify types are imported
// with `import type`; a project that uses this entry point has fastify
// installed already.
import type { FastifyPluginAsync } from 'fastify'
import type { AcceptOptions, Connection, HistoryOptions, Hub, HubOptions, Listener, ListenOptions, PollOptions } from './index'
import type { RedisBus } from './redis'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * The plugin's hub (the one it created from the Hub options, or
     * `options.hub`). Typed under the default name: with
     * `options.decorator` set, the hub is under that name instead.
     */
    sse: Hub
    /**
     * The native listener the plugin started (`options.listen`), or null. Typed under the default name
     * (`${decorator}Listener`).
     */
    sseListener: Listener | null
  }

  interface FastifyReply {
    /**
     * Turns this reply into an SSE stream of the plugin's hub and hijacks it;
     * headers set on the reply before are sent. Throws (before anything is
     * written) an SseError with a `statusCode` (400, 405 for HEAD, 503 when
     * the hub is full or closed) for Fastify's error handler. Typed under the
     * default name, like `fastify.sse`.
     */
    sse (options?: AcceptOptions): Connection
    /**
     * Answers a catch-up poll (`?since=<cursor>&wait=<seconds>`) from the hub's history through this reply: 200 with
     * the JSON CatchUpResult, 204 when there is nothing new. Rejects with an SseError with a `statusCode` (400, 503)
     * for Fastify's error handler. Return it from the handler. Typed under the default name (`${decorator}Poll`).
     */
    ssePoll (options?: PollOptions): Promise<FastifyReply>
  }
}

type SseFanoutPlugin = FastifyPluginAsync<sseFanout.SseFanoutOptions>

declare namespace sseFanout {
  export interface CommonOptions {
    /** Name of the instance and reply decorators. Default `'sse'`. */
    decorator?: string
    /**
     * A path (starting with `/`, e.g. `'/sse-fanout-client.js'`) where a GET route serves the browser module
     * (`sse-fanout/client`) for pages without a bundler: ETag, 304, `cache-control: no-cache` unless a hook set one.
     * Default: not served.
     */
    clientPath?: string
    /**
     * Also serve SSE on a port of its own through the native listener (`hub.listen()` options, docs/listener.md):
     * same hub and topics, no JS object per connection. Listens when the plugin registers; closes with the app.
     */
    listen?: ListenOptions
  }

  /** No bus: the plugin's hub is this process's alone. */
  export interface NoBusOptions {
    bus?: undefined
  }

  /** A Redis bus: many instances (processes, machines) as one hub (docs/redis.md); it needs history. */
  export interface BusOptions {
    /**
     * A RedisBus of its own (`new RedisBus({ url })` from `sse-fanout/redis`), not attached to a hub yet. While it
     * is up, `fastify.sse.publish()` goes through Redis and returns null (`await bus.publish()` resolves with the
     * id); app.close() closes it with the hub. Its state changes are logged (warn when it goes down).
     */
    bus: RedisBus
    history: true | HistoryOptions
  }

  /** The plugin creates a hub with these options, and closes it (and its bus) with the app. */
  export type OwnHubOptions = CommonOptions & { hub?: undefined } &
    ((HubOptions & NoBusOptions) | (Omit<HubOptions, 'history' | 'bus'> & BusOptions))

  /** The plugin uses an existing hub, and leaves closing it to its owner. Hub options are refused. */
  export type ExistingHubOptions = CommonOptions & { hub: Hub } & { [K in keyof HubOptions]?: undefined }

  /** Hub options, or `hub` (an existing Hub); not both. */
  export type SseFanoutOptions = ExistingHubOptions | OwnHubOptions

  /** The plugin (also the module itself and its `default`). */
  export const sseFanout: SseFanoutPlugin
  export { sseFanout as default }
}

/**
 * The plugin, wrapped by fastify-plugin (name `sse-fanout`, Fastify 5.x): it
 * decorates the instance that registers it, not a child context.
 */
declare function sseFanout (...params: Parameters<SseFanoutPlugin>): ReturnType<SseFanoutPlugin>

export = sseFanout
