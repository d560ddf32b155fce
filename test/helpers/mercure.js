'use strict'
// A Mercure hub for one test, over real sockets, closed after it:
//   startMercure(t, options, { kind })  -> { mercure, port, url, subscribe, publish, barrier }
//     kind: 'http' (mercure.handle in node:http), 'fastify' (fastifyMercure)
//           or 'express' (expressMercure); '/' answers 'page' with mercureLink
//     subscribe(query, opts)  GET the hub path; resolves with the response head
//                             (s.status, s.headers), s.events grows (sse-parser.js)
//     publish(fields, opts)   POST a form (an object of strings / arrays, or a
//                             raw string body); { status, headers, body }
//     barrier(s)              a public update on a topic the stream's `*`
//                             watcher sees: resolves once it arrived, so every
//                             update published before it has too
//   token(claims, opts)       an HS256 JWS signed with SECRET (jose)
// Keys are HS256 with SECRET for both roles unless options say otherwise.

const http = require('node:http')
const { SseParser } = require('./sse-parser')
const { waitFor, within, cleanup } = require('./wait')
const { loadJose } = require('../../lib/mercure/auth')

const SECRET = '!ChangeThisMercureHubJWTSecretKey!'
const PATH = '/.well-known/mercure'
const KEYS = { publisherJwt: { key: SECRET }, subscriberJwt: { key: SECRET } }
const NOW_S = () => Math.floor(Date.now() / 1000)

/** A compact HS256 JWS over `claims` (`exp` in seconds from now with expiresInS). */
async function token (claims, { key = SECRET, expiresInS } = {}) {
  const { SignJWT } = await loadJose()
  const payload = expiresInS === undefined ? claims : { ...claims, exp: NOW_S() + expiresInS }
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(new TextEncoder().encode(key))
}

/** A publisher token for every topic; a subscriber token that sees every private update. */
const publisherToken = () => token({ mercure: { publish: ['*'] } })
const fullSubscriberToken = () => token({ mercure: { subscribe: ['*'] } })

function query (topics, extra = {}) {
  const params = new URLSearchParams()
  for (const topic of [].concat(topics)) params.append('topic', topic)
  for (const [name, value] of Object.entries(extra)) params.append(name, value)
  return params.toString()
}

/** GET path?query on its own socket; resolves with the head, the body keeps arriving. */
function openStream (port, path, { headers = {}, timeoutMs = 5000 } = {}) {
  return within(new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers }, (res) => {
      const s = {
        status: res.statusCode,
        headers: res.headers,
        raw: '',
        events: [],
        ended: false,
        close: () => req.destroy(),
        /** The events other than barriers, as [type, data, id]. */
        updates () { return s.events.filter((e) => e.event !== 'barrier').map((e) => [e.event, e.data, e.lastEventId]) },
        wait (n, ms = 5000) {
          return waitFor(() => s.events.length >= n, ms, () => `${n} events (got ${s.events.length}: ${JSON.stringify(s.raw.slice(0, 2000))})`)
        },
        parser: null
      }
      s.parser = new SseParser((ev) => s.events.push(ev))
      res.setEncoding('utf8')
      res.on('data', (chunk) => { s.raw += chunk; s.parser.push(chunk) })
      res.on('end', () => { s.ended = true })
      res.on('error', () => {})
      req.on('close', () => { s.ended = true })
      resolve(s)
    })
    req.on('error', reject)
  }), timeoutMs, `GET ${path}`)
}

/** POST a form (object) or a raw body (string/Buffer) to path. */
function post (port, path, body, { headers = {}, type = 'application/x-www-form-urlencoded', auth } = {}) {
  let payload = body
  if (typeof body !== 'string' && !Buffer.isBuffer(body)) {
    const params = new URLSearchParams()
    for (const [name, value] of Object.entries(body)) {
      for (const v of [].concat(value)) params.append(name, v)
    }
    payload = params.toString()
  }
  const h = { 'content-length': Buffer.byteLength(payload), ...headers }
  if (type !== null) h['content-type'] = type // null: no Content-Type
  if (auth !== undefined) h.authorization = `Bearer ${auth}`
  // A header given as undefined is left out (no Content-Length: a chunked body).
  for (const name of Object.keys(h)) if (h[name] === undefined) delete h[name]
  return request(port, 'POST', path, { headers: h, body: payload })
}

