// Types of `sse-fanout/metrics`.
//
// prom-client (an optional peer dependency, needed at run time by this entry
// point only) and fastify are imported with `import type`: nothing is loaded,
// and the rest of the package's types never refer to them. A project that
// uses this entry point without one of them installed sees `Registry` or the
// Fastify types as `any` (with `skipLibCheck`, the usual setting) or a
// "cannot find module" error inside this file (without it); the Fastify types
// are only those of `fastifyHandler`.
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { PrometheusContentType, Registry, RegistryContentType } from 'prom-client'
import type { FastifyReply, FastifyRequest } from 'fastify'
import type { Hub } from './index'

type MetricsFunction = typeof metrics

/**
 * Exposes the hub's figures as Prometheus metrics (`<prefix>connections`,
 * `<prefix>published_total`, `<prefix>disconnects_total{reason}`, ...) in a
 * prom-client registry, read from `hub.stats()` at scrape time. Several hubs
 * may share a registry and prefix if they have the same label names and
 * distinct label values.
 *
 * Throws an SseError: ERR_SSE_INVALID_ARGUMENT for a bad argument or a name
 * clash in the registry, ERR_SSE_MISSING_DEPENDENCY when prom-client is not
 * installed.
 */
declare function metrics<T extends RegistryContentType = PrometheusContentType> (
  hub: Hub,
  options?: metrics.MetricsOptions<T>
): metrics.HubMetrics<T>

declare namespace metrics {
  interface MetricsOptions<T extends RegistryContentType = PrometheusContentType> {
    /** The registry to register the metrics in. Default: prom-client's global `register`. */
    registry?: Registry<T>
    /** Prefix of every metric name, matching `[a-zA-Z_:][a-zA-Z0-9_:]*` or empty. Default `sse_fanout_`. */
    prefix?: string
    /** Constant labels on every series of this hub (not `transport`, `thread` or `reason`). */
    labels?: Record<string, string>
  }

  interface HubMetrics<T extends RegistryContentType = PrometheusContentType> {
    /** The registry the metrics are in. */
    readonly registry: Registry<T>
    /** Serves the registry's text format: for `node:http` and Express (`app.get('/metrics', m.handler)`). */
    handler (req: IncomingMessage, res: ServerResponse): void | Promise<void>
    /** Serves it from a Fastify route (`fastify.get('/metrics', m.fastifyHandler)`); resolves to the body. */
    fastifyHandler (request: FastifyRequest, reply: FastifyReply): Promise<string>
    /** Stops reporting this hub: removes its series and listener, and the metrics once no hub uses them. Idempotent. */
    unregister (): void
  }

  /** The same function as the module itself. */
  const metrics: MetricsFunction
}

export = metrics
