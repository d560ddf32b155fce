'use strict'
// A tiny PocketBase-compatible server on Fastify: the official SDK
// (`pocketbase` on npm) works against it unchanged, realtime included.
// Records live in memory; the realtime endpoints come from sse-fanout.
//
//   node examples/pocketbase-server.js        (PORT default 8090, HOST 127.0.0.1)
//
//   const pb = new PocketBase('http://127.0.0.1:8090')
//   await pb.collection('users').create({ email, password, passwordConfirm: password })
//   await pb.collection('users').authWithPassword(email, password)
//   await pb.collection('notes').subscribe('*', (e) => console.log(e.action, e.record))
//   await pb.collection('notes').create({ owner: pb.authStore.record.id, text: 'hi' })
//
// Endpoints, shaped as PocketBase's:
//   GET    /api/collections/:c/records        list (page, perPage, filter, fields; sort and expand are ignored)
//   GET    /api/collections/:c/records/:id    view (fields)
//   POST   /api/collections/:c/records        create
//   PATCH  /api/collections/:c/records/:id    update
//   DELETE /api/collections/:c/records/:id    delete
//   POST   /api/collections/:c/auth-with-password   { identity, password } -> { token, record }
//   GET/POST /api/realtime                    the realtime stream and its subscriptions
//
// Rules are PocketBase filter strings checked with compileFilter(rule).test(record, auth):
// null = superusers only, "" = everyone. The create rule sees the new record; the
// update and delete rules see the stored one. `@request.body` is not available.
//
// What is open (a demo, not a product): anyone who can reach it may sign up, and
// guests may create, update and delete posts and subscribe to them; records live
// in memory until the process ends. Bounds: request bodies of at most 64 KiB
// (413), at most 32 fields per body with names of at most 64 characters and
// values of at most 5000 characters as JSON (400, as PocketBase's text field
// limit), at most 10,000 records per collection (400). Tokens are signed with a
// key made at start (they die with the process) and are never revoked. No CORS
// is granted, no rate limit is applied; the realtime POST binds JSON only.
const crypto = require('node:crypto')
const { promisify } = require('node:util')
const Fastify = require('fastify')
const { Realtime, fastifyRealtime, compileFilter } = require('../lib/pocketbase')

const scrypt = promisify(crypto.scrypt)

const DEFAULT_COLLECTIONS = [
  { name: 'posts', id: 'pbc_1125843985', type: 'base', listRule: '', viewRule: '', createRule: '', updateRule: '', deleteRule: '' },
  {
    name: 'users',
    id: 'pbc_1736455494',
    type: 'auth',
    listRule: 'id = @request.auth.id',
    viewRule: 'id = @request.auth.id',
    createRule: '', // open for sign-up
    updateRule: 'id = @request.auth.id',
    deleteRule: 'id = @request.auth.id'
  },
  {
    name: 'notes',
    id: 'pbc_3395098727',
    type: 'base',
    listRule: 'owner = @request.auth.id',
    viewRule: 'owner = @request.auth.id',
    createRule: 'owner = @request.auth.id',
    updateRule: 'owner = @request.auth.id',
    deleteRule: 'owner = @request.auth.id'
  }
]
const RULES = ['listRule', 'viewRule', 'createRule', 'updateRule', 'deleteRule']
const SYSTEM_FIELDS = ['id', 'collectionId', 'collectionName', 'created', 'updated']
const AUTH_ONLY_FIELDS = ['password', 'passwordConfirm', 'oldPassword', 'email', 'verified', 'tokenKey']
const LIMITS = Object.freeze({
  bodyBytes: 64 * 1024, // larger request bodies: 413
  fields: 32, // fields per body
  fieldNameChars: 64,
  fieldChars: 5000, // a value's JSON (PocketBase's default text field max)
  records: 10000 // per collection
})

/** A PocketBase error: { data, message, status }. */
class ApiError extends Error {
  constructor (status, message, data = {}) {
    super(message)
    this.status = status
    this.data = data
  }
}
const notFound = () => new ApiError(404, "The requested resource wasn't found.")
const superusersOnly = () => new ApiError(403, 'Only superusers can perform this action.')
const required = { code: 'validation_required', message: 'Cannot be blank.' }

