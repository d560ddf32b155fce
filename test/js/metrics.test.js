'use strict'
// sse-fanout/metrics: the hub's figures as Prometheus metrics through
// prom-client. Real hubs with real connections (the client process of
// test/helpers), the exposition fetched over HTTP from the handlers on
// node:http, Express and Fastify, and parsed strictly (text format 0.0.4).

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const path = require('node:path')
const { execFile } = require('node:child_process')
const { once } = require('node:events')
const prom = require('prom-client')
const { Hub } = require('../..')
const { metrics } = require('../../lib/metrics')
const { Clients } = require('../helpers/clients')
const { startHub } = require('../helpers/fixture')
const { ssePath } = require('../helpers/server')
const { waitFor, within, cleanup } = require('../helpers/wait')

const ROOT = path.join(__dirname, '..', '..')
const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

const GAUGES = ['connections', 'subscriptions', 'queue_bytes', 'users', 'thread_connections', 'thread_queue_bytes',
  'history_events', 'history_bytes', 'bus_up', 'bus_outbox_events', 'compressed_connections']
const COUNTERS = ['published_total', 'delivered_total', 'bytes_written_total', 'slow_disconnects_total',
  'heartbeats_total', 'queue_full_total', 'compression_in_bytes_total', 'compression_out_bytes_total', 'thread_delivered_total', 'thread_bytes_written_total', 'disconnects_total',
  'history_replays_total', 'history_replayed_events_total', 'history_resets_total', 'history_polls_total',
  'bus_outbox_dropped_total', 'bus_read_total', 'bus_published_total', 'bus_rejected_total', 'bus_reconnects_total', 'bus_resyncs_total']

// --- a strict parser of the Prometheus text exposition format 0.0.4 ---------

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const FLOAT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped'])

function parseValue (text, where) {
  if (text === 'NaN') return NaN
  if (text === '+Inf' || text === 'Inf') return Infinity
  if (text === '-Inf') return -Infinity
  assert.match(text, FLOAT, `${where}: a float value`)
  return Number(text)
}

function unescapeHelp (text, where) {
  return text.replace(/\\(.?)/g, (_, c) => {
    if (c === '\\') return '\\'
    if (c === 'n') return '\n'
    assert.fail(`${where}: bad escape \\${c} in HELP`)
  })
}

/** Parses one sample line: { name, labels, value, timestamp }. */
function parseSample (line, where) {
  const nameMatch = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line)
  assert.ok(nameMatch, `${where}: a metric name`)
  const name = nameMatch[0]
  let i = name.length
  const labels = {}
  if (line[i] === '{') {
    i++
    while (line[i] !== '}') {
      const labelMatch = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i))
      assert.ok(labelMatch, `${where}: a label name at column ${i}`)
      const label = labelMatch[0]
      assert.ok(LABEL_NAME.test(label) && !label.startsWith('__'), `${where}: label name ${label}`)
      assert.ok(!(label in labels), `${where}: label ${label} given twice`)
      i += label.length
      assert.equal(line.slice(i, i + 2), '="', `${where}: =" after label ${label}`)
      i += 2
      let value = ''
      for (;;) {
        assert.ok(i < line.length, `${where}: unterminated value of label ${label}`)
        const c = line[i++]
        if (c === '"') break
        if (c === '\\') {
          const e = line[i++]
          if (e === '\\' || e === '"') value += e
          else if (e === 'n') value += '\n'
          else assert.fail(`${where}: bad escape \\${e} in label ${label}`)
        } else {
          value += c
        }
      }
      labels[label] = value
      if (line[i] === ',') i++
      else assert.equal(line[i], '}', `${where}: , or } after label ${label}`)
    }
    i++
  }
  assert.equal(line[i], ' ', `${where}: a space before the value`)
  const rest = line.slice(i + 1).split(' ')
  assert.ok(rest.length === 1 || rest.length === 2, `${where}: value [timestamp]`)
  const value = parseValue(rest[0], where)
  let timestamp
  if (rest.length === 2) {
    assert.match(rest[1], /^-?\d+$/, `${where}: an integer timestamp`)
    timestamp = Number(rest[1])
  }
  return { name, labels, value, timestamp }
}

function sampleBelongs (family, name) {
  if (name === family.name) return true
  if (family.type === 'histogram') return [`${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`].includes(name)
  if (family.type === 'summary') return [`${family.name}_sum`, `${family.name}_count`].includes(name)
  return false
}

