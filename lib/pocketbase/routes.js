'use strict'
// The framework routes of the realtime API: a Fastify plugin (GET and POST
// /api/realtime, app.pocketbase is the Realtime) and an Express middleware.
// Both hand the raw request and response to the Realtime (realtime.js); for
// node:http, realtime.handler is the route.
const { invalid } = require('../errors')
const { NOT_COPIED_FROM_REPLY } = require('../headers')
const { MESSAGES } = require('./http')
const { Realtime, kConnectStatus } = require('./realtime')

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
        if (value !== undefined && !NOT_COPIED_FROM_REPLY.has(name)) res.setHeader(name, value)
      }
      if (!req.readableEnded) req.resume()
      try {
        realtime.connect(req, res, request)
      } catch (err) {
        const status = realtime[kConnectStatus](err)
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

module.exports = { fastifyRealtime, expressRealtime }
