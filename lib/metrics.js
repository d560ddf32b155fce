'use strict'
// Prometheus metrics for a Hub, through prom-client, so that they join the
// registry an application already serves (README.md, "Metrics").
//
//   const { metrics } = require('sse-fanout/metrics')
//   const m = metrics(hub, { labels: { hub: 'chat' } })
//   app.get('/metrics', m.handler)          // node:http / Express
//   fastify.get('/metrics', m.fastifyHandler)
//
// Every figure but disconnects_total is read at scrape time, from one
// hub.stats() per hub and scrape. The hub owns its counters; prom-client's
// Counter has no set(), so collect() increases each counter by what the hub's
// figure grew since the last scrape (the pattern of prom-client's own
// process_cpu_seconds_total), which keeps it equal to the hub's figure.
//
// prom-client allows one metric per name in a registry, so every hub that
// uses the same registry and prefix shares one set of metric objects; each hub
// is told apart by its constant labels.

const { SseError, invalid } = require('./errors')

const DEFAULT_PREFIX = 'sse_fanout_'
const PREFIX = /^(?:[a-zA-Z_:][a-zA-Z0-9_:]*)?$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const OPTION_KEYS = new Set(['registry', 'prefix', 'labels'])
// The hub's disconnect reasons (README.md, "Events"); each series starts at 0
// so that rate() sees the first one. Other reasons are counted as they come.
const REASONS = ['client', 'slow', 'kicked', 'error', 'shutdown', 'timeout']

function one (value) { return [[null, value]] }
// A figure of the history, no series when the hub has none.
function history (field) {
  return (s) => s.history === null ? [] : one(s.history[field])
}
const RESET_REASONS = ['unknown', 'epoch', 'expired', 'limit']
// A figure of the Redis bus (sse-fanout/redis), no series when the hub has none.
function bus (pick) {
  return (s) => s.bus === undefined ? [] : one(pick(s.bus))
}
function threads (stats, field) {
  return stats.threads.map((t, i) => [{ thread: String(i) }, t[field]])
}