/**
 * Map of family name -> { name, help, type, samples: [{ name, labels, value }] }.
 * Strict: the text ends with a line feed; HELP and TYPE at most once per
 * family and TYPE before its samples; every family's lines in one group;
 * samples belong to the family announced before them; no series twice.
 */
function parseExposition (text) {
  assert.equal(typeof text, 'string')
  assert.ok(text.endsWith('\n'), 'the exposition ends with a line feed')
  assert.ok(!text.includes('\r'), 'no CR in the exposition')
  const families = new Map()
  let current = null
  const lines = text.slice(0, -1).split('\n')
  const familyFor = (name, where) => {
    if (current && current.name === name) return current
    assert.ok(!families.has(name), `${where}: the lines of ${name} are not in one group`)
    current = { name, help: undefined, type: undefined, samples: [], series: new Set() }
    families.set(name, current)
    return current
  }
  lines.forEach((line, index) => {
    const where = `line ${index + 1} ${JSON.stringify(line)}`
    if (line.trim() === '') return
    if (line.startsWith('#')) {
      const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line)
      if (!m) return // a plain comment
      const [, kind, name, rest = ''] = m
      assert.match(name, METRIC_NAME, `${where}: metric name`)
      const family = familyFor(name, where)
      if (kind === 'HELP') {
        assert.equal(family.help, undefined, `${where}: a second HELP for ${name}`)
        family.help = unescapeHelp(rest, where)
      } else {
        assert.equal(family.type, undefined, `${where}: a second TYPE for ${name}`)
        assert.equal(family.samples.length, 0, `${where}: TYPE after samples of ${name}`)
        assert.ok(TYPES.has(rest), `${where}: type ${rest}`)
        family.type = rest
      }
      return
    }
    const sample = parseSample(line, where)
    let family = current
    if (!family || !sampleBelongs(family, sample.name)) family = familyFor(sample.name, where)
    const key = `${sample.name}${JSON.stringify(Object.entries(sample.labels).sort())}`
    assert.ok(!family.series.has(key), `${where}: series given twice`)
    family.series.add(key)
    family.samples.push(sample)
  })
  return families
}

/** The value of the one sample of `name` with exactly `labels`. */
function valueOf (families, name, labels = {}) {
  const family = families.get(name)
  assert.ok(family, `metric ${name} is exposed`)
  const found = family.samples.filter((s) => s.name === name &&
    Object.keys(s.labels).length === Object.keys(labels).length &&
    Object.entries(labels).every(([k, v]) => s.labels[k] === v))
  assert.equal(found.length, 1, `one sample of ${name} with labels ${JSON.stringify(labels)}; have ${JSON.stringify(family.samples)}`)
  return found[0].value
}

/** Sum of the samples of `name` whose labels include `labels`. */
function sumOf (families, name, labels = {}) {
  const family = families.get(name)
  assert.ok(family, `metric ${name} is exposed`)
  return family.samples
    .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0)
}

// --- HTTP and setup helpers ---------------------------------------------------

/** GET over a fresh connection: { status, headers, body }. */
function get (port, urlPath = '/metrics', method = 'GET') {
  return within(new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method, agent: false }, (res) => {
      const chunks = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  }), 10000, `${method} ${urlPath}`)
}

/** A node:http server answering every request with handler. */
async function serve (defer, handler) {
  const server = http.createServer(handler)
  await new Promise((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve))
  defer(() => new Promise((resolve) => { server.close(resolve); server.closeAllConnections() }), 'metrics server close')
  return server.address().port
}

async function scrape (port) {
  const res = await get(port)
  assert.equal(res.status, 200, res.body)
  assert.equal(res.headers['content-type'], CONTENT_TYPE)
  assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body))
  return parseExposition(res.body)
}

async function startClients (defer) {
  const clients = await Clients.start()
  defer(() => clients.stop(), 'clients.stop()')
  return clients
}

function paths (first, n, topics = ['news']) {
  return Array.from({ length: n }, (_, k) => ssePath({ tag: first + k, topics, user: `u${(first + k) % 3}` }))
}

/** Waits until the hub has delivered `delivered` events and holds nothing queued. */
function settled (hub, delivered) {
  return waitFor(() => {
    const s = hub.stats()
    return s.delivered === delivered && s.queueBytes === 0
  }, 10000, () => `delivered ${hub.stats().delivered} (want ${delivered}), queueBytes ${hub.stats().queueBytes}`)
}