/** Any request; { status, headers, body }. */
function request (port, method, path, { headers = {}, body } = {}) {
  return within(new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, agent: false, headers }, (res) => {
      let data = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { data += c })
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: data }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  }), 5000, `${method} ${path}`)
}

async function listen (server) {
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, resolve)
  })
  return server.address().port
}

function closeServer (server) {
  return new Promise((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
}

/**
 * @param {import('node:test').TestContext} t
 * @param {object} options MercureHub options (HS256 keys for both roles by default)
 * @param {{ kind?: 'http' | 'fastify' | 'express' }} [how]
 */
async function startMercure (t, options = {}, { kind = 'http' } = {}) {
  const { MercureHub, fastifyMercure, expressMercure, mercureLink } = require('../../lib/mercure')
  const defer = cleanup(t)
  const all = { ...KEYS, ...options }
  let mercure
  let port
  if (kind === 'fastify') {
    const app = require('fastify')({ logger: false })
    await app.register(fastifyMercure, all)
    app.get('/', (request, reply) => { mercureLink(reply, PATH).send('page') })
    await app.listen({ host: '127.0.0.1', port: 0 })
    defer(() => app.close(), 'fastify close')
    mercure = app.mercure
    port = app.server.address().port
  } else {
    mercure = new MercureHub(all)
    defer(() => mercure.close(), 'mercure close')
    let handler
    if (kind === 'express') {
      const app = require('express')()
      app.use(expressMercure(mercure))
      app.get('/', (req, res) => { mercureLink(res, PATH).send('page') })
      handler = app
    } else {
      handler = (req, res) => {
        if (mercure.handle(req, res)) return
        mercureLink(res, PATH).end('page')
      }
    }
    const server = http.createServer(handler)
    port = await listen(server)
    defer(() => closeServer(server), `${kind} server close`)
  }
  const path = mercure.options.path
  const streams = []
  defer(() => { for (const s of streams) s.close() }, 'close streams')

  async function subscribe (q, { token: tok, cookie, headers = {}, expectStatus = 200 } = {}) {
    const h = { ...headers }
    if (tok !== undefined) h.authorization = `Bearer ${tok}`
    if (cookie !== undefined) h.cookie = `mercureAuthorization=${cookie}`
    const s = await openStream(port, `${path}?${q}`, { headers: h })
    streams.push(s)
    if (s.status !== expectStatus) throw new Error(`GET ${path}?${q}: status ${s.status}, expected ${expectStatus}: ${s.raw}`)
    return s
  }

  let pubToken = null
  async function publish (fields, opts = {}) {
    if (opts.auth === undefined && !opts.noAuth) opts = { ...opts, auth: pubToken ??= await publisherToken() }
    return post(port, path, fields, opts)
  }

  let barriers = 0
  /** A public update on `barrier`: every stream given (subscribed to `*` or `barrier`) gets it. */
  async function barrier (...subscribers) {
    const n = ++barriers
    mercure.publish({ topic: 'barrier', type: 'barrier', data: String(n) })
    for (const s of subscribers) {
      await waitFor(() => s.events.some((e) => e.event === 'barrier' && e.data === String(n)), 5000, `barrier ${n}`)
    }
  }

  return { mercure, port, path, url: `http://127.0.0.1:${port}${path}`, subscribe, publish, barrier, defer, query }
}

module.exports = { startMercure, token, publisherToken, fullSubscriberToken, query, openStream, post, request, SECRET, PATH, NOW_S }
