'use strict'
// sse-fanout/pocketbase: the PocketBase realtime protocol (GET and POST
// /api/realtime) on a Hub, so the official `pocketbase` JS SDK works unchanged.
// The wire format and the status codes follow PocketBase (README.md,
// "PocketBase realtime"). Rules, filters and field lists run natively
// (src/pocketbase/pb_index.hpp): a record event is parsed once and encoded once per
// distinct subscription string; the client id goes out as each connection's
// own `id:` line in front of the shared frame.
const crypto = require('node:crypto')
const { EventEmitter } = require('node:events')
const { Hub } = require('./hub')
const { SseError, invalid } = require('./errors')
const { emitAll } = require('./emit-all')
const native = require('./native')

const CLIENT_ID_LENGTH = 40
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const MAX_CLIENT_ID = 255
const MAX_SUBSCRIPTIONS = 1000
const MAX_SUBSCRIPTION_CHARS = 2500
const ACTIONS = new Set(['create', 'update', 'delete'])
const SUPERUSERS = '_superusers'
const LINE_BREAK_OR_NUL = /[\r\n\0]/
const STATUS = native.statusNames

const DEFAULTS = Object.freeze({
  idleTimeoutMs: 5 * 60 * 1000,
  maxLifetimeMs: 30 * 60 * 1000,
  checkIp: true,
  allowFormBodies: false,
  maxBodyBytes: 1024 * 1024,
  // Subscription budgets (src/pocketbase/pb_index.hpp, PbLimits): SDK apps hold
  // fewer than 20 subscriptions; plain keys stay under PocketBase's 1000.
  maxOptionSubscriptionsPerClient: 100,
  maxFilterNodesPerClient: 200,
  maxCompiledBytesPerClient: 1024 * 1024,
  // Hub-wide: 1,000,000 / maxSubscriptionsPerIp = 200 addresses to fill it
  // (memory stays capped by maxCompiledBytes: 256 MiB / 4 MiB = 64 addresses).
  maxDistinctSubscriptions: 1000000,
  maxCompiledBytes: 256 * 1024 * 1024,
  // The same sums over every stream of one client address (clientIp): one
  // address may open maxConnectionsPerIp (256) streams. A few clients' worth,
  // so a NAT'd office fits; behind a proxy clientIp must give the real address.
  maxOptionSubscriptionsPerIp: 200,
  maxFilterNodesPerIp: 400,
  maxCompiledBytesPerIp: 4 * 1024 * 1024,
  maxSubscriptionsPerIp: 5000
})

// Status name -> [option, what it counts] for a refused set.
const BUDGETS = {
  TOO_MANY_OPTION_SUBSCRIPTIONS: ['maxOptionSubscriptionsPerClient', 'subscriptions with options per client'],
  CLIENT_FILTER_BUDGET: ['maxFilterNodesPerClient', 'filter nodes per client'],
  CLIENT_MEMORY_BUDGET: ['maxCompiledBytesPerClient', 'compiled bytes per client'],
  TOO_MANY_DISTINCT_SUBSCRIPTIONS: ['maxDistinctSubscriptions', 'distinct subscriptions on this server'],
  SUBSCRIPTION_MEMORY_BUDGET: ['maxCompiledBytes', 'compiled subscription bytes on this server'],
  TOO_MANY_IP_OPTION_SUBSCRIPTIONS: ['maxOptionSubscriptionsPerIp', 'subscriptions with options per client address'],
  IP_FILTER_BUDGET: ['maxFilterNodesPerIp', 'filter nodes per client address'],
  IP_MEMORY_BUDGET: ['maxCompiledBytesPerIp', 'compiled bytes per client address'],
  TOO_MANY_IP_SUBSCRIPTIONS: ['maxSubscriptionsPerIp', 'subscriptions per client address']
}
// The budgets NativeRealtime reads from this.options (src/addon/realtime_wrap.cpp).
const BUDGET_OPTIONS = ['maxOptionSubscriptionsPerClient', 'maxFilterNodesPerClient', 'maxCompiledBytesPerClient',
  'maxDistinctSubscriptions', 'maxCompiledBytes', 'maxOptionSubscriptionsPerIp', 'maxFilterNodesPerIp',
  'maxCompiledBytesPerIp', 'maxSubscriptionsPerIp']

const MESSAGES = {
  400: 'Something went wrong while processing your request.',
  404: 'Missing or invalid client id.',
  403: "The current and the previous request authorization don't match.",
  413: 'Request entity too large',
  429: 'Too Many Requests.',
  405: 'Method not allowed.',
  500: 'Something went wrong while processing your request.'
}
const INVALID_CLIENT = 'Invalid realtime client.'
const REFUSED_TOPIC = 'refused by options.authorizeTopic'

const isThenable = (value) => value !== null && typeof value === 'object' && typeof value.then === 'function'

/** 40 characters of [A-Za-z0-9] from crypto.randomBytes, uniform (bytes >= 248 are dropped). */
function newClientId () {
  let id = ''
  while (id.length < CLIENT_ID_LENGTH) {
    for (const b of crypto.randomBytes(48)) {
      if (b >= 248) continue
      id += ALPHABET[b % 62]
      if (id.length === CLIENT_ID_LENGTH) break
    }
  }
  return id
}