/** Checks every figure of one hub's series (labels `base`) against stats. */
function assertMatches (families, prefix, base, stats) {
  const v = (name, extra = {}) => valueOf(families, prefix + name, { ...base, ...extra })
  assert.equal(v('connections', { transport: 'native' }), stats.native)
  assert.equal(v('connections', { transport: 'js' }), stats.js)
  assert.equal(v('subscriptions'), stats.subscriptions)
  assert.equal(v('queue_bytes'), stats.queueBytes)
  assert.equal(v('users'), stats.users)
  assert.equal(v('published_total'), stats.published)
  assert.equal(v('delivered_total'), stats.delivered)
  assert.equal(v('bytes_written_total'), stats.bytesWritten)
  assert.equal(v('slow_disconnects_total'), stats.slow)
  assert.equal(v('heartbeats_total'), stats.heartbeats)
  assert.equal(v('queue_full_total'), stats.queueFull)
  assert.equal(v('compressed_connections'), stats.compression.connections)
  assert.equal(v('compression_in_bytes_total'), stats.compression.bytesIn)
  assert.equal(v('compression_out_bytes_total'), stats.compression.bytesOut)
  stats.threads.forEach((t, i) => {
    const thread = String(i)
    assert.equal(v('thread_connections', { thread }), t.connections, `thread ${i} connections`)
    assert.equal(v('thread_queue_bytes', { thread }), t.queueBytes, `thread ${i} queue bytes`)
    assert.equal(v('thread_delivered_total', { thread }), t.delivered, `thread ${i} delivered`)
    assert.equal(v('thread_bytes_written_total', { thread }), t.bytesWritten, `thread ${i} bytes written`)
  })
  // The per-thread figures add up to the totals.
  const sum = (name) => sumOf(families, prefix + name, base)
  assert.equal(sum('thread_connections'), stats.connections)
  assert.equal(sum('thread_queue_bytes'), v('queue_bytes'))
  assert.equal(sum('thread_delivered_total'), v('delivered_total'))
  assert.equal(sum('thread_bytes_written_total'), v('bytes_written_total'))
  assert.equal(v('connections', { transport: 'native' }) + v('connections', { transport: 'js' }), stats.connections)
}

// --- tests --------------------------------------------------------------------

test('handler: the exposition parses and matches hub.stats(); counters follow the hub; one stats() per scrape', async (t) => {
  const { hub, server, defer } = await startHub(t, { hub: { threads: 2, heartbeatMs: 0 } })
  const registry = new prom.Registry()
  const m = metrics(hub, { registry })
  defer(() => m.unregister(), 'unregister')
  assert.equal(m.registry, registry)
  assert.ok(Object.isFrozen(m))
  let statsCalls = 0
  hub.stats = function () { statsCalls++; return Hub.prototype.stats.call(this) }
  const port = await serve(defer, m.handler)
  const clients = await startClients(defer)

  const N = 6
  const { indices } = await clients.open({ n: N, port: server.port, paths: paths(0, N) })
  for (let k = 0; k < 5; k++) hub.publish('news', `news ${k}`)
  hub.publish('nobody', 'unmatched')
  hub.broadcast({ k: 'all' })
  hub.send(server.conn(2).id, 'just you')
  await clients.waitCounts(indices, 6)
  await settled(hub, N * 6 + 1)

  let calls = statsCalls
  let families = await scrape(port)
  assert.equal(statsCalls - calls, 1, 'one hub.stats() for the whole scrape')
  let stats = Hub.prototype.stats.call(hub)
  // Every metric is there, with HELP and the right TYPE, and nothing else.
  assert.deepEqual([...families.keys()].sort(), [...GAUGES, ...COUNTERS].map((n) => `sse_fanout_${n}`).sort())
  for (const family of families.values()) {
    assert.ok(family.help && family.help.length > 10, `${family.name} has a HELP text`)
    assert.equal(family.type, COUNTERS.includes(family.name.slice('sse_fanout_'.length)) ? 'counter' : 'gauge', family.name)
  }
  assert.equal(stats.connections, N)
  assert.equal(stats.native, N)
  assert.equal(stats.published, 8)
  assert.equal(stats.delivered, N * 6 + 1)
  assert.equal(stats.users, 3)
  assert.ok(stats.bytesWritten > 0)
  assert.equal(stats.threads.length, 2)
  assertMatches(families, 'sse_fanout_', {}, stats)
  assert.deepEqual(families.get('sse_fanout_thread_connections').samples.map((s) => s.labels.thread), ['0', '1'])

  // More traffic: the counters rise by exactly what the hub's figures rose.
  for (let k = 0; k < 3; k++) hub.publish('news', `later ${k}`)
  await clients.waitCounts(indices, 9)
  await settled(hub, N * 9 + 1)
  calls = statsCalls
  families = await scrape(port)
  assert.equal(statsCalls - calls, 1)
  stats = Hub.prototype.stats.call(hub)
  assert.equal(stats.published, 11)
  assertMatches(families, 'sse_fanout_', {}, stats)

  // A scrape with nothing new changes nothing.
  const again = await scrape(port)
  assertMatches(again, 'sse_fanout_', {}, stats)
})

