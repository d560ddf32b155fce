'use strict'
// sse-fanout/fastify: a Fastify 5 plugin that owns (or borrows) a Hub and lets
// a route turn its request into an SSE stream in one line.
//
//   const fastify = require('fastify')()
//   fastify.register(require('sse-fanout/fastify'), { threads: 1 })
//   fastify.get('/events', (request, reply) => {
//     reply.sse({ topics: ['news', 'chat/*'], user: request.user?.id })
//   })
//   fastify.post('/news', async (request) => {
//     fastify.sse.publish('news', request.body)
//     return { ok: true }
//   })
//
// reply.sse() hands the raw request and response to hub.accept() and hijacks
// the reply, so Fastify never writes to a stream it no longer owns. Headers
// set on the reply before that (reply.header() in hooks, @fastify/cors in its
// default onRequest hook) are copied onto the raw response first, since
// hub.accept() only sees reply.raw. Hooks that run after the handler (onSend,
// preSerialization) do not run for a hijacked reply.
//
// A failing accept (an invalid topic, maxConnections reached, a closed hub)
// throws before anything was written and before the hijack, with a
// statusCode, so Fastify's error handler answers it (400, or 503). HEAD (the
// twin Fastify adds to every GET route) gets 405: it has no body to stream.
//
// In a sync handler, use a block body: a returned Connection would be passed
// to reply.send(), which logs "Reply was already sent". An async handler may
// return it (Fastify ignores what a hijacked reply's handler resolves to).
// A taken-over response never finishes as far as Node is concerned, so
// Fastify's onResponse hooks and "request completed" log do not run for it
// (they do, when the stream ends, for JS-transport streams); the hub's
// 'disconnect' event, logged at debug level here, is the end of a stream.
//
// reply.ssePoll(options) (`${decorator}Poll`) answers a catch-up poll
// (`GET ...?since=<cursor>&wait=<seconds>`, lib/history/catch-up.js) from the
// hub's history through the reply: 200 with the JSON result, 204 when there
// is nothing new, or an SseError with a statusCode (400, 503) for Fastify's
// error handler. An async handler returns it (`return reply.ssePoll({ topics })`).
//
// options.clientPath (e.g. '/sse-fanout-client.js') adds a GET route (and
// Fastify's HEAD twin) serving the browser module, sse-fanout/client
// (lib/client-file.js): through the reply, so the app's hooks (@fastify/cors,
// auth) apply to it; other methods get Fastify's 404. The route belongs to
// the context that registers the plugin (fastify-plugin): that context's
// prefix applies, a `prefix` given to this register() call does not.
//
// app.close() closes a hub the plugin created in a preClose hook: every
// stream ends before Fastify closes the server, which otherwise would wait
// for the JS-transport streams (TLS, HTTP/2, transport: 'js') it still sees.
//
// options.bus (a RedisBus of sse-fanout/redis, with options.history; see
// docs/redis-frameworks.md) is a Hub option like the others: the hub the
// plugin creates publishes through Redis (fastify.sse.publish() returns null
// while the bus is up; `await bus.publish()` gives the id), and closing it
// with the app closes the bus. The bus's state changes are logged (info,
// warn when it goes down) and its warnings at warn level.
//
// options.listen (the options of hub.listen(), docs/listener.md) also serves
// SSE on a port of its own through the native listener, for the heavy
// traffic: the I/O threads accept, parse and open those streams with no JS
// object per connection (same hub, same topics as reply.sse()). It listens
// when the plugin registers; `fastify.sseListener` (`${decorator}Listener`)
// is the Listener (its port, stats()), null without the option; it closes
// with the app.
//
//   const { RedisBus } = require('sse-fanout/redis')
//   fastify.register(require('sse-fanout/fastify'), { history: true, bus: new RedisBus({ url: process.env.REDIS_URL }) })
const fp = require('fastify-plugin')
const { Hub } = require('./hub')
const { SseError, invalid } = require('./errors')
// Framing and type are the hub's to decide (see headers.js).
const { NOT_COPIED_FROM_REPLY } = require('./headers')
const { pollRequest } = require('./history/catch-up')
const { loadClient, headersOf, matches } = require('./client-file')