/** An error answered with PocketBase's body: {"data":{...},"message":"...","status":N}. */
class PbHttpError extends Error {
  constructor (status, message = MESSAGES[status], data = {}) {
    super(message)
    this.status = status
    this.data = data
  }
}

/** The SseError of a native status from broadcastRecord, publish or sendToClient. */
function statusError (method, status, tooLarge) {
  const name = STATUS[status]
  const message = name === 'DATA_TOO_LARGE'
    ? tooLarge
    : name === 'QUEUE_FULL'
      ? 'the I/O threads are behind: maxPendingCommands or maxPendingBytes reached; nothing was queued'
      : 'refused'
  return new SseError(`ERR_SSE_${name}`, `${method}: ${message}`)
}

function sendJsonError (res, status, message, data) {
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return
  }
  const body = JSON.stringify({ data, message, status })
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function lengthError (code, message) { return { code, message } }

/** The HTTP status for an accept() that refused a stream. */
function connectStatus (err) {
  if (err.statusCode) return err.statusCode
  return err.code === 'ERR_SSE_CLOSED' || err.code === 'ERR_SSE_TOO_MANY_CONNECTIONS' ? 503 : 400
}

/** PocketBase's form checks (ozzo-validation): every field's first failing rule. */
function validateForm (clientId, subscriptions) {
  const data = {}
  const chars = [...clientId].length
  if (chars === 0) {
    data.clientId = lengthError('validation_required', 'Cannot be blank.')
  } else if (chars > MAX_CLIENT_ID) {
    data.clientId = lengthError('validation_length_out_of_range', `The length must be between 1 and ${MAX_CLIENT_ID}.`)
  }
  if (subscriptions.length > MAX_SUBSCRIPTIONS) {
    data.subscriptions = lengthError('validation_length_too_long', `The length must be no more than ${MAX_SUBSCRIPTIONS}.`)
  } else {
    const each = {}
    for (let i = 0; i < subscriptions.length; i++) {
      const s = subscriptions[i]
      if (s.length > MAX_SUBSCRIPTION_CHARS && [...s].length > MAX_SUBSCRIPTION_CHARS) {
        each[i] = lengthError('validation_length_too_long', `The length must be no more than ${MAX_SUBSCRIPTION_CHARS}.`)
      } else if (LINE_BREAK_OR_NUL.test(s)) {
        // Not a PocketBase rule: the subscription is the frame's event name,
        // and a line break there would let a client forge fields.
        each[i] = lengthError('validation_invalid_value', 'Must not contain CR, LF or NUL.')
      }
    }
    if (Object.keys(each).length > 0) data.subscriptions = each
  }
  if (Object.keys(data).length > 0) throw new PbHttpError(400, MESSAGES[400], data)
}

function mediaType (req) {
  return String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase()
}

function isForm (req) { return mediaType(req) === 'application/x-www-form-urlencoded' }

function isJson (req) {
  const type = mediaType(req)
  return type === 'application/json' || type.endsWith('+json')
}

/**
 * {clientId, subscriptions} from a parsed body. JSON types are strict (Go's
 * decoder refuses a string where a list belongs); a form may give one value.
 */
function readForm (body, form) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new PbHttpError(400)
  let { clientId, subscriptions } = body
  if (clientId === undefined || clientId === null) clientId = ''
  if (typeof clientId !== 'string') throw new PbHttpError(400)
  if (subscriptions === undefined || subscriptions === null) subscriptions = []
  if (form && typeof subscriptions === 'string') subscriptions = [subscriptions]
  if (!Array.isArray(subscriptions) || !subscriptions.every((s) => typeof s === 'string')) throw new PbHttpError(400)
  return { clientId, subscriptions }
}

// As PocketBase's BindBody: an empty body binds nothing (validation then
// speaks), JSON is read, forms only when allowed; any other type is refused.
function parseBody (buffer, req, allowForms) {
  if (buffer.length === 0) return {}
  const text = buffer.toString('utf8')
  if (isForm(req)) {
    if (!allowForms) throw new PbHttpError(400)
    const params = new URLSearchParams(text)
    return { clientId: params.get('clientId') ?? '', subscriptions: params.getAll('subscriptions') }
  }
  if (!isJson(req)) throw new PbHttpError(400)
  return goJsonFields(firstJsonValue(text))
}

// Go's json.Decoder (PocketBase's BindBody) reads the first JSON value and
// ignores what follows it: `{"clientId":"x"} trailing` binds, and so does
// `null` (nothing bound; validation speaks).
function firstJsonValue (text) {
  try {
    return JSON.parse(text)
  } catch {}
  let i = 0
  while (i < text.length && ' \t\r\n'.includes(text[i])) i++
  if (text.startsWith('null', i)) return null
  if (text[i] === '{') {
    let depth = 0
    let inString = false
    for (let j = i; j < text.length; j++) {
      const c = text[j]
      if (inString) {
        if (c === '\\') j++
        else if (c === '"') inString = false
      } else if (c === '"') {
        inString = true
      } else if (c === '{' || c === '[') {
        depth++
      } else if ((c === '}' || c === ']') && --depth === 0) {
        try {
          return JSON.parse(text.slice(i, j + 1))
        } catch {
          break
        }
      }
    }
  }
  throw new PbHttpError(400)
}