test('compression series follow hub.stats().compression: streams sent gzip, bytes before and after', async (t) => {
  const hub = new Hub({ threads: 1, heartbeatMs: 0, compression: true })
  const defer = cleanup(t)
  defer(() => hub.close(), 'hub.close()')
  const app = http.createServer((req, res) => hub.accept(req, res, { topics: ['news'] }))
  await new Promise((resolve) => app.listen({ host: '127.0.0.1', port: 0 }, resolve))
  defer(() => new Promise((resolve) => { app.close(resolve); app.closeAllConnections() }), 'app close')
  const m = metrics(hub, { registry: new prom.Registry() })
  defer(() => m.unregister(), 'unregister')
  const port = await serve(defer, m.handler)
  // Two gzip streams and one identity stream, each counting its raw bytes.
  const raw = [0, 0, 0]
  for (const [i, encoding] of ['gzip', 'gzip', 'identity'].entries()) {
    const res = await new Promise((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: app.address().port, path: '/', headers: { 'accept-encoding': encoding } }, resolve).on('error', reject)
    })
    res.on('data', (chunk) => { raw[i] += chunk.length })
  }
  await waitFor(() => hub.stats().compression.connections === 2, 5000, 'two compressed streams')
  const record = JSON.stringify({ id: 'r1', title: 'A post about compression', body: 'lorem ipsum dolor sit amet '.repeat(40) })
  for (let k = 0; k < 20; k++) hub.publish('news', record)
  await settled(hub, 60)
  const stats = hub.stats()
  const families = await scrape(port)
  assertMatches(families, 'sse_fanout_', {}, stats)
  assert.equal(stats.compression.connections, 2)
  // Each compressed stream took the 20 events (and its gzip header): the
  // bytes before are the identity stream's events, the bytes after far fewer.
  assert.ok(stats.compression.bytesIn >= 2 * 20 * record.length, `bytesIn ${stats.compression.bytesIn}`)
  assert.ok(stats.compression.bytesOut * 4 < stats.compression.bytesIn, `bytesOut ${stats.compression.bytesOut} of ${stats.compression.bytesIn}`)
  await waitFor(() => raw[2] > 20 * record.length && raw[0] > 0 && raw[1] > 0, 5000, () => `raw bytes ${raw}`)
  assert.ok(raw[0] * 4 < raw[2], `gzip stream ${raw[0]} bytes, identity ${raw[2]}`)
})

test('history_* series follow hub.stats().history; a hub without history reports none (or 0)', async (t) => {
  const { hub, port: ssePort, defer } = await startHub(t, {
    hub: { threads: 1, heartbeatMs: 0, history: { epoch: 'm1' } },
    handler: (hub) => (req, res) => hub.accept(req, res, { topics: ['a'] })
  })
  const registry = new prom.Registry()
  const m = metrics(hub, { registry })
  defer(() => m.unregister(), 'unregister')
  const port = await serve(defer, m.handler)
  for (let k = 0; k < 4; k++) hub.publish('a', `e${k}`)
  const streams = []
  for (const cursor of ['m1-1', 'nope', 'other-1']) {
    const req = http.get({ host: '127.0.0.1', port: ssePort, path: '/', headers: { 'last-event-id': cursor }, agent: false })
    streams.push(req)
    await once(req, 'response')
  }
  await waitFor(() => hub.stats().history.replays === 1, 5000, 'the replay')
  const families = await scrape(port)
  const h = hub.stats().history
  const v = (name, labels) => valueOf(families, `sse_fanout_${name}`, labels)
  assert.equal(v('history_events'), h.events)
  assert.equal(v('history_bytes'), h.bytes)
  assert.equal(v('history_replays_total'), 1)
  assert.equal(v('history_replayed_events_total'), 3)
  assert.deepEqual(['unknown', 'epoch', 'expired', 'limit'].map((reason) => v('history_resets_total', { reason })), [1, 1, 0, 0])
  assert.equal(v('history_polls_total'), 0)
  for (const req of streams) req.destroy()

  const plain = new Hub({ threads: 1 })
  defer(() => plain.close(), 'plain hub')
  const other = new prom.Registry()
  metrics(plain, { registry: other })
  // prom-client writes 0 for an unlabelled metric nobody set; nothing else.
  const samples = (await other.metrics()).split('\n').filter((l) => l.startsWith('sse_fanout_history_'))
  assert.deepEqual(samples.filter((l) => !l.endsWith(' 0')), [], 'no history figure without history')
})

