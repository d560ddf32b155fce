'use strict'
// CORS for the hub's path, as the reference hub configures rs/cors
// (handler.go): the configured origins, credentials allowed (a subscriber's
// cookie travels cross-origin only so), the request headers a subscriber
// sends (authorization, cache-control, last-event-id), methods GET and POST
// (the hub answers HEAD 405). A preflight is answered 204 whatever the
// outcome; the CORS headers are there only when the origin, method and
// headers are all allowed, so a refused preflight fails in the browser.
// Two departures from Go: the Last-Event-ID response header is exposed, so a
// fetch()-based subscriber can compare it with the id it asked for (the
// spec's data-loss check); and an origin allowed only by '*' gets
// `Access-Control-Allow-Origin: *` without credentials (rs/cors echoes it
// with credentials, so any web site could read a signed-in user's private
// updates through the cookie): cross-origin cookies need listed origins.
const { invalid } = require('../errors')

const ALLOWED_METHODS = new Set(['GET', 'POST'])
const ALLOWED_HEADERS = new Set(['authorization', 'cache-control', 'last-event-id', 'origin'])
const ORIGIN = /^[a-z][a-z0-9+.-]*:\/\/[^/?#\s]+$/i

/** options.cors: { origins: ['https://app.example.com', ...] } ('*': any origin); undefined: no CORS. */
function readCorsOptions (cors) {
  if (cors === undefined) return Object.freeze({ all: false, origins: new Set() })
  if (cors === null || typeof cors !== 'object' || !Array.isArray(cors.origins)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an object { origins: string[] }', 'options.cors', cors)
  }
  const origins = new Set()
  let all = false
  cors.origins.forEach((origin, i) => {
    if (origin === '*') {
      all = true
      return
    }
    if (typeof origin !== 'string' || !ORIGIN.test(origin)) {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an origin ("https://app.example.com") or "*"', `options.cors.origins[${i}]`, origin)
    }
    origins.add(origin.toLowerCase())
  })
  return Object.freeze({ all, origins })
}

/**
 * What CORS answers the request's Origin: { origin, credentials } (a listed
 * origin: itself, with credentials; any other under '*': '*', without), or
 * null when it is not allowed.
 */
function allowedOrigin (req, cors) {
  const origin = req.headers.origin
  if (typeof origin !== 'string' || origin === '') return null
  if (cors.origins.has(origin.toLowerCase())) return { origin, credentials: true }
  return cors.all ? { origin: '*', credentials: false } : null
}

function setAllowOrigin (res, allowed) {
  res.setHeader('access-control-allow-origin', allowed.origin)
  if (allowed.credentials) res.setHeader('access-control-allow-credentials', 'true')
}

function addVary (res, names) {
  const had = res.getHeader('vary')
  res.setHeader('vary', had === undefined || had === '' ? names : `${had}, ${names}`)
}

/** The CORS headers of an actual (not preflight) request; nothing for a refused origin. */
function corsHeaders (req, res, cors) {
  if (!cors.all && cors.origins.size === 0) return
  addVary(res, 'Origin')
  const allowed = allowedOrigin(req, cors)
  if (allowed === null) return
  setAllowOrigin(res, allowed)
  res.setHeader('access-control-expose-headers', 'Last-Event-ID')
}

/** True for an OPTIONS request that is a CORS preflight. */
function isPreflight (req) {
  return req.method === 'OPTIONS' && typeof req.headers['access-control-request-method'] === 'string'
}

/** Answers a preflight: 204, with the CORS headers only when everything asked for is allowed. */
function answerPreflight (req, res, cors) {
  addVary(res, 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers')
  const allowed = allowedOrigin(req, cors)
  const method = req.headers['access-control-request-method'].toUpperCase()
  const requested = String(req.headers['access-control-request-headers'] || '')
    .split(',').map((h) => h.trim().toLowerCase()).filter((h) => h !== '')
  if (allowed !== null && ALLOWED_METHODS.has(method) && requested.every((h) => ALLOWED_HEADERS.has(h))) {
    setAllowOrigin(res, allowed)
    res.setHeader('access-control-allow-methods', method)
    if (requested.length > 0) res.setHeader('access-control-allow-headers', requested.join(', '))
  }
  res.statusCode = 204
  res.end()
}

module.exports = { readCorsOptions, corsHeaders, isPreflight, answerPreflight, ALLOWED_HEADERS }