/** 15 characters of [a-z0-9], as PocketBase's record ids. */
function newId () {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789'
  let id = ''
  for (let i = 0; i < 15; i++) id += alphabet[crypto.randomInt(alphabet.length)]
  return id
}

/** "2024-01-01 12:00:00.000Z", PocketBase's date format. */
const now = () => new Date().toISOString().replace('T', ' ')

const base64url = (value) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')

function createServer (options = {}) {
  const secret = crypto.randomBytes(32) // a new one per process: tokens do not survive a restart
  const tokenTtlSeconds = options.tokenTtlSeconds || 7 * 24 * 3600

  // name and id -> { ...definition, rules: { listRule: Filter | null, ... }, records: Map }
  const collections = new Map()
  for (const def of options.collections || DEFAULT_COLLECTIONS) {
    const rules = {}
    for (const rule of RULES) rules[rule] = def[rule] == null ? null : compileFilter(def[rule])
    const collection = { ...def, rules, records: new Map(), passwords: new Map() }
    collections.set(def.name, collection)
    collections.set(def.id, collection)
  }

  function sign (record) {
    const header = base64url({ alg: 'HS256', typ: 'JWT' })
    const payload = base64url({
      id: record.id,
      collectionId: record.collectionId,
      type: 'auth',
      exp: Math.floor(Date.now() / 1000) + tokenTtlSeconds,
      refreshable: true
    })
    const signature = crypto.createHmac('sha256', secret).update(`${header}.${payload}`).digest('base64url')
    return `${header}.${payload}.${signature}`
  }

  /** The auth record of a request's Authorization header (with or without "Bearer "), or null. */
  function authenticate (request) {
    const token = String(request.headers.authorization || '').replace(/^Bearer\s+/i, '')
    const [header, payload, signature] = token.split('.')
    if (!signature) return null
    const expected = crypto.createHmac('sha256', secret).update(`${header}.${payload}`).digest()
    const given = Buffer.from(signature, 'base64url')
    if (given.length !== expected.length || !crypto.timingSafeEqual(given, expected)) return null
    let claims
    try { claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) } catch { return null }
    if (claims.type !== 'auth' || !(claims.exp > Date.now() / 1000)) return null
    const collection = collections.get(claims.collectionId)
    return (collection && collection.records.get(claims.id)) || null
  }

  const isSuperuser = (auth) => !!auth && auth.collectionName === '_superusers'

  /** Whether `rule` lets `auth` act on `record`; a null rule lets only superusers. */
  function allowed (collection, rule, record, auth) {
    if (isSuperuser(auth)) return true
    const filter = collection.rules[rule]
    return filter !== null && filter.test(record, auth)
  }

  function collectionOf (request) {
    const collection = collections.get(request.params.collection)
    if (!collection) throw new ApiError(404, 'Missing collection context.')
    return collection
  }

  /** `?fields=a,b` keeps those top-level fields (no modifiers, no expand paths). */
  function project (record, fields) {
    if (!fields || fields.split(',').some((f) => f.trim() === '*')) return record
    const out = {}
    for (const f of fields.split(',').map((s) => s.trim())) if (f in record) out[f] = record[f]
    return out
  }

  /** Copies the writable fields of a request body onto `target`; 400 past the LIMITS. */
  function assign (collection, target, body, failure = 'Failed to create record.') {
    const entries = Object.entries(body || {})
    const errors = {}
    if (entries.length > LIMITS.fields) {
      throw new ApiError(400, failure, { fields: { code: 'validation_too_many_fields', message: `At most ${LIMITS.fields} fields.` } })
    }
    for (const [key, value] of entries) {
      if (key.length > LIMITS.fieldNameChars) {
        errors[key.slice(0, LIMITS.fieldNameChars)] = { code: 'validation_invalid_name', message: `Field names have at most ${LIMITS.fieldNameChars} characters.` }
      } else if ((JSON.stringify(value) ?? '').length > LIMITS.fieldChars) {
        errors[key] = { code: 'validation_max_text_constraint', message: `Must be less than ${LIMITS.fieldChars} character(s).` }
      }
    }
    if (Object.keys(errors).length > 0) throw new ApiError(400, failure, errors)
    for (const [key, value] of entries) {
      if (SYSTEM_FIELDS.includes(key) || (collection.type === 'auth' && AUTH_ONLY_FIELDS.includes(key))) continue
      target[key] = value
    }
    return target
  }

  // forceCloseConnections: close() also ends keep-alive connections that never sent a
  // request (fetch opens such spares), instead of waiting for the client to drop them.
  const app = Fastify({ logger: options.logger || false, forceCloseConnections: true, bodyLimit: LIMITS.bodyBytes })
  const realtime = new Realtime({ authenticate, ...options.realtime })

  app.register(fastifyRealtime, { realtime })
  app.decorateRequest('auth', null)
  app.addHook('onRequest', async (request) => { request.auth = authenticate(request) })
  app.setErrorHandler((err, request, reply) => {
    if (err instanceof ApiError) return reply.code(err.status).send({ data: err.data, message: err.message, status: err.status })
    const status = err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : 500 // e.g. a body that is not JSON
    if (status === 500) request.log.error(err)
    reply.code(status).send({ data: {}, message: 'Something went wrong while processing your request.', status })
  })
  app.setNotFoundHandler((request, reply) => {
    const err = notFound()
    reply.code(404).send({ data: err.data, message: err.message, status: 404 })
  })

  // The records API in its own context: the SDK sends content-type: application/json even
  // with no body (DELETE), which Fastify's own JSON parser refuses.
  app.register(async (api) => {
    api.removeContentTypeParser('application/json')
    api.addContentTypeParser('application/json', { parseAs: 'string' }, (request, text, done) => {
      if (text === '') return done(null, {})
      try { done(null, JSON.parse(text)) } catch { done(new ApiError(400, 'Something went wrong while processing your request.')) }
    })

    api.get('/api/collections/:collection/records', async (request) => {
      const collection = collectionOf(request)
      const auth = request.auth
      if (collection.listRule == null && !isSuperuser(auth)) throw superusersOnly()
      const page = Math.max(1, parseInt(request.query.page, 10) || 1)
      const perPage = Math.min(1000, Math.max(1, parseInt(request.query.perPage, 10) || 30))
      let filter = null
      if (request.query.filter) {
        try { filter = compileFilter(request.query.filter) } catch { throw new ApiError(400, 'Invalid filter parameters.') }
      }
      const visible = [...collection.records.values()]
        .filter((r) => allowed(collection, 'listRule', r, auth) && (!filter || filter.test(r, auth)))
      const items = visible.slice((page - 1) * perPage, page * perPage).map((r) => project(r, request.query.fields))
      return { page, perPage, totalItems: visible.length, totalPages: Math.ceil(visible.length / perPage), items }
    })

    api.get('/api/collections/:collection/records/:id', async (request) => {
      const collection = collectionOf(request)
      if (collection.viewRule == null && !isSuperuser(request.auth)) throw superusersOnly()
      const record = collection.records.get(request.params.id)
      if (!record || !allowed(collection, 'viewRule', record, request.auth)) throw notFound()
      return project(record, request.query.fields)
    })

    api.post('/api/collections/:collection/records', async (request) => {
      const collection = collectionOf(request)
      const body = request.body || {}
      if (collection.createRule == null && !isSuperuser(request.auth)) throw superusersOnly()
      if (collection.records.size >= LIMITS.records) {
        throw new ApiError(400, 'Failed to create record.', { collection: { code: 'validation_too_many_records', message: `At most ${LIMITS.records} records.` } })
      }
      const at = now()
      const record = { collectionId: collection.id, collectionName: collection.name, id: newId(), created: at, updated: at }
      let hash = null
      if (collection.type === 'auth') {
        const errors = {}
        const taken = [...collection.records.values()].some((r) => r.email === body.email)
        if (!body.email) errors.email = required
        else if (taken) errors.email = { code: 'validation_not_unique', message: 'Value must be unique.' }
        if (!body.password) errors.password = required
        if (!body.passwordConfirm) errors.passwordConfirm = required
        else if (body.password !== body.passwordConfirm) errors.passwordConfirm = { code: 'validation_values_mismatch', message: "Values don't match." }
        if (Object.keys(errors).length > 0) throw new ApiError(400, 'Failed to create record.', errors)
        Object.assign(record, { email: String(body.email), emailVisibility: false, verified: false })
        const salt = crypto.randomBytes(16)
        hash = { salt, key: await scrypt(String(body.password), salt, 64) }
      }
      assign(collection, record, body)
      if (!allowed(collection, 'createRule', record, request.auth)) throw new ApiError(400, 'Failed to create record.')
      collection.records.set(record.id, record)
      if (hash) collection.passwords.set(record.id, hash) // kept apart: never in a response or an event
      realtime.broadcastRecord(collection, 'create', record)
      return project(record, request.query.fields)
    })

    api.patch('/api/collections/:collection/records/:id', async (request) => {
      const collection = collectionOf(request)
      if (collection.updateRule == null && !isSuperuser(request.auth)) throw superusersOnly()
      const old = collection.records.get(request.params.id)
      if (!old || !allowed(collection, 'updateRule', old, request.auth)) throw notFound()
      const record = assign(collection, { ...old, updated: now() }, request.body, 'Failed to update record.')
      collection.records.set(record.id, record)
      realtime.broadcastRecord(collection, 'update', record)
      return project(record, request.query.fields)
    })

    api.delete('/api/collections/:collection/records/:id', async (request, reply) => {
      const collection = collectionOf(request)
      if (collection.deleteRule == null && !isSuperuser(request.auth)) throw superusersOnly()
      const record = collection.records.get(request.params.id)
      if (!record || !allowed(collection, 'deleteRule', record, request.auth)) throw notFound()
      collection.records.delete(record.id)
      collection.passwords.delete(record.id)
      realtime.broadcastRecord(collection, 'delete', record)
      reply.code(204).send()
    })

    api.post('/api/collections/:collection/auth-with-password', async (request) => {
      const collection = collectionOf(request)
      if (collection.type !== 'auth') throw new ApiError(404, 'Missing collection context.')
      const { identity, password } = request.body || {}
      const errors = {}
      if (!identity) errors.identity = required
      if (!password) errors.password = required
      if (Object.keys(errors).length > 0) throw new ApiError(400, 'Something went wrong while processing your request.', errors)
      const record = [...collection.records.values()].find((r) => r.email === identity)
      const hash = record && collection.passwords.get(record.id)
      const key = hash ? await scrypt(String(password), hash.salt, 64) : null
      if (!hash || !crypto.timingSafeEqual(key, hash.key)) throw new ApiError(400, 'Failed to authenticate.')
      return { token: sign(record), record }
    })
  })

  let closing = null
  return {
    app,
    realtime,
    collections,
    async listen (port = 8090, host = '127.0.0.1') {
      return app.listen({ port, host })
    },
    close () {
      if (!closing) closing = app.close().then(() => realtime.close())
      return closing
    }
  }
}

module.exports = { createServer, DEFAULT_COLLECTIONS, LIMITS }

if (require.main === module) {
  const server = createServer({ logger: { level: process.env.LOG_LEVEL || 'info' } })
  server.listen(Number(process.env.PORT || 8090), process.env.HOST || '127.0.0.1').then((address) => {
    console.log(`pocketbase-server example on ${address}`)
    console.log('  open: anyone who can reach it may sign up; guests may create, update and delete posts; records live in memory')
    console.log(`  bounds: bodies <= ${LIMITS.bodyBytes} bytes, <= ${LIMITS.fields} fields of <= ${LIMITS.fieldChars} characters, <= ${LIMITS.records} records per collection`)
  }, (err) => {
    console.error(err)
    process.exit(1)
  })
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.once(signal, () => { server.close().then(() => process.exit(0)) })
  }
}