test('heartbeats_total follows the hub between two stats() readings', async (t) => {
  const { hub, server, defer } = await startHub(t, { hub: { threads: 1, heartbeatMs: 20 } })
  const registry = new prom.Registry()
  const m = metrics(hub, { registry })
  defer(() => m.unregister(), 'unregister')
  const port = await serve(defer, m.handler)
  const clients = await startClients(defer)
  await clients.open({ n: 2, port: server.port, paths: paths(0, 2) })
  await waitFor(() => hub.stats().heartbeats >= 4, 10000, 'heartbeats')
  const before = hub.stats()
  const families = await scrape(port)
  const after = hub.stats()
  const scraped = valueOf(families, 'sse_fanout_heartbeats_total')
  assert.ok(scraped >= before.heartbeats && scraped <= after.heartbeats,
    `${scraped} between ${before.heartbeats} and ${after.heartbeats}`)
  const bytes = valueOf(families, 'sse_fanout_bytes_written_total')
  assert.ok(bytes >= before.bytesWritten && bytes <= after.bytesWritten)
})

test('joins an existing registry: app metrics kept, prefix and labels, two hubs, unregister()', async (t) => {
  const defer = cleanup(t)
  const chat = await startHub(t, { defer, hub: { threads: 2, heartbeatMs: 0 } })
  const news = await startHub(t, { defer, hub: { threads: 1, heartbeatMs: 0 } })
  const registry = new prom.Registry()
  const appCounter = new prom.Counter({ name: 'app_requests_total', help: 'Requests the app served', registers: [registry] })
  appCounter.inc(3)
  const listeners = chat.hub.listenerCount('disconnect')

  const prefix = 'myapp_sse_'
  const mChat = metrics(chat.hub, { registry, prefix, labels: { hub: 'chat', region: 'eu' } })
  defer(() => mChat.unregister(), 'unregister chat')
  const mNews = metrics(news.hub, { registry, prefix, labels: { region: 'eu', hub: 'news' } })
  defer(() => mNews.unregister(), 'unregister news')
  assert.equal(chat.hub.listenerCount('disconnect'), listeners + 1)

  // One more hub under the same prefix needs the same label names and distinct values.
  assert.throws(() => metrics(news.hub, { registry, prefix, labels: { hub: 'other' } }),
    { name: 'SseError', code: 'ERR_SSE_INVALID_ARGUMENT', message: /same label names/ })
  assert.throws(() => metrics(news.hub, { registry, prefix, labels: { hub: 'chat', region: 'eu' } }),
    { name: 'SseError', code: 'ERR_SSE_INVALID_ARGUMENT', message: /distinct options\.labels/ })
  // A name the app already uses is refused, and nothing is left behind.
  new prom.Gauge({ name: 'taken_connections', help: 'the app\'s own', registers: [registry] }) // eslint-disable-line no-new
  assert.throws(() => metrics(news.hub, { registry, prefix: 'taken_' }),
    { name: 'SseError', code: 'ERR_SSE_INVALID_ARGUMENT', message: /already has a metric named taken_connections/ })
  assert.equal(registry.getMetricsAsArray().filter((x) => x.name.startsWith('taken_')).length, 1)

  const port = await serve(defer, mChat.handler)
  const clients = await startClients(defer)
  const a = await clients.open({ n: 3, port: chat.server.port, paths: paths(0, 3) })
  const b = await clients.open({ n: 2, port: news.server.port, paths: paths(10, 2) })
  chat.hub.publish('news', 'to chat')
  news.hub.publish('news', 'to news')
  news.hub.publish('news', 'to news again')
  await clients.waitCounts(a.indices, 1)
  await clients.waitCounts(b.indices, 2)
  await settled(chat.hub, 3)
  await settled(news.hub, 4)

  let families = await scrape(port)
  assert.equal(valueOf(families, 'app_requests_total'), 3, 'the app metric is still served')
  assert.equal(families.get('app_requests_total').help, 'Requests the app served')
  assert.ok(![...families.keys()].some((n) => n.startsWith('sse_fanout_')), 'the default prefix is not used')
  assert.deepEqual([...families.keys()].filter((n) => n.startsWith(prefix)).sort(),
    [...GAUGES, ...COUNTERS].map((n) => prefix + n).sort())
  // Every sample of ours carries the constant labels.
  for (const family of families.values()) {
    if (!family.name.startsWith(prefix)) continue
    for (const s of family.samples) {
      assert.equal(s.labels.region, 'eu', `${s.name} ${JSON.stringify(s.labels)}`)
      assert.ok(s.labels.hub === 'chat' || s.labels.hub === 'news', `${s.name} ${JSON.stringify(s.labels)}`)
    }
  }
  assertMatches(families, prefix, { hub: 'chat', region: 'eu' }, chat.hub.stats())
  assertMatches(families, prefix, { hub: 'news', region: 'eu' }, news.hub.stats())
  assert.equal(valueOf(families, `${prefix}connections`, { hub: 'chat', region: 'eu', transport: 'native' }), 3)
  assert.equal(valueOf(families, `${prefix}connections`, { hub: 'news', region: 'eu', transport: 'native' }), 2)
  assert.equal(valueOf(families, `${prefix}published_total`, { hub: 'news', region: 'eu' }), 2)
  // Both handlers serve the same registry.
  assert.equal(mNews.registry, registry)

  // unregister() takes one hub's series out; the other hub and the app stay.
  mChat.unregister()
  mChat.unregister() // idempotent
  assert.equal(chat.hub.listenerCount('disconnect'), listeners)
  families = await scrape(port)
  assert.equal(valueOf(families, 'app_requests_total'), 3)
  for (const family of families.values()) {
    for (const s of family.samples) assert.notEqual(s.labels.hub, 'chat', `${s.name} still has the chat hub`)
  }
  assertMatches(families, prefix, { hub: 'news', region: 'eu' }, news.hub.stats())

  // The last one out removes the metrics themselves.
  mNews.unregister()
  families = await scrape(port)
  assert.deepEqual([...families.keys()].filter((n) => n !== 'taken_connections'), ['app_requests_total'])
  assert.equal(registry.getSingleMetric(`${prefix}connections`), undefined)

  // The prefix can be taken again, now with other label names.
  const again = metrics(chat.hub, { registry, prefix, labels: { shard: '1' } })
  families = await scrape(port)
  assert.equal(valueOf(families, `${prefix}connections`, { shard: '1', transport: 'native' }), 3)
  again.unregister()
})