const HUB_OPTIONS = ['threads', 'heartbeatMs', 'maxQueueBytes', 'maxSubscriptions', 'maxConnections', 'maxConnectionsPerIp', 'sndbufBytes', 'closeTimeoutMs',
  'keepAliveMs', 'tcpUserTimeoutMs', 'maxPendingCommands', 'maxPendingBytes', 'transport', 'history', 'bus', 'compression']
// SseErrors accept() throws that are not the client's fault.
const STATUS = { ERR_SSE_TOO_MANY_CONNECTIONS: 503, ERR_SSE_CLOSED: 503, ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP: 429 }

function hubOptions (options) {
  const out = {}
  for (const name of HUB_OPTIONS) if (options[name] !== undefined) out[name] = options[name]
  return out
}

function checkHub (hub, options) {
  if (hub === null || typeof hub !== 'object' || typeof hub.accept !== 'function' ||
      typeof hub.close !== 'function' || typeof hub.on !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Hub', 'options.hub', hub)
  }
  const given = HUB_OPTIONS.filter((name) => options[name] !== undefined)
  if (given.length > 0) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT',
      `Expected either options.hub or Hub options but received both (options.hub and options.${given.join(', options.')})`)
  }
  if (hub.closed) throw new SseError('ERR_SSE_CLOSED', 'options.hub is closed')
  return hub
}

/** Copies the reply's headers onto reply.raw; returns the names it added there. */
function copyHeaders (reply, res) {
  const headers = reply.getHeaders()
  const added = []
  for (const name of Object.keys(headers)) {
    const value = headers[name]
    if (value === undefined || NOT_COPIED_FROM_REPLY.has(name)) continue
    if (!res.hasHeader(name)) added.push(name)
    res.setHeader(name, value)
  }
  return added
}

// request.ip is the client's address as Fastify's trustProxy sees it: behind
// a trusted proxy, X-Forwarded-For's; maxConnectionsPerIp counts by it.
function withIp (options, ip) {
  if (typeof ip !== 'string' || ip === '') return options
  if (options === undefined) return { ip }
  if (options === null || typeof options !== 'object' || options.ip !== undefined) return options
  return { ...options, ip }
}

/** reply.sse(options): the reply becomes an SSE stream of hub. */
function accept (hub, reply, options) {
  if (reply.sent) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'Expected a reply that was not sent or hijacked yet for reply.sse()')
  }
  const req = reply.request.raw
  const res = reply.raw
  if (req.method === 'HEAD') {
    // exposeHeadRoutes gives every GET route a HEAD twin running the same
    // handler; a stream would write a body where HTTP allows none.
    const err = new SseError('ERR_SSE_INVALID_ARGUMENT', 'Expected a GET request for an SSE stream but received HEAD, which has no body')
    err.statusCode = 405
    err.headers = { allow: 'GET' }
    throw err
  }
  // Nobody reads a GET's (empty) body; unread, Node would call the request
  // aborted when the taken-over socket closes, and Fastify would run the
  // app's onRequestAbort hooks for every stream. Its 'end' comes first.
  if (!req.readableEnded) req.resume()
  let added = []
  let conn
  try {
    added = copyHeaders(reply, res)
    conn = hub.accept(req, res, withIp(options, reply.request.ip))
  } catch (err) {
    // accept() throws before writing anything: leave the reply as it was
    // for Fastify's error handler.
    if (!res.headersSent) for (const name of added) res.removeHeader(name)
    if (err instanceof SseError && err.statusCode === undefined) err.statusCode = STATUS[err.code] || 400
    throw err
  }
  // Synchronously after accept(): no 'close' of the taken-over socket can
  // have reached Fastify's listeners yet.
  reply.hijack()
  return conn
}

/** reply.ssePoll(options): the catch-up of hub's history for this request, sent through the reply. */
async function poll (hub, reply, options) {
  if (reply.sent) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'Expected a reply that was not sent or hijacked yet for reply.ssePoll()')
  }
  const result = await pollRequest((o) => hub.catchUp(o), reply.request.raw, reply.raw, options)
  reply.header('cache-control', 'no-store')
  if (result === null) return reply.code(204).send()
  return reply.code(200).type('application/json').send(result)
}

/** GET clientPath: the browser module, 304 when If-None-Match names its ETag. */
async function sendClient (request, reply) {
  const { body, etag } = await loadClient()
  reply.headers(headersOf(etag, reply.hasHeader('cache-control')))
  if (matches(request.headers['if-none-match'], etag)) return reply.code(304).send()
  return reply.send(body)
}

