'use strict'
// The framework routes of the hub: a Fastify plugin (GET, POST and OPTIONS at
// the hub's path; app.mercure is the MercureHub) and an Express middleware.
// Both hand the raw request and response to the MercureHub, which reads the
// body and answers; for node:http, mercure.handle is the route.
const { invalid } = require('../errors')
const { NOT_COPIED_FROM_REPLY } = require('../headers')
const { MercureHub, kServe } = require('./mercure-hub')
const { readPath } = require('./options')

/** Fastify plugin: the hub's path (options.path, or the given hub's); app.mercure is the MercureHub. */
async function mercurePlugin (fastify, options) {
  const { mercure: given, ...rest } = options
  if (given !== undefined && !(given instanceof MercureHub)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a MercureHub', 'options.mercure', given)
  if (given !== undefined && rest.path !== undefined && readPath(rest.path) !== given.options.path) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `the given hub's path (${given.options.path}) or nothing`, 'options.path', rest.path)
  }
  const mercure = given || new MercureHub(rest)
  fastify.decorate('mercure', mercure)
  fastify.register(async function routes (scope) {
    // The POST body is read and parsed by the hub, with its limit and Go's
    // form rules, not by Fastify's parsers.
    scope.removeAllContentTypeParsers()
    scope.addContentTypeParser('*', (request, payload, done) => done(null))
    // Fastify answers an empty Content-Type with its own 415 before any
    // parser runs; without the header the hub gives its own 400.
    scope.addHook('onRequest', async (request) => {
      if (request.raw.headers['content-type'] === '') delete request.raw.headers['content-type']
    })
    scope.route({
      method: ['GET', 'POST', 'OPTIONS'],
      url: mercure.options.path,
      exposeHeadRoute: false,
      handler (request, reply) {
        const res = reply.raw
        for (const [name, value] of Object.entries(reply.getHeaders())) {
          if (value !== undefined && !NOT_COPIED_FROM_REPLY.has(name)) res.setHeader(name, value)
        }
        reply.hijack()
        mercure[kServe](request.raw, res)
      }
    })
  })
  if (given === undefined) {
    fastify.addHook('preClose', async () => { await mercure.close() })
    fastify.addHook('onClose', async () => { await mercure.close() })
  }
}

const fastifyMercure = require('fastify-plugin')(mercurePlugin, { name: 'sse-fanout-mercure', fastify: '5.x' })

/** Express middleware: serves the hub's path (any method: GET, POST, OPTIONS, else 405), next() for the rest. */
function expressMercure (mercure) {
  if (!(mercure instanceof MercureHub)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a MercureHub', 'mercure', mercure)
  const path = mercure.options.path
  return function mercureHub (req, res, next) {
    const url = req.originalUrl || req.url
    const q = url.indexOf('?')
    if ((q === -1 ? url : url.slice(0, q)) !== path) return next()
    // A body an earlier middleware (express.urlencoded()) parsed.
    const parsed = req._body === true || (req.readableEnded && req.body !== undefined) ? req.body : undefined
    mercure[kServe](req, res, parsed)
  }
}

module.exports = { fastifyMercure, expressMercure }