test('the default registry is prom-client\'s global one; a cleared registry starts afresh', async (t) => {
  const defer = cleanup(t)
  const hub = new Hub({ threads: 1 })
  defer(() => hub.close(), 'hub.close()')
  const m = metrics(hub)
  defer(() => m.unregister(), 'unregister')
  assert.equal(m.registry, prom.register)
  assert.ok(prom.register.getSingleMetric('sse_fanout_connections'))
  hub.publish('t', 'x')
  hub.publish('t', 'y')
  const families = parseExposition(await prom.register.metrics())
  assert.equal(valueOf(families, 'sse_fanout_published_total'), 2)
  m.unregister()
  assert.equal(prom.register.getSingleMetric('sse_fanout_connections'), undefined)
  assert.equal(prom.register.getSingleMetric('sse_fanout_disconnects_total'), undefined)

  // Someone clears the registry under a live registration: the next one works.
  const registry = new prom.Registry()
  const first = metrics(hub, { registry })
  registry.clear()
  const second = metrics(hub, { registry })
  assert.equal(valueOf(parseExposition(await registry.metrics()), 'sse_fanout_published_total'), 2)
  first.unregister() // harmless now
  assert.equal(valueOf(parseExposition(await registry.metrics()), 'sse_fanout_published_total'), 2)
  second.unregister()
  assert.equal(registry.getMetricsAsArray().length, 0)
})

test('fastifyHandler serves the exposition from a real Fastify 5 app (JS transport hub)', async (t) => {
  const { hub, server, defer } = await startHub(t, { hub: { threads: 1, transport: 'js', heartbeatMs: 0 } })
  const registry = new prom.Registry()
  const m = metrics(hub, { registry, labels: { hub: 'fastify' } })
  defer(() => m.unregister(), 'unregister')
  const fastify = require('fastify')({ logger: false })
  defer(() => fastify.close(), 'fastify.close()')
  fastify.get('/metrics', m.fastifyHandler)
  await fastify.listen({ host: '127.0.0.1', port: 0 })
  const port = fastify.server.address().port

  const clients = await startClients(defer)
  const { indices } = await clients.open({ n: 3, port: server.port, paths: paths(0, 3) })
  hub.publish('news', 'one')
  hub.broadcast('two')
  await clients.waitCounts(indices, 2)
  await settled(hub, 6)

  const res = await get(port)
  assert.equal(res.status, 200, res.body)
  assert.equal(res.headers['content-type'], CONTENT_TYPE)
  const families = parseExposition(res.body)
  const stats = hub.stats()
  assert.equal(stats.js, 3)
  assertMatches(families, 'sse_fanout_', { hub: 'fastify' }, stats)
  assert.equal(valueOf(families, 'sse_fanout_connections', { hub: 'fastify', transport: 'js' }), 3)
  assert.equal(valueOf(families, 'sse_fanout_delivered_total', { hub: 'fastify' }), 6)

  // Fastify's inject goes through the same handler.
  const injected = await fastify.inject({ method: 'GET', url: '/metrics' })
  assert.equal(injected.statusCode, 200)
  assert.equal(injected.headers['content-type'], CONTENT_TYPE)
  parseExposition(injected.body)
})