async function sseFanout (fastify, options) {
  const decorator = options.decorator === undefined ? 'sse' : options.decorator
  if (typeof decorator !== 'string' || decorator.length === 0) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty string', 'options.decorator', decorator)
  }
  // Checked before a Hub (and its threads) exists.
  const pollDecorator = `${decorator}Poll`
  const listenerDecorator = `${decorator}Listener`
  if (fastify.hasDecorator(listenerDecorator)) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', `Expected a free decorator name for options.decorator but "${listenerDecorator}" is already taken`)
  }
  if (options.listen !== undefined && (options.listen === null || typeof options.listen !== 'object')) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'the options of hub.listen()', 'options.listen', options.listen)
  }
  if (fastify.hasDecorator(decorator) || fastify.hasReplyDecorator(decorator) || fastify.hasReplyDecorator(pollDecorator)) {
    const taken = fastify.hasReplyDecorator(pollDecorator) ? pollDecorator : decorator
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', `Expected a free decorator name for options.decorator but "${taken}" is already taken`)
  }
  const { clientPath } = options
  if (clientPath !== undefined && (typeof clientPath !== 'string' || !clientPath.startsWith('/'))) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', "a path starting with '/'", 'options.clientPath', clientPath)
  }
  // Before the Hub too: a route Fastify refuses (a duplicate) leaves no threads behind.
  if (clientPath !== undefined) fastify.get(clientPath, sendClient)
  const owned = options.hub === undefined
  const hub = owned ? new Hub(hubOptions(options)) : checkHub(options.hub, options)

  const log = fastify.log
  const onConnect = ({ id, transport, user }) => log.debug({ sseConnection: id, transport, user }, 'sse connect')
  const onDisconnect = ({ id, reason }) => log.debug({ sseConnection: id, reason }, 'sse disconnect')
  // Only when the logger takes debug lines at registration: a 'connect'
  // listener makes the hub build an object per native-listener stream.
  const debug = typeof log.isLevelEnabled === 'function' ? log.isLevelEnabled('debug') : log.level === 'debug' || log.level === 'trace'
  if (debug) {
    hub.on('connect', onConnect)
    hub.on('disconnect', onDisconnect)
  }
  // Our own hub's bus only: a borrowed hub's owner watches its bus.
  const bus = owned && options.bus != null ? options.bus : null
  const onBusState = ({ state, previous, reason }) => {
    log[state === 'down' ? 'warn' : 'info']({ sseBus: state, previous, reason }, 'sse redis bus')
  }
  const onBusWarning = ({ message }) => log.warn({ sseBus: 'warning' }, message)
  if (bus !== null) {
    bus.on('state', onBusState)
    bus.on('warning', onBusWarning)
  }

  let listener = null
  if (options.listen !== undefined) {
    try {
      listener = await hub.listen(options.listen)
    } catch (err) {
      if (owned) await hub.close()
      throw err
    }
    log.info({ sseListener: listener.port }, 'sse native listener')
  }
  fastify.decorate(decorator, hub)
  fastify.decorate(listenerDecorator, listener)
  fastify.decorateReply(decorator, function sse (acceptOptions) {
    return accept(hub, this, acceptOptions)
  })
  fastify.decorateReply(pollDecorator, function ssePoll (pollOptions) {
    return poll(hub, this, pollOptions)
  })

  if (owned || listener !== null) {
    // Before Fastify closes the server (see the top of the file).
    fastify.addHook('preClose', async function closeHub () {
      if (listener !== null) await listener.close()
      if (owned) await hub.close()
    })
  }
  fastify.addHook('onClose', async function detachHub () {
    // preClose does not run when the app never became ready.
    if (listener !== null) await listener.close()
    if (owned) await hub.close()
    hub.removeListener('connect', onConnect)
    hub.removeListener('disconnect', onDisconnect)
    if (bus !== null) {
      bus.removeListener('state', onBusState)
      bus.removeListener('warning', onBusWarning)
    }
  })
}

const plugin = fp(sseFanout, { name: 'sse-fanout', fastify: '5.x' })

module.exports = plugin
module.exports.default = plugin
module.exports.sseFanout = plugin
