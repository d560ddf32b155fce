'use strict'
// sse-fanout/express: a middleware that hands a request to a Hub, and a helper
// that closes the hub with the HTTP server. Express 5 and 4 (and connect): the
// middleware only needs (req, res, next) and uses res.locals when it is there.
//
//   const { Hub } = require('sse-fanout')
//   const { sse, closeWithServer } = require('sse-fanout/express')
//   const hub = new Hub()
//   app.get('/events', auth, sse(hub, { topics: (req) => req.query.topic, user: (req) => req.user.id }))
//   const server = app.listen(3000)
//   closeWithServer(hub, server)
//
// Many instances as one hub through Redis (sse-fanout/redis,
// docs/redis-frameworks.md): the hub the app makes takes the bus, and
// closeWithServer() closes it with the hub:
//   const hub = new Hub({ history: true, bus: new RedisBus({ url: process.env.REDIS_URL }) })
//
// On success the middleware does not call next(): the response is the stream,
// and the Connection ({ id, transport, user }) is on res.locals.sse. Every
// failure (a throwing or rejecting topics/user function, an SseError from
// hub.accept()) goes to next(err) with the response untouched, so the app's
// error handler answers it.
//
// poll(hub, { topics, user }) answers a catch-up poll
// (`GET ...?since=<cursor>&wait=<seconds>`, lib/history/catch-up.js) from the
// hub's history: 200 with the JSON result, or 204 when there is nothing new.
// topics and user are taken as sse() takes them; every failure (a throwing
// topics/user function, a bad query, a closed hub) goes to next(err) with a
// statusCode (400, 503) and the response untouched.
//
// client() serves the browser module, sse-fanout/client (lib/client-file.js),
// at the path the app mounts it on, so a page can import it without a bundler:
//   app.get('/sse-fanout-client.js', client())
// GET and HEAD are answered (200, or 304 for a matching If-None-Match); any
// other method goes to next() (Express's 404 under app.use); a file that
// cannot be read goes to next(err).
const { checkTopics, checkUser, checkRetry } = require('./validate')
const { SseError, invalid } = require('./errors')
const { pollRequest, writeResult } = require('./history/catch-up')
const { checkCompress } = require('./compression')
const { loadClient, writeFile } = require('./client-file')

const OPTIONS = ['topics', 'user', 'retry', 'compress']
const POLL_OPTIONS = ['topics', 'user']

function isThenable (value) {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof value.then === 'function'
}

// Static values are checked here, once, by the rules hub.accept() applies;
// values returned by functions are checked by hub.accept() on each request.
function checkOptions (options, allowed = OPTIONS) {
  if (options === undefined) return {}
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new SseError('ERR_SSE_INVALID_ARGUMENT', `Expected one of ${allowed.join(', ')} in options but received "${key}"`)
    }
  }
  const { topics, user, retry, compress } = options
  if (topics !== undefined && typeof topics !== 'function') checkTopics(topics, 'options.topics')
  if (user !== undefined && typeof user !== 'function') checkUser(user, 'options.user')
  checkRetry(retry, 'options.retry')
  checkCompress(compress, 'options.compress')
  return { topics, user, retry, compress }
}

function checkHub (hub, method = 'accept') {
  if (hub === null || typeof hub !== 'object' || typeof hub[method] !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Hub', 'hub', hub)
  }
}

/**
 * topics and user for one request: the static values, or what the functions
 * of req return (sync or a promise). Calls done(topics, user), or next(err)
 * when a function throws or rejects.
 */
function resolveOptions (req, topics, user, next, done) {
  let t = topics
  let u = user
  try {
    if (typeof topics === 'function') t = topics(req)
    if (typeof user === 'function') u = user(req)
  } catch (err) {
    if (isThenable(t)) Promise.resolve(t).catch(() => {}) // nobody will wait for it now
    next(err)
    return
  }
  if (!isThenable(t) && !isThenable(u)) {
    done(t, u)
    return
  }
  Promise.all([t, u]).then(([t, u]) => done(t, u), next)
}

/**
 * A middleware that turns the request into an SSE stream of `hub`.
 * @param {import('./hub').Hub} hub
 * @param {{ topics?: string | string[] | ((req) => any), user?: string | ((req) => any), retry?: number, compress?: boolean }} [options]
 * @returns {(req, res, next) => void} named sseFanout
 */