test('handler works as an Express 5 route and answers 500 when collection fails', async (t) => {
  const defer = cleanup(t)
  const hub = new Hub({ threads: 1 })
  defer(() => hub.close(), 'hub.close()')
  const registry = new prom.Registry()
  const m = metrics(hub, { registry })
  defer(() => m.unregister(), 'unregister')
  const express = require('express')
  const app = express()
  app.get('/metrics', m.handler)
  const port = await serve(defer, app)
  hub.broadcast('nobody listens')
  const families = await scrape(port)
  assert.equal(valueOf(families, 'sse_fanout_published_total'), 1)
  assert.equal(valueOf(families, 'sse_fanout_delivered_total'), 0)
  const head = await get(port, '/metrics', 'HEAD')
  assert.equal(head.status, 200)
  assert.equal(head.body, '')

  // An app metric whose collect() throws: the handler answers 500, not a hang.
  new prom.Gauge({ name: 'broken', help: 'throws', registers: [registry], collect () { throw new Error('boom') } }) // eslint-disable-line no-new
  const res = await get(port)
  assert.equal(res.status, 500)
  assert.match(res.body, /boom/)
})

test('disconnects_total counts the hub\'s disconnect events by reason', async (t) => {
  const { hub, server, defer, disconnects: events } = await startHub(t, { hub: { threads: 2, heartbeatMs: 0 }, disconnects: true })
  const registry = new prom.Registry()
  const m = metrics(hub, { registry, labels: { hub: 'd' } })
  defer(() => m.unregister(), 'unregister')
  const port = await serve(defer, m.handler)
  const clients = await startClients(defer)
  const { indices } = await clients.open({ n: 8, port: server.port, paths: paths(0, 8) })

  const reasons = require('../../lib/native').disconnectReasons
  let families = await scrape(port)
  // Every reason the addon knows is there from the start, at 0.
  assert.deepEqual(families.get('sse_fanout_disconnects_total').samples.map((s) => s.labels.reason).sort(), [...reasons].sort())
  for (const reason of reasons) assert.equal(valueOf(families, 'sse_fanout_disconnects_total', { hub: 'd', reason }), 0)

  // Three clients go away.
  const closed = await clients.close({ indices: indices.slice(0, 3) })
  assert.equal(closed.length, 3)
  await waitFor(() => events.list.length === 3, 10000, () => `3 disconnect events, have ${JSON.stringify(events.list)}`)
  // Two are kicked.
  hub.kick(server.conn(5).id)
  hub.kick(server.conn(6).id)
  await waitFor(() => events.list.length === 5, 10000, () => `5 disconnect events, have ${JSON.stringify(events.list)}`)
  assert.deepEqual(events.list.map((e) => e.reason).sort(), ['client', 'client', 'client', 'kicked', 'kicked'])

  families = await scrape(port)
  const d = (reason) => valueOf(families, 'sse_fanout_disconnects_total', { hub: 'd', reason })
  assert.equal(d('client'), 3)
  assert.equal(d('kicked'), 2)
  assert.equal(d('slow'), 0)
  assert.equal(d('error'), 0)
  assert.equal(d('shutdown'), 0)
  assert.equal(valueOf(families, 'sse_fanout_connections', { hub: 'd', transport: 'native' }), 3)

  // After unregister() the listener is gone and the events are no longer counted.
  m.unregister()
  const other = metrics(hub, { registry, labels: { hub: 'd' } })
  defer(() => other.unregister(), 'unregister other')
  assert.equal(hub.listenerCount('disconnect'), 2, 'the fixture\'s recorder and the new registration')
  hub.kick(server.conn(7).id)
  await waitFor(() => events.list.length === 6, 10000, 'the sixth disconnect event')
  families = await scrape(port)
  assert.equal(d('kicked'), 1, 'the new registration counts from its start')
  assert.equal(d('client'), 0)
})