// name (after the prefix), type, help, labels of its own, and its series
// ([own labels or null, value] pairs) from one stats() object.
const SPECS = [
  ['connections', 'gauge', 'Open SSE connections, by transport (native: written by the I/O threads; js: by Node)', ['transport'],
    (s) => [[{ transport: 'native' }, s.native], [{ transport: 'js' }, s.js]]],
  ['subscriptions', 'gauge', 'Topic subscriptions held by open connections', [], (s) => one(s.subscriptions)],
  ['queue_bytes', 'gauge', 'Bytes queued for connections and not yet written', [], (s) => one(s.queueBytes)],
  ['users', 'gauge', 'Distinct users with at least one open connection', [], (s) => one(s.users)],
  ['published_total', 'counter', 'Events published: publish(), broadcast() and send() calls', [], (s) => one(s.published)],
  ['delivered_total', 'counter', 'Events written to sockets or handed to the JS transport, one per connection', [], (s) => one(s.delivered)],
  ['bytes_written_total', 'counter', 'Bytes written to sockets by the I/O threads', [], (s) => one(s.bytesWritten)],
  ['slow_disconnects_total', 'counter', 'Connections closed for falling maxQueueBytes behind', [], (s) => one(s.slow)],
  ['heartbeats_total', 'counter', 'Heartbeat comments written to idle connections', [], (s) => one(s.heartbeats)],
  ['compressed_connections', 'gauge', 'Open streams sent gzip or deflate (the hub\'s compression option)', [], (s) => one(s.compression.connections)],
  ['compression_in_bytes_total', 'counter', 'Bytes of the events, heartbeats and other frames queued for compressed streams, before compression', [], (s) => one(s.compression.bytesIn)],
  ['compression_out_bytes_total', 'counter', 'The same bytes after compression, as queued for those streams (HTTP chunk framing not counted)', [], (s) => one(s.compression.bytesOut)],
  ['queue_full_total', 'counter', 'publish(), broadcast() and send() calls refused with ERR_SSE_QUEUE_FULL', [], (s) => one(s.queueFull)],
  ['history_events', 'gauge', 'Events held by the history (history on only)', [], history('events')],
  ['history_bytes', 'gauge', 'Encoded frame bytes held by the history', [], history('bytes')],
  ['history_replays_total', 'counter', 'Streams resumed from the history after their Last-Event-ID', [], history('replays')],
  ['history_replayed_events_total', 'counter', 'Events replayed to resuming streams', [], history('replayedEvents')],
  ['history_resets_total', 'counter', 'In-band resets (streams and polls), by reason (unknown, epoch, expired, limit)', ['reason'],
    (s) => s.history === null ? [] : RESET_REASONS.map((reason) => [{ reason }, s.history.resets[reason]])],
  ['history_polls_total', 'counter', 'Catch-up reads (polls)', [], history('polls')],
  ['bus_up', 'gauge', 'The Redis bus is up (1) or not (0: connecting, down, closed)', [], bus((b) => b.state === 'up' ? 1 : 0)],
  ['bus_outbox_events', 'gauge', 'Events waiting in the Redis bus outbox for Redis to come back', [], bus((b) => b.outbox.events)],
  ['bus_outbox_dropped_total', 'counter', 'Events the Redis bus outbox had no room for (delivered locally only)', [], bus((b) => b.outbox.dropped)],
  ['bus_read_total', 'counter', 'Stream entries the Redis bus read into the history', [], bus((b) => b.read)],
  ['bus_published_total', 'counter', 'Events this instance published through the Redis function', [], bus((b) => b.published)],
  ['bus_rejected_total', 'counter', 'Events Redis refused, and stream entries that did not decode (skipped)', [], bus((b) => b.rejected)],
  ['bus_reconnects_total', 'counter', 'Reconnect attempts of the Redis bus after it went down', [], bus((b) => b.reconnects)],
  ['bus_resyncs_total', 'counter', 'Times Redis lost its data while the bus was up and its stream was read again', [], bus((b) => b.resyncs)],
  ['thread_connections', 'gauge', 'Open connections, by I/O thread', ['thread'], (s) => threads(s, 'connections')],
  ['thread_queue_bytes', 'gauge', 'Bytes queued and not yet written, by I/O thread', ['thread'], (s) => threads(s, 'queueBytes')],
  ['thread_delivered_total', 'counter', 'Events delivered, by I/O thread', ['thread'], (s) => threads(s, 'delivered')],
  ['thread_bytes_written_total', 'counter', 'Bytes written to sockets, by I/O thread', ['thread'], (s) => threads(s, 'bytesWritten')]
]
const DISCONNECTS = 'disconnects_total'
const DISCONNECTS_HELP = 'Connections ended, by reason (client, slow, kicked, error, shutdown)'
const OWN_LABELS = new Set(['transport', 'thread', 'reason'])

function loadPromClient () {
  try {
    return require('prom-client')
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).startsWith("Cannot find module 'prom-client'")) {
      const error = new SseError('ERR_SSE_MISSING_DEPENDENCY',
        'sse-fanout/metrics needs prom-client (npm install prom-client)')
      error.cause = err
      throw error
    }
    throw err
  }
}

function checkHub (hub) {
  if (!hub || typeof hub !== 'object' || typeof hub.stats !== 'function' ||
      typeof hub.on !== 'function' || typeof hub.removeListener !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Hub', 'hub', hub)
  }
  return hub
}

function checkRegistry (registry) {
  const ok = registry && typeof registry === 'object' &&
    ['registerMetric', 'getSingleMetric', 'removeSingleMetric', 'metrics'].every((m) => typeof registry[m] === 'function')
  if (!ok) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a prom-client Registry', 'options.registry', registry)
  return registry
}

function checkLabels (labels) {
  if (labels === undefined) return {}
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an object of label names to string values', 'options.labels', labels)
  }
  const out = {}
  for (const [name, value] of Object.entries(labels)) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Prometheus label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)', 'a key of options.labels', name)
    }
    if (OWN_LABELS.has(name)) {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', `a label name other than ${[...OWN_LABELS].join(', ')} (used by the metrics themselves)`, 'a key of options.labels', name)
    }
    if (typeof value !== 'string') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a string', `options.labels.${name}`, value)
    out[name] = value
  }
  return out
}

