'use strict'
// The Realtime: the state of PocketBase realtime clients on a Hub. A client is
// one stream (GET /api/realtime) with its client id, the address it came
// from, the auth record it is bound to (guest until a POST binds one; guest
// to user only) and its subscriptions, replaced whole by every POST or
// setSubscriptions(). updateAuth() and revokeAuth() re-evaluate the clients
// of one identity; authorizeTopic may refuse topics, synchronously or not
// (the latest call for a client wins). The subscriptions themselves live in
// the native index (native-index.js); this file keeps what JS needs: the
// clients by id, by connection and by identity.
//
// Errors: an SseError for server code, a PbHttpError (http.js) for the
// routes, answered with PocketBase's body.
const crypto = require('node:crypto')
const { EventEmitter } = require('node:events')
const { SseError, invalid } = require('../errors')
const { emitAll } = require('../emit-all')
const native = require('../native')
const { Hub } = require('../hub')
const { BUDGETS, readOptions } = require('./options')
const {
  MAX_SUBSCRIPTIONS, MESSAGES, INVALID_CLIENT, PbHttpError, sendJsonError, lengthError, connectStatus,
  validateForm, isForm, isJson, readForm, parseBody, goJsonFields, readBody
} = require('./http')
const { checkAuth, checkIdentityArgs, checkCollection, checkRecordEvent, checkEvent, payload, isSuperuser, identityOf } = require('./records')
const { NativeIndex } = require('./native-index')

const CLIENT_ID_LENGTH = 40
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
const STATUS = native.statusNames
const REFUSED_TOPIC = 'refused by options.authorizeTopic'

// The status of a GET the hub refused (routes.js answers it for Fastify).
const kConnectStatus = Symbol('connectStatus')

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

class Realtime extends EventEmitter {
  /**
   * @param {object} [options] see README.md, "PocketBase realtime"
   */
  constructor (options = {}) {
    super()
    const { options: checked, authenticate, authorizeTopic, clientIp, hub, hubOptions } = readOptions(options)
    this.options = checked
    this._authenticate = authenticate
    this._authorizeTopic = authorizeTopic
    this._clientIp = clientIp
    // PocketBase sends no heartbeats, but without them a peer that vanished
    // (no FIN, no RST) holds its connection until the idle timeout: a hub
    // made here keeps the Hub default (comments, which the SDK never sees);
    // hubOptions.heartbeatMs: 0 turns them off.
    this.hub = hub || new Hub(hubOptions)
    this._ownsHub = hub === undefined
    this._index = new NativeIndex(this.hub, this.options)
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
        const status = this[kConnectStatus](err)
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
      history: false, // PocketBase frames are byte-exact; its SDK never resumes (docs/pocketbase.md)
      idleTimeoutMs: this.options.idleTimeoutMs,
      maxLifetimeMs: this.options.maxLifetimeMs
    })
    // subscriptions: what it receives; requested: what it asked for (authorizeTopic
    // may have kept some out); ticket: counts _authorizeAndApply calls, the latest wins.
    const client = { clientId, connectionId: conn.id, ip, auth: null, identity: '', subscriptions: [], requested: [], ticket: 0 }
    this._clients.set(clientId, client)
    this._byConnection.set(conn.id, client)
    this._index.send(conn.id, 'PB_CONNECT', `{"clientId":"${clientId}"}`, true) // not bounded, as accept()
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

  // The status of a refused GET; a 500 (clientIp failed) is reported as
  // requestError. Also the Fastify route's (routes.js).
  [kConnectStatus] (err) {
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
    const result = this._index.subscribe(client.connectionId, client.ip, identity,
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
    record = checkRecordEvent(c, action, record)
    this._index.broadcastRecord(c, action, JSON.stringify(record))
  }

  /** A custom message to the clients subscribed to exactly `topic` (event name: options.event, else topic). */
  publish (topic, data, options = {}) {
    this._assertOpen()
    if (typeof topic !== 'string' || topic === '') throw invalid('ERR_SSE_INVALID_TOPIC', 'a non-empty string', 'topic', topic)
    const event = checkEvent(options, topic)
    this._index.publish(topic, event, payload(data))
  }

  /** A message to one client (as PocketBase's @oauth2 flow does). Returns false for an unknown client. */
  sendToClient (clientId, data, options = {}) {
    this._assertOpen()
    const client = this._clients.get(clientId)
    const event = checkEvent(options, undefined)
    if (client === undefined) return false
    return this._index.send(client.connectionId, event, payload(data))
  }

  /** Counts of the native subscription index: clients, keys, groups, identities. */
  stats () { return this._index.stats() }

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

module.exports = { Realtime, newClientId, kConnectStatus }