test('metrics() checks its arguments', () => {
  const hub = new Hub({ threads: 1 })
  try {
    const bad = { name: 'SseError', code: 'ERR_SSE_INVALID_ARGUMENT' }
    assert.throws(() => metrics(), { ...bad, message: 'Expected a Hub for hub but received undefined of type undefined' })
    assert.throws(() => metrics({}), bad)
    assert.throws(() => metrics(hub, null), bad)
    assert.throws(() => metrics(hub, { register: new prom.Registry() }), { ...bad, message: /options\.registry/ })
    assert.throws(() => metrics(hub, { registry: {} }), { ...bad, message: /options\.registry/ })
    assert.throws(() => metrics(hub, { prefix: 'bad-prefix' }), { ...bad, message: /options\.prefix/ })
    assert.throws(() => metrics(hub, { prefix: 3 }), { ...bad, message: /options\.prefix/ })
    assert.throws(() => metrics(hub, { labels: 'hub=chat' }), { ...bad, message: /options\.labels/ })
    assert.throws(() => metrics(hub, { labels: { 'a-b': 'x' } }), { ...bad, message: /label name/ })
    assert.throws(() => metrics(hub, { labels: { __name: 'x' } }), { ...bad, message: /label name/ })
    assert.throws(() => metrics(hub, { labels: { thread: 'x' } }), { ...bad, message: /used by the metrics/ })
    assert.throws(() => metrics(hub, { labels: { hub: 1 } }), { ...bad, message: /options\.labels\.hub/ })
    // Nothing was registered by the failed calls.
    assert.equal(prom.register.getSingleMetric('sse_fanout_connections'), undefined)
    // The entry point's two shapes.
    const entry = require('../../lib/metrics')
    assert.equal(typeof entry, 'function')
    assert.equal(entry.metrics, entry)
    assert.equal(require('sse-fanout/metrics'), entry)
    // An empty prefix is allowed.
    const registry = new prom.Registry()
    const m = metrics(hub, { registry, prefix: '' })
    assert.ok(registry.getSingleMetric('connections'))
    m.unregister()
  } finally {
    hub.close()
  }
})

/** Runs `code` in a fresh node where require('prom-client') fails as `failure` says. */
function runWithoutPromClient (failure) {
  const script = `
    const Module = require('node:module')
    const resolve = Module._resolveFilename
    Module._resolveFilename = function (request, ...rest) {
      if (request === 'prom-client' || request.startsWith('prom-client/')) {
        if (${JSON.stringify(failure)} === 'missing') {
          const err = new Error("Cannot find module '" + request + "'\\nRequire stack:\\n- " + rest[0].filename)
          err.code = 'MODULE_NOT_FOUND'
          throw err
        }
        throw new SyntaxError('prom-client is broken')
      }
      return resolve.call(this, request, ...rest)
    }
    const root = ${JSON.stringify(ROOT)}
    const { Hub, SseError } = require(root)          // the main package needs no prom-client
    const { metrics } = require(root + '/lib/metrics') // nor does loading the entry point
    const hub = new Hub({ threads: 1 })
    let out
    try {
      metrics(hub)
      out = { threw: false }
    } catch (err) {
      out = { threw: true, name: err.name, code: err.code, message: err.message,
        isSseError: err instanceof SseError, cause: err.cause && err.cause.code }
    }
    out.loaded = Object.keys(require.cache).some((f) => f.includes(require('node:path').sep + 'prom-client' + require('node:path').sep))
    hub.close().then(() => process.stdout.write(JSON.stringify(out)))
  `
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script], { cwd: ROOT, timeout: 20000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`child failed: ${err.message}\n${stderr}`))
      else resolve(JSON.parse(stdout))
    })
  })
}

test('without prom-client: a clear SseError ERR_SSE_MISSING_DEPENDENCY; other load errors pass through', async () => {
  const missing = await runWithoutPromClient('missing')
  assert.deepEqual(missing, {
    threw: true,
    name: 'SseError',
    code: 'ERR_SSE_MISSING_DEPENDENCY',
    message: 'sse-fanout/metrics needs prom-client (npm install prom-client)',
    isSseError: true,
    cause: 'MODULE_NOT_FOUND',
    loaded: false
  })
  const broken = await runWithoutPromClient('broken')
  assert.deepEqual(broken, {
    threw: true,
    name: 'SyntaxError',
    message: 'prom-client is broken',
    isSseError: false,
    loaded: false
  })
})