function checkOptions (options) {
  if (options === undefined) options = {}
  if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
  for (const key of Object.keys(options)) {
    if (!OPTION_KEYS.has(key)) {
      throw new SseError('ERR_SSE_INVALID_ARGUMENT',
        `Expected one of ${[...OPTION_KEYS].join(', ')} for an option name but received "${key}"` +
        (key === 'register' ? ' (the registry is passed as options.registry)' : ''))
    }
  }
  const prefix = options.prefix === undefined ? DEFAULT_PREFIX : options.prefix
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a metric name prefix matching [a-zA-Z_:][a-zA-Z0-9_:]* (or "")', 'options.prefix', prefix)
  }
  return { registry: options.registry, prefix, labels: checkLabels(options.labels) }
}

/** Label values of a source, as a key that tells sources apart. */
function labelKey (labels, names) {
  return JSON.stringify(names.map((n) => labels[n]))
}

/** One hub's presence in a group: its labels, its stats of this scrape, its counters' last figures. */
class Source {
  constructor (hub, labels) {
    this.hub = hub
    this.labels = labels
    this._stats = null
    this._clear = () => { this._stats = null }
    this.last = new Map() // counter series -> the hub's figure at the last scrape
    this.series = new Map() // metric -> Map(series key -> labels), to remove them on unregister
    this.onDisconnect = null
  }

  /** hub.stats(), read once per scrape: a registry collects every metric in one synchronous pass. */
  stats () {
    if (this._stats === null) {
      this._stats = this.hub.stats()
      queueMicrotask(this._clear)
    }
    return this._stats
  }

  /** The full labels of one series, remembered so that unregister() can remove it. */
  seriesLabels (metric, key, own) {
    let byKey = this.series.get(metric)
    if (byKey === undefined) this.series.set(metric, (byKey = new Map()))
    let labels = byKey.get(key)
    if (labels === undefined) {
      labels = own === null ? { ...this.labels } : { ...this.labels, ...own }
      byKey.set(key, labels)
    }
    return labels
  }
}

/** The metric objects of one registry and prefix, and the hubs they report. */
class Group {
  constructor (prom, registry, prefix, labelNames) {
    this.registry = registry
    this.prefix = prefix
    this.labelNames = labelNames // sorted constant label names every source has
    this.sources = new Set()
    this.metrics = []
    const names = SPECS.map(([name]) => prefix + name).concat(prefix + DISCONNECTS)
    for (const name of names) {
      if (registry.getSingleMetric(name)) {
        throw new SseError('ERR_SSE_INVALID_ARGUMENT',
          `The registry already has a metric named ${name} that sse-fanout/metrics did not create; pass another options.prefix`)
      }
    }
    const group = this
    try {
      for (const [name, type, help, own, read] of SPECS) {
        const Metric = type === 'gauge' ? prom.Gauge : prom.Counter
        const metric = new Metric({
          name: prefix + name,
          help,
          labelNames: [...labelNames, ...own],
          registers: [registry],
          collect () { group.collect(this, type, name, read) }
        })
        this.metrics.push(metric)
      }
      this.disconnects = new prom.Counter({
        name: prefix + DISCONNECTS,
        help: DISCONNECTS_HELP,
        labelNames: [...labelNames, 'reason'],
        registers: [registry]
      })
      this.metrics.push(this.disconnects)
    } catch (err) {
      this.removeMetrics()
      throw err
    }
  }

  /** True while every metric of the group is still the one registered under its name. */
  intact () {
    return this.metrics.every((m) => this.registry.getSingleMetric(m.name) === m ||
      this.registry.getSingleMetric(`${m.name}_total`) === m) // OpenMetrics registries strip _total from counter names
  }

  removeMetrics () {
    for (const metric of this.metrics) {
      for (const name of [metric.name, `${metric.name}_total`]) {
        if (this.registry.getSingleMetric(name) === metric) this.registry.removeSingleMetric(name)
      }
    }
  }

  collect (metric, type, name, read) {
    for (const source of this.sources) {
      for (const [own, value] of read(source.stats())) {
        const key = own === null ? '' : JSON.stringify(own)
        const labels = source.seriesLabels(metric, key, own)
        if (type === 'gauge') {
          metric.set(labels, value)
        } else {
          const seriesKey = `${name}\0${key}`
          const last = source.last.get(seriesKey)
          if (last === undefined) {
            metric.inc(labels, value)
            source.last.set(seriesKey, value)
          } else if (value > last) {
            metric.inc(labels, value - last)
            source.last.set(seriesKey, value)
          }
        }
      }
    }
  }