// Go's decoder matches object keys to struct fields case-insensitively (with
// Unicode simple folding: U+017F folds to s, U+212A to k); the last key that
// matches a field wins.
const FOLD = (k) => k.toLowerCase().replace(/\u017f/g, 's').replace(/\u212a/g, 'k')
function goJsonFields (body) {
  if (body === null) return {}
  if (typeof body !== 'object' || Array.isArray(body)) return body
  const out = {}
  for (const [key, value] of Object.entries(body)) {
    const folded = FOLD(key)
    if (folded === 'clientid') out.clientId = value
    else if (folded === 'subscriptions') out.subscriptions = value
  }
  return out
}

function readBody (req, limit) {
  const declared = Number(req.headers['content-length'])
  if (declared > limit) return Promise.reject(new PbHttpError(413))
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    const onData = (chunk) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        req.resume()
        reject(new PbHttpError(413))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => { cleanup(); resolve(Buffer.concat(chunks, size)) }
    const onError = (err) => { cleanup(); reject(err) }
    const cleanup = () => {
      req.removeListener('data', onData)
      req.removeListener('end', onEnd)
      req.removeListener('error', onError)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}

function intOption (options, name) {
  const value = options[name] === undefined ? DEFAULTS[name] : options[name]
  if (!Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between 0 and ${2 ** 31 - 1}`, `options.${name}`, value)
  }
  return value
}

function checkAuth (auth) {
  if (auth === null || auth === undefined) return null
  if (typeof auth !== 'object' || typeof auth.id !== 'string' || auth.id === '' ||
      typeof auth.collectionId !== 'string' || auth.collectionId === '') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'null or an auth record with string id and collectionId', 'the result of options.authenticate', auth)
  }
  return auth
}

function checkIdentityArgs (collectionId, id, prefix = '') {
  if (typeof collectionId !== 'string' || collectionId === '') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty string', `${prefix}collectionId`, collectionId)
  }
  if (typeof id !== 'string' || id === '') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty string', `${prefix}id`, id)
}

function checkRule (rule, name) {
  if (rule === null || rule === undefined) return null
  if (typeof rule !== 'string') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a filter string or null (superusers only)', name, rule)
  return rule
}

function checkCollection (collection) {
  if (collection === null || typeof collection !== 'object') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a collection object ({ name, id, listRule, viewRule })', 'collection', collection)
  }
  const { name, id } = collection
  if (typeof name !== 'string' || name === '' || LINE_BREAK_OR_NUL.test(name)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty single-line string', 'collection.name', name)
  }
  if (id !== undefined && (typeof id !== 'string' || LINE_BREAK_OR_NUL.test(id))) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a single-line string', 'collection.id', id)
  }
  return {
    name,
    id: id || '',
    listRule: checkRule(collection.listRule, 'collection.listRule'),
    viewRule: checkRule(collection.viewRule, 'collection.viewRule')
  }
}

function isSuperuser (auth) { return auth !== null && auth.collectionName === SUPERUSERS }

/**
 * The default options.clientIp: the framework request's ip (Fastify's
 * request.ip, Express's req.ip: both follow their trust-proxy setting), else
 * the socket's remote address.
 */
function defaultClientIp (request) {
  if (typeof request.ip === 'string' && request.ip !== '') return request.ip
  return (request.raw || request).socket?.remoteAddress || ''
}

/**
 * The name of an auth record's identity ('' for a guest): unambiguous for any
 * collectionId and id (`a/b` + `c` and `a` + `b/c` are two identities).
 */
function identityOf (auth) { return auth === null ? '' : JSON.stringify([auth.collectionId, auth.id]) }

class Realtime extends EventEmitter {
  /**
   * @param {object} [options] see README.md, "PocketBase realtime"
   */
  constructor (options = {}) {
    super()
    if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
    const { hub, hubOptions, authenticate, clientIp, checkIp, allowFormBodies, authorizeTopic } = options
    if (hub !== undefined && !(hub instanceof Hub)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Hub', 'options.hub', hub)
    if (hub !== undefined && hubOptions !== undefined) {
      throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'Expected either options.hub or options.hubOptions but received both')
    }
    if (authenticate !== undefined && typeof authenticate !== 'function') {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a function (request) => auth record | null', 'options.authenticate', authenticate)
    }
    if (authorizeTopic !== undefined && typeof authorizeTopic !== 'function') {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a function (topic, { auth, clientId, request }) => boolean | Promise<boolean>', 'options.authorizeTopic', authorizeTopic)
    }
    if (clientIp !== undefined && typeof clientIp !== 'function') {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a function (request) => string', 'options.clientIp', clientIp)
    }
    if (checkIp !== undefined && typeof checkIp !== 'boolean') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', 'options.checkIp', checkIp)
    if (allowFormBodies !== undefined && typeof allowFormBodies !== 'boolean') {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', 'options.allowFormBodies', allowFormBodies)
    }
    this.options = Object.freeze({
      idleTimeoutMs: intOption(options, 'idleTimeoutMs'),
      maxLifetimeMs: intOption(options, 'maxLifetimeMs'),
      maxBodyBytes: Math.max(1, intOption(options, 'maxBodyBytes')),
      checkIp: checkIp === undefined ? DEFAULTS.checkIp : checkIp,
      allowFormBodies: allowFormBodies === undefined ? DEFAULTS.allowFormBodies : allowFormBodies,
      ...Object.fromEntries(BUDGET_OPTIONS.map((name) => [name, intOption(options, name)]))
    })
    this._authenticate = authenticate || (() => null)
    this._authorizeTopic = authorizeTopic || null
    this._clientIp = clientIp || defaultClientIp
    // PocketBase sends no heartbeats, but without them a peer that vanished
    // (no FIN, no RST) holds its connection until the idle timeout: a hub
    // made here keeps the Hub default (comments, which the SDK never sees);
    // hubOptions.heartbeatMs: 0 turns them off.
    this.hub = hub || new Hub(hubOptions)
    this._realtime = new native.NativeRealtime(this.hub._native, this.options) // the budgets, set once
    this._ownsHub = hub === undefined
    this._clients = new Map() // clientId -> client
    this._byConnection = new Map() // connection id -> client
    this._byIdentity = new Map() // identityOf(auth) -> Set of the clients bound to it
    this._onDisconnect = ({ id, reason }) => {
      const client = this._byConnection.get(id)
      if (client === undefined) return
      this._byConnection.delete(id)
      this._clients.delete(client.clientId)
      this._bind(client, '')
      this._emit('disconnect', { clientId: client.clientId, reason })
    }
    this.hub.on('disconnect', this._onDisconnect)
    this._closing = null // the close() promise
    this.handler = this.handler.bind(this)
  }

  /** Open realtime clients. */
  get size () { return this._clients.size }

  /** A client's state: { clientId, connectionId, auth, subscriptions } or undefined. */
  client (clientId) {
    const c = this._clients.get(clientId)
    return c && { clientId: c.clientId, connectionId: c.connectionId, auth: c.auth, subscriptions: [...c.subscriptions] }
  }

  /** node:http handler for the realtime path: GET opens the stream, POST sets subscriptions. */
  handler (req, res) {
    if (req.method === 'GET') {
      try {
        this.connect(req, res)
      } catch (err) {
        const status = this._connectStatus(err)
        sendJsonError(res, status, MESSAGES[status] || err.message, {})
      }
      return
    }
    if (req.method === 'POST') {
      this.subscribe(req, res).catch(() => {})
      return
    }
    res.setHeader('allow', 'GET, POST')
    sendJsonError(res, 405, MESSAGES[405], {})
  }

  /**
   * GET /api/realtime: turns the request into a realtime stream and sends
   * PB_CONNECT with a new client id. Throws an SseError (nothing written)
   * when the hub refuses the connection. `request` is what `clientIp` gets:
   * the framework's request object when there is one.
   */
  connect (req, res, request = req) {
    this._assertOpen()
    const ip = this._ipOf(request)
    const clientId = newClientId()
    res.setHeader('cache-control', 'no-store')
    const conn = this.hub.accept(req, res, {
      ip,
      streamId: clientId,
      idleTimeoutMs: this.options.idleTimeoutMs,
      maxLifetimeMs: this.options.maxLifetimeMs
    })
    // subscriptions: what it receives; requested: what it asked for (authorizeTopic
    // may have kept some out); ticket: counts _authorizeAndApply calls, the latest wins.
    const client = { clientId, connectionId: conn.id, ip, auth: null, identity: '', subscriptions: [], requested: [], ticket: 0 }
    this._clients.set(clientId, client)
    this._byConnection.set(conn.id, client)
    this._realtime.send(conn.id, 'PB_CONNECT', `{"clientId":"${clientId}"}`, true) // not bounded, as accept()
    this.hub._schedule()
    this._emit('connect', { clientId })
    return { clientId, connectionId: conn.id }
  }

  /**
   * POST /api/realtime: replaces a client's subscriptions. Answers the
   * response itself (204, or PocketBase's error body); resolves when done.
   * `body` is the request body when a framework already parsed it.
   */
  async subscribe (req, res, body, authRequest = req) {
    const raw = req.raw || req
    try {
      if (this.closed) {
        if (body === undefined && !raw.readableEnded) raw.resume()
        throw new PbHttpError(503, 'the realtime is closed')
      }
      const isFormBody = isForm(raw)
      // A form (or text/plain) POST is a CORS-simple request: any page can
      // send one with the visitor's cookies, and an `authenticate` that reads
      // cookies would bind the page's stream to the visitor. Only JSON, which
      // needs a preflight cross-origin, is bound unless forms are allowed.
      const allowForms = this.options.allowFormBodies
      if (body === undefined) {
        body = parseBody(await readBody(raw, this.options.maxBodyBytes), raw, allowForms)
      } else if (isFormBody ? !allowForms : !isJson(raw)) {
        throw new PbHttpError(400) // parsed by express.urlencoded(), or a parser that ignores the type
      } else if (!isFormBody) {
        body = goJsonFields(body) // parsed by express.json() or the like
      }
      const form = readForm(body, isFormBody)
      validateForm(form.clientId, form.subscriptions)
      const client = this._clients.get(form.clientId)
      if (client === undefined) throw new PbHttpError(404)
      if (this.options.checkIp && this._ipOf(authRequest) !== client.ip) throw new PbHttpError(400, INVALID_CLIENT)
      const auth = checkAuth(await this._authenticate(authRequest))
      const identity = identityOf(auth)
      // Guest -> user is allowed; any other change of identity is not.
      if (client.identity !== '' && identity !== client.identity) throw new PbHttpError(403)
      if (this._clients.get(form.clientId) !== client) throw new PbHttpError(404) // gone while authenticating
      await this._authorizeAndApply(client, auth, identity, form.subscriptions, authRequest)
      res.statusCode = 204
      res.end()
    } catch (err) {
      if (err instanceof PbHttpError) {
        sendJsonError(res, err.status, err.message, err.data)
      } else {
        sendJsonError(res, 500, MESSAGES[500], {})
        this._emit('requestError', err)
      }
    }
  }

  // The client's IP from options.clientIp, given the same request object as
  // authenticate. Anything but a non-empty string is an error: as a silent
  // pass it would turn off the same-IP check and put every client in one
  // per-IP bucket.
  _ipOf (request) {
    const ip = this._clientIp(request)
    if (typeof ip !== 'string' || ip === '') {
      const err = invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty string', 'the result of options.clientIp', ip)
      err.statusCode = 500
      throw err
    }
    return ip
  }

  // The status of a refused GET; a 500 (clientIp failed) is reported as requestError.
  _connectStatus (err) {
    const status = connectStatus(err)
    if (status === 500) this._emit('requestError', err)
    return status
  }

  /**
   * Sets a client's subscriptions from server code (replace-all, like a
   * POST): `auth` binds the client to an identity as a POST would, with the
   * same rule (guest to user only). Throws an SseError: ERR_SSE_UNKNOWN_CONNECTION
   * for an unknown client, ERR_SSE_INVALID_ARGUMENT for bad input or an
   * identity change, ERR_SSE_TOO_MANY_SUBSCRIPTIONS past the limits.
   */
  setSubscriptions (clientId, subscriptions, auth = null) {
    this._assertOpen()
    const client = this._clients.get(clientId)
    if (client === undefined) throw new SseError('ERR_SSE_UNKNOWN_CONNECTION', `no realtime client ${JSON.stringify(String(clientId))}`)
    if (!Array.isArray(subscriptions) || !subscriptions.every((s) => typeof s === 'string')) {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an array of subscription strings', 'subscriptions', subscriptions)
    }
    try {
      validateForm(clientId, subscriptions)
    } catch (err) {
      throw new SseError(subscriptions.length > MAX_SUBSCRIPTIONS ? 'ERR_SSE_TOO_MANY_SUBSCRIPTIONS' : 'ERR_SSE_INVALID_TOPIC',
        `subscriptions: ${JSON.stringify(err.data.subscriptions)}`)
    }
    auth = checkAuth(auth)
    const identity = identityOf(auth)
    if (client.identity !== '' && identity !== client.identity) {
      throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'the client is bound to another identity (PocketBase allows guest -> user only)')
    }
    const toSseError = (err) => {
      if (!(err instanceof PbHttpError)) return err
      if (err.status === 403) return new SseError('ERR_SSE_INVALID_ARGUMENT', 'the client was bound to another identity meanwhile')
      return new SseError(err.code || (err.status === 404 ? 'ERR_SSE_UNKNOWN_CONNECTION' : 'ERR_SSE_TOO_MANY_SUBSCRIPTIONS'), err.detail || err.message)
    }
    let result
    try {
      result = this._authorizeAndApply(client, auth, identity, subscriptions, undefined)
    } catch (err) {
      throw toSseError(err)
    }
    if (isThenable(result)) return result.then(() => {}, (err) => { throw toSseError(err) })
  }

  /**
   * Sets client's subscriptions to those of `requested` that authorizeTopic
   * allows for `auth` (all of them without the option) with _apply(). Returns
   * true when applied, false when a later call superseded this one while
   * authorizeTopic answered, or a promise of that when it answered with one;
   * throws (or rejects with) PbHttpError. `server`: a call of updateAuth or
   * revokeAuth: a failing authorizeTopic refuses the topic (and is reported
   * as requestError), and while answers are pending the auth record is
   * applied at once with only the topics already allowed.
   */
  _authorizeAndApply (client, auth, identity, requested, request, server = false) {
    const list = [...new Set(requested.filter((s) => s !== ''))]
    const ticket = ++client.ticket
    if (this._authorizeTopic === null) {
      this._apply(client, auth, identity, list, list)
      return true
    }
    const context = Object.freeze({ auth, clientId: client.clientId, request })
    const answers = list.map((topic) => this._askTopic(topic, context, server))
    const finish = (allowed) => {
      if (client.ticket !== ticket) return false
      if (this._clients.get(client.clientId) !== client) throw new PbHttpError(404)
      if (!server && client.identity !== '' && identity !== client.identity) throw new PbHttpError(403)
      // Only `true` allows: a forgotten return refuses.
      const refused = list.filter((_, i) => allowed[i] !== true)
      this._apply(client, auth, identity, list.filter((_, i) => allowed[i] === true), list)
      this._emitAll('invalidSubscription', refused.map((subscription) => ({ clientId: client.clientId, subscription, message: REFUSED_TOPIC })))
      return true
    }
    if (!answers.some(isThenable)) return finish(answers)
    if (server) this._apply(client, auth, identity, list.filter((_, i) => answers[i] === true))
    return Promise.all(answers).then(finish)
  }

  _askTopic (topic, context, server) {
    const failed = (err) => {
      if (!server) throw err
      this._emit('requestError', err)
      return false
    }
    let answer
    try {
      answer = this._authorizeTopic(topic, context)
    } catch (err) {
      return failed(err)
    }
    return isThenable(answer) ? Promise.resolve(answer).catch(failed) : answer
  }

  // Replace-all: empty strings skipped, duplicates collapsed. Throws PbHttpError.
  // `requested`: what the client asked for, recorded once applied.
  _apply (client, auth, identity, list, requested) {
    const subscriptions = [...new Set(list.filter((s) => s !== ''))]
    // client.ip owns the subscriptions: the *PerIp budgets sum over its streams.
    const result = this._realtime.subscribe(client.connectionId, client.ip, identity,
      auth === null ? undefined : JSON.stringify(auth), isSuperuser(auth), subscriptions)
    if (typeof result === 'number') {
      const name = STATUS[result]
      if (name === 'UNKNOWN_CONNECTION' || name === 'CLOSED') throw new PbHttpError(404)
      const budget = BUDGETS[name]
      if (budget !== undefined) {
        const detail = `The subscriptions exceed the ${budget[0]} budget: at most ${this.options[budget[0]]} ${budget[1]}.`
        const err = new PbHttpError(400, MESSAGES[400], { subscriptions: lengthError('validation_budget_exceeded', detail) })
        err.code = `ERR_SSE_${name}`
        err.detail = detail
        throw err
      }
      if (name === 'TOO_MANY_SUBSCRIPTIONS') {
        const max = this.hub.options.maxSubscriptions
        throw new PbHttpError(400, MESSAGES[400], {
          subscriptions: lengthError('validation_length_too_long', `The length must be no more than ${max}.`)
        })
      }
      throw new PbHttpError(500)
    }
    this.hub._schedule()
    this._bind(client, identity)
    client.auth = auth
    client.identity = identity
    client.subscriptions = subscriptions
    if (requested !== undefined) client.requested = requested
    this._emitAll('invalidSubscription', result.map(([subscription, message]) => ({ clientId: client.clientId, subscription, message })))
    this._emit('subscribe', { clientId: client.clientId, subscriptions: [...subscriptions] })
  }

  // Moves client to identity's set in _byIdentity.
  _bind (client, identity) {
    if (client.identity === identity) return
    const old = this._byIdentity.get(client.identity)
    if (old !== undefined) {
      old.delete(client)
      if (old.size === 0) this._byIdentity.delete(client.identity)
    }
    if (identity === '') return
    let set = this._byIdentity.get(identity)
    if (set === undefined) this._byIdentity.set(identity, (set = new Set()))
    set.add(client)
  }

  /** The ids of the live clients bound to the auth record (collectionId, id). */
  clientsOf (collectionId, id) {
    checkIdentityArgs(collectionId, id)
    const set = this._byIdentity.get(identityOf({ collectionId, id }))
    return set === undefined ? [] : [...set].map((c) => c.clientId)
  }

  /**
   * A fresher auth record for an identity (PocketBase's
   * realtimeUpdateClientsAuth): every live client bound to
   * (record.collectionId, record.id) gets it, and its subscriptions are
   * evaluated with it from the next event on. Returns the number of clients.
   */
  updateAuth (record) {
    this._assertOpen()
    if (record === null || typeof record !== 'object') {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an auth record with string id and collectionId', 'record', record)
    }
    checkIdentityArgs(record.collectionId, record.id, 'record.')
    return this._rebindAll(identityOf(record), record)
  }

  /**
   * Unbinds every live client from the auth record (collectionId, id), as
   * PocketBase's realtimeUnsetClientsAuthState: they become guests, keep their
   * subscriptions (now evaluated as a guest), and a later POST may bind them
   * again. Returns the number of clients.
   */
  revokeAuth (collectionId, id) {
    this._assertOpen()
    checkIdentityArgs(collectionId, id)
    return this._rebindAll(identityOf({ collectionId, id }), null)
  }

  // Every client bound to identity gets auth, whatever happens to the others;
  // returns the number of clients updated in place.
  _rebindAll (identity, auth) {
    const set = this._byIdentity.get(identity)
    if (set === undefined) return 0
    let count = 0
    for (const client of [...set]) {
      let result
      try {
        result = this._authorizeAndApply(client, auth, auth === null ? '' : identity, client.requested, undefined, true)
      } catch (err) {
        this._rebindFailed(client, err)
        continue
      }
      // Pending authorizeTopic answers: auth is applied already, with the topics allowed so far.
      if (isThenable(result)) result.catch((err) => this._rebindFailed(client, err))
      count++
    }
    return count
  }

  // A client that could not take the new auth record (a budget refused the
  // re-evaluated set, or anything else threw) must not keep the old rights:
  // its stream is ended (the SDK reconnects and authenticates afresh) and it
  // is unbound at once. A client gone meanwhile (404: its disconnect is on its
  // way) is skipped.
  _rebindFailed (client, err) {
    if (err instanceof PbHttpError && err.status === 404) return
    if (this._clients.get(client.clientId) === client) {
      client.ticket++ // answers still pending for it apply nothing
      try {
        // A guest with no subscriptions: nothing more under the old auth
        // record while the stream ends (an empty set fits every budget).
        this._apply(client, null, '', [], [])
      } catch {
        this._bind(client, '')
        client.auth = null
        client.identity = ''
        client.subscriptions = []
      }
      if (this.hub.has(client.connectionId)) this.hub.kick(client.connectionId)
    }
    this._emit('requestError', err)
  }

  // Events fired in the middle of the realtime's own work: see emit-all.js.
  _emit (name, arg) {
    emitAll(this, name, [arg])
  }

  _emitAll (name, args) {
    emitAll(this, name, args)
  }

  /**
   * A record event, delivered to every subscription of the record's
   * collection that its rule and its own filter let see it.
   * @param {{ name: string, id?: string, listRule?: string | null, viewRule?: string | null }} collection
   * @param {'create' | 'update' | 'delete'} action
   * @param {object} record at least { id }
   */
  broadcastRecord (collection, action, record) {
    this._assertOpen()
    const c = checkCollection(collection)
    if (!ACTIONS.has(action)) throw invalid('ERR_SSE_INVALID_ARGUMENT', '"create", "update" or "delete"', 'action', action)
    if (record === null || typeof record !== 'object' || Array.isArray(record) || typeof record.id !== 'string') {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a record object with a string id', 'record', record)
    }
    // "C/*" is the topic of every record of C: a record with id "*" would
    // reach those subscriptions as if they had asked for it by id, under the
    // view rule instead of the list rule.
    if (record.id === '*') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a record id other than "*"', 'record.id', record.id)
    if (record.collectionName === undefined || (record.collectionId === undefined && c.id !== '')) {
      record = { collectionId: c.id, collectionName: c.name, ...record }
    }
    const result = this._realtime.broadcastRecord(c.name, c.id, c.listRule, c.viewRule, action, JSON.stringify(record))
    if (typeof result === 'string') throw new SseError('ERR_SSE_INVALID_FILTER', `broadcastRecord: ${result}`)
    if (result !== 0) throw statusError('broadcastRecord', result, 'the record encodes to more than maxQueueBytes')
    this.hub._schedule()
  }

  /** A custom message to the clients subscribed to exactly `topic` (event name: options.event, else topic). */
  publish (topic, data, options = {}) {
    this._assertOpen()
    if (typeof topic !== 'string' || topic === '') throw invalid('ERR_SSE_INVALID_TOPIC', 'a non-empty string', 'topic', topic)
    const event = this._event(options, topic)
    const status = this._realtime.publish(topic, event, payload(data))
    if (status !== 0) throw statusError('publish', status, 'the message encodes to more than maxQueueBytes')
    this.hub._schedule()
  }

  /** A message to one client (as PocketBase's @oauth2 flow does). Returns false for an unknown client. */
  sendToClient (clientId, data, options = {}) {
    this._assertOpen()
    const client = this._clients.get(clientId)
    const event = this._event(options, undefined)
    if (client === undefined) return false
    const status = this._realtime.send(client.connectionId, event, payload(data))
    if (STATUS[status] === 'UNKNOWN_CONNECTION') return false
    if (status !== 0) throw statusError('sendToClient', status, 'the message encodes to more than maxQueueBytes')
    this.hub._schedule()
    return true
  }

  _event (options, fallback) {
    if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
    const event = options.event === undefined ? fallback : options.event
    if (typeof event !== 'string' || event === '' || LINE_BREAK_OR_NUL.test(event)) {
      throw invalid('ERR_SSE_INVALID_EVENT', 'a non-empty string without CR, LF or NUL', 'options.event', event)
    }
    return event
  }

  /** Counts of the native subscription index: clients, keys, groups, identities. */
  stats () { return this._realtime.stats() }

  /**
   * Ends every realtime stream; closes the hub when this Realtime made it. A
   * shared hub stays open, but this Realtime takes no more clients: its
   * methods throw ERR_SSE_CLOSED and its GET and POST answer 503. Idempotent:
   * every call returns the same promise.
   */
  close () {
    if (this._closing === null) this._closing = this._close()
    return this._closing
  }

  async _close () {
    this.hub.removeListener('disconnect', this._onDisconnect)
    const clients = [...this._clients.values()]
    this._clients.clear()
    this._byConnection.clear()
    this._byIdentity.clear()
    if (this._ownsHub) {
      await this.hub.close()
    } else {
      for (const client of clients) {
        if (this.hub.has(client.connectionId)) this.hub.kick(client.connectionId)
      }
    }
  }

  get closed () { return this._closing !== null }

  _assertOpen () {
    if (this._closing !== null || this.hub.closed) throw new SseError('ERR_SSE_CLOSED', 'the realtime is closed')
  }
}

function payload (data) {
  if (typeof data === 'string' || data instanceof Uint8Array) return data
  const json = JSON.stringify(data)
  if (json === undefined) throw invalid('ERR_SSE_INVALID_DATA', 'a string, a Buffer or a JSON-serialisable value', 'data', data)
  return json
}

// ---- filters for an app's own API ------------------------------------------

class Filter {
  constructor (expression, compiled) {
    this.expression = expression
    this._native = compiled
    Object.freeze(this)
  }

  /** True when record (and the caller's auth record, or null) pass the expression. */
  test (record, auth = null) {
    if (record === null || typeof record !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a record object', 'record', record)
    auth = checkAuth(auth)
    const result = this._native.test(JSON.stringify(record), auth === null ? null : JSON.stringify(auth))
    if (typeof result === 'string') throw new SseError('ERR_SSE_INVALID_FILTER', result)
    return result
  }
}

/** Compiles a PocketBase filter or rule; throws ERR_SSE_INVALID_FILTER with the reason when it does not compile. */
function compileFilter (expression) {
  if (typeof expression !== 'string') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a filter string', 'expression', expression)
  const compiled = new native.NativeFilter(expression)
  const error = compiled.error()
  if (error !== null) throw new SseError('ERR_SSE_INVALID_FILTER', `${error} (in ${JSON.stringify(expression)})`)
  return new Filter(expression, compiled)
}

// ---- framework integrations -------------------------------------------------

/** Fastify plugin: GET and POST /api/realtime; app.pocketbase is the Realtime. */
async function pocketbaseRealtime (fastify, options) {
  const { realtime: given, path = '/api/realtime', ...rest } = options
  if (given !== undefined && !(given instanceof Realtime)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Realtime', 'options.realtime', given)
  const realtime = given || new Realtime(rest)
  fastify.decorate('pocketbase', realtime)
  fastify.register(async function routes (scope) {
    // The POST body is read and parsed here, with PocketBase's limits and
    // error bodies, not by Fastify's parsers.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (request, payload, done) => done(null))
    // Fastify answers an empty Content-Type with its own 415 before any
    // parser runs; without the header the catch-all above takes the body and
    // the POST gets PocketBase's 400, as on the other transports.
    scope.addHook('onRequest', async (request) => {
      if (request.raw.headers['content-type'] === '') delete request.raw.headers['content-type']
    })
    scope.get(path, (request, reply) => {
      const req = request.raw
      const res = reply.raw
      for (const [name, value] of Object.entries(reply.getHeaders())) {
        if (value !== undefined && name !== 'content-length' && name !== 'content-type') res.setHeader(name, value)
      }
      if (!req.readableEnded) req.resume()
      try {
        realtime.connect(req, res, request)
      } catch (err) {
        const status = realtime._connectStatus(err)
        reply.code(status).send({ data: {}, message: MESSAGES[status] || err.message, status })
        return reply
      }
      reply.hijack()
    })
    scope.post(path, async (request, reply) => {
      for (const [name, value] of Object.entries(reply.getHeaders())) {
        if (value !== undefined) reply.raw.setHeader(name, value)
      }
      reply.hijack()
      await realtime.subscribe(request.raw, reply.raw, undefined, request)
    })
  })
  if (given === undefined) {
    fastify.addHook('preClose', async () => { await realtime.close() })
    fastify.addHook('onClose', async () => { await realtime.close() })
  }
}

const fastifyRealtime = require('fastify-plugin')(pocketbaseRealtime, { name: 'sse-fanout-pocketbase', fastify: '5.x' })

/** Express middleware: handles GET and POST on the realtime path, next() for the rest. */
function expressRealtime (realtime, options = {}) {
  if (!(realtime instanceof Realtime)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Realtime', 'realtime', realtime)
  const path = options.path === undefined ? '/api/realtime' : options.path
  return function pocketbaseRealtime (req, res, next) {
    const url = req.originalUrl || req.url
    const pathname = url.split('?')[0]
    if (pathname !== path || (req.method !== 'GET' && req.method !== 'POST')) return next()
    if (req.method === 'GET') return realtime.handler(req, res)
    // A body an earlier middleware (express.json(), express.urlencoded()) parsed.
    const parsed = req._body === true || (req.readableEnded && req.body !== undefined) ? req.body : undefined
    realtime.subscribe(req, res, parsed).catch(next)
  }
}

module.exports = { Realtime, fastifyRealtime, expressRealtime, compileFilter, newClientId, DEFAULTS }