function sse (hub, options) {
  checkHub(hub)
  const { topics, user, retry, compress } = checkOptions(options)

  function accept (req, res, next, resolvedTopics, resolvedUser) {
    // The client went away (while an earlier middleware or our topics/user
    // function waited): there is nobody to stream to or to answer, and
    // nothing went wrong.
    if (res.destroyed) return
    let conn
    try {
      // req.ip honours Express's 'trust proxy' setting (maxConnectionsPerIp).
      const ip = typeof req.ip === 'string' && req.ip !== '' ? req.ip : undefined
      conn = hub.accept(req, res, { topics: resolvedTopics, user: resolvedUser, retry, ip, compress })
    } catch (err) {
      next(err)
      return
    }
    if (res.locals !== null && typeof res.locals === 'object') res.locals.sse = conn
    else res.locals = { sse: conn }
  }

  return function sseFanout (req, res, next) {
    resolveOptions(req, topics, user, next, (t, u) => accept(req, res, next, t, u))
  }
}

/**
 * A middleware (named ssePoll) that answers a catch-up poll of `hub`'s
 * history: `since` and `wait` (seconds) from the query, topics and user from
 * the options (values or functions of req, as sse() takes them).
 * @param {import('./hub').Hub} hub
 * @param {{ topics?: string | string[] | ((req) => any), user?: string | ((req) => any) }} [options]
 * @returns {(req, res, next) => void}
 */
function poll (hub, options) {
  checkHub(hub, 'catchUp')
  const { topics, user } = checkOptions(options, POLL_OPTIONS)
  return function ssePoll (req, res, next) {
    resolveOptions(req, topics, user, next, (t, u) => {
      if (res.destroyed) return // the client went away meanwhile
      pollRequest((o) => hub.catchUp(o), req, res, { topics: t, user: u }).then((result) => writeResult(res, result, hub.options?.compression ?? null, req), next)
    })
  }
}

/**
 * A handler (named sseFanoutClient) serving the browser module at the path it
 * is mounted on: app.get('/sse-fanout-client.js', client()).
 * @returns {(req, res, next) => void}
 */
function client () {
  return function sseFanoutClient (req, res, next) {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      next()
      return
    }
    loadClient().then((file) => writeFile(req, res, file), next)
  }
}

/**
 * Closes the hub when the HTTP server closes, and returns a function that
 * undoes it.
 *
 * Waiting for the server's 'close' event is not enough: Node does not track
 * the sockets the hub took over, and JS-transport streams (TLS, HTTP/2) are
 * responses that never finish by themselves, so they would hold the server
 * open until hub.close() ended them, which would only start on 'close'. So
 * server.close is wrapped on this server instance:
 *  - hub.close() starts first, then server.close does what it always does
 *    (stop listening, close idle connections, call back once every connection
 *    Node knows of has ended);
 *  - once hub.close() has resolved, the keep-alive connections that carried
 *    JS-transport streams are idle and are closed at once
 *    (server.closeIdleConnections()) instead of after keepAliveTimeout;
 *  - the callback given to server.close(cb) is called once the server and the
 *    hub have both closed, so `server.close(() => process.exit())` does not
 *    cut streams short (the 'close' event itself may come before the hub has
 *    flushed: native streams are not the server's to wait for).
 * The 'close' event is handled too, for a server closed some other way
 * (hub.close() is idempotent).
 * @param {import('./hub').Hub} hub
 * @param {import('node:net').Server} server an http or https server (any net.Server)
 * @returns {() => void} restores server.close and removes the 'close' listener
 */
function closeWithServer (hub, server) {
  if (hub === null || typeof hub !== 'object' || typeof hub.close !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Hub', 'hub', hub)
  }
  if (server === null || typeof server !== 'object' || typeof server.close !== 'function' || typeof server.on !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an http.Server', 'server', server)
  }

  /** Starts hub.close() (now, synchronously); resolves once it is done. */
  const closeHub = () => {
    let closing
    try {
      closing = Promise.resolve(hub.close())
    } catch (err) {
      closing = Promise.reject(err)
    }
    return closing.then(() => {
      if (!server.listening && typeof server.closeIdleConnections === 'function') server.closeIdleConnections()
    })
  }
  const onClose = () => {
    closeHub() // a rejection is reported as unhandled: nobody else would see it
  }

  const hadOwn = Object.prototype.hasOwnProperty.call(server, 'close')
  const previous = server.close
  const close = function close (callback, ...rest) {
    const hubClosed = closeHub()
    // Without a callback, a failing hub.close() (ours does not reject) is
    // reported as an unhandled rejection; the server closes all the same.
    if (typeof callback !== 'function') return previous.call(this, callback, ...rest)
    return previous.call(this, (err) => {
      hubClosed.then(() => callback(err), (hubErr) => callback(err || hubErr))
    }, ...rest)
  }
  server.close = close
  server.on('close', onClose)

  let undone = false
  return function undo () {
    if (undone) return
    undone = true
    server.removeListener('close', onClose)
    if (server.close === close) {
      if (hadOwn) server.close = previous
      else delete server.close
    }
  }
}

module.exports = sse
module.exports.sse = sse
module.exports.closeWithServer = closeWithServer
module.exports.poll = poll
module.exports.client = client