  add (source) {
    const key = labelKey(source.labels, this.labelNames)
    for (const other of this.sources) {
      if (labelKey(other.labels, this.labelNames) === key) {
        throw new SseError('ERR_SSE_INVALID_ARGUMENT',
          `Another hub already reports to this registry as ${this.prefix}* with the labels ${JSON.stringify(source.labels)}; ` +
          'give each hub distinct options.labels (e.g. { hub: \'chat\' })')
      }
    }
    this.sources.add(source)
    for (const reason of REASONS) {
      this.disconnects.inc(source.seriesLabels(this.disconnects, reason, { reason }), 0)
    }
    source.onDisconnect = (event) => {
      const reason = String(event && event.reason)
      this.disconnects.inc(source.seriesLabels(this.disconnects, reason, { reason }), 1)
    }
    source.hub.on('disconnect', source.onDisconnect)
  }

  /** Takes a source out; true when the group is left empty. */
  remove (source) {
    if (!this.sources.delete(source)) return this.sources.size === 0
    source.hub.removeListener('disconnect', source.onDisconnect)
    for (const [metric, byKey] of source.series) {
      for (const labels of byKey.values()) metric.remove(labels)
    }
    source.series.clear()
    return this.sources.size === 0
  }
}

// registry -> Map(prefix -> Group)
const groups = new WeakMap()

function groupFor (prom, registry, prefix, labels) {
  let byPrefix = groups.get(registry)
  if (byPrefix === undefined) groups.set(registry, (byPrefix = new Map()))
  const labelNames = Object.keys(labels).sort()
  let group = byPrefix.get(prefix)
  if (group !== undefined && !group.intact()) {
    // The registry was cleared (or our metrics removed) behind our back: start afresh.
    for (const source of [...group.sources]) group.remove(source)
    group.removeMetrics()
    byPrefix.delete(prefix)
    group = undefined
  }
  if (group === undefined) {
    group = new Group(prom, registry, prefix, labelNames)
    byPrefix.set(prefix, group)
  } else if (group.labelNames.join(',') !== labelNames.join(',')) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT',
      `Expected options.labels with the names [${group.labelNames.join(', ')}] (those of the hub already reporting to this registry as ${prefix}*) ` +
      `but received [${labelNames.join(', ')}]; every hub in one registry and prefix needs the same label names`)
  }
  return group
}

/**
 * Exposes a hub's figures as Prometheus metrics in a prom-client registry.
 * @param {import('./hub').Hub} hub
 * @param {{ registry?: object, prefix?: string, labels?: Record<string, string> }} [options]
 * @returns {{ registry, handler: (req, res) => Promise<void>, fastifyHandler: (request, reply) => Promise<string>, unregister: () => void }}
 */
function metrics (hub, options) {
  checkHub(hub)
  const o = checkOptions(options)
  const prom = loadPromClient()
  const registry = o.registry === undefined ? prom.register : checkRegistry(o.registry)

  const group = groupFor(prom, registry, o.prefix, o.labels)
  const source = new Source(hub, o.labels)
  try {
    group.add(source)
  } catch (err) {
    if (group.sources.size === 0) dropGroup(group)
    throw err
  }

  let registered = true
  function unregister () {
    if (!registered) return
    registered = false
    if (group.remove(source)) dropGroup(group)
  }

  async function handler (req, res) {
    let body
    try {
      body = await registry.metrics()
    } catch (err) {
      res.statusCode = 500
      res.setHeader('content-type', 'text/plain; charset=utf-8')
      res.end(`metrics collection failed: ${err && err.message}\n`)
      return
    }
    res.statusCode = 200
    res.setHeader('content-type', registry.contentType)
    res.setHeader('content-length', Buffer.byteLength(body))
    res.end(body)
  }

  async function fastifyHandler (request, reply) {
    const body = await registry.metrics()
    reply.header('content-type', registry.contentType)
    return body
  }

  return Object.freeze({ registry, handler, fastifyHandler, unregister })
}

function dropGroup (group) {
  group.removeMetrics()
  const byPrefix = groups.get(group.registry)
  if (byPrefix && byPrefix.get(group.prefix) === group) byPrefix.delete(group.prefix)
}

module.exports = metrics
module.exports.metrics = metrics
