'use strict'
// The native listener's options (hub.listen()), checked with the library's
// wording and turned into what NativeListener takes.
const net = require('node:net')
const { invalid } = require('../errors')
const { checkRetry } = require('../validate')

const DEFAULTS = Object.freeze({
  port: 0,
  host: '127.0.0.1',
  path: '/events',
  topicsParam: 'topics',
  backlog: 16384,
  headerTimeoutMs: 10000,
  maxHeaderBytes: 8192,
  maxHeaders: 64,
  acceptRate: 0,
  maxPendingPerThread: 4096,
  maxTopics: 64,
  authorizeTimeoutMs: 10000
})

function int (options, name, min, max, fallback = DEFAULTS[name]) {
  const value = options[name] === undefined ? fallback : options[name]
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between ${min} and ${max}`, `options.${name}`, value)
  }
  return value
}

function bool (options, name, fallback) {
  const value = options[name]
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', `options.${name}`, value)
  return value
}

function string (options, name, test, what) {
  const value = options[name] === undefined ? DEFAULTS[name] : options[name]
  if (typeof value !== 'string' || !test(value)) throw invalid('ERR_SSE_INVALID_ARGUMENT', what, `options.${name}`, value)
  return value
}

const PATH = /^\/[\x21-\x7e]*$/
const PARAM = /^[A-Za-z0-9_.~-]{1,64}$/

function corsOf (cors) {
  if (cors === undefined || cors === false) return { corsOrigins: [] }
  if (cors === true) return { corsOrigins: ['*'] }
  if (cors === null || typeof cors !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean or { origin, credentials, maxAge }', 'options.cors', cors)
  const origin = cors.origin === undefined ? '*' : cors.origin
  const origins = Array.isArray(origin) ? origin : [origin]
  if (origins.length === 0 || origins.length > 256) throw invalid('ERR_SSE_INVALID_ARGUMENT', "'*', an origin or an array of 1 to 256 origins", 'options.cors.origin', origin)
  for (let i = 0; i < origins.length; i++) {
    const o = origins[i]
    if (typeof o !== 'string' || (o !== '*' && !/^[a-z][a-z0-9+.-]*:\/\/[\x21-\x7e]{1,253}$/i.test(o))) {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', "'*' or an origin (scheme://host[:port])", `options.cors.origin[${i}]`, o)
    }
  }
  const credentials = cors.credentials === undefined ? false : cors.credentials
  if (typeof credentials !== 'boolean') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', 'options.cors.credentials', credentials)
  // Any origin with credentials would let every site read a visitor's
  // stream with their cookies: credentials need the origins named.
  if (credentials && origins.includes('*')) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', "a list of origins (not '*') when credentials is true", 'options.cors.origin', origin)
  }
  const maxAge = cors.maxAge === undefined ? 600 : cors.maxAge
  if (!Number.isInteger(maxAge) || maxAge < 0 || maxAge > 86400) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an integer between 0 and 86400 (seconds)', 'options.cors.maxAge', maxAge)
  return { corsOrigins: origins, corsCredentials: credentials, corsMaxAge: maxAge }
}

function timeout (options, name) {
  return int(options, name, 0, 2 ** 31 - 1, 0)
}

/** The checked options: { native: what NativeListener takes, authorize, host } */
function resolveListenOptions (options, hubOptions) {
  if (options === undefined) options = {}
  if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
  let host = options.host === undefined ? DEFAULTS.host : options.host
  if (host === 'localhost') host = '127.0.0.1'
  if (typeof host !== 'string' || net.isIP(host) === 0) throw invalid('ERR_SSE_INVALID_ARGUMENT', "an IP address ('127.0.0.1', '::', ...) or 'localhost'", 'options.host', options.host)
  const authorize = options.authorize
  if (authorize !== undefined && typeof authorize !== 'function') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a function', 'options.authorize', authorize)
  const retry = checkRetry(options.retry, 'options.retry')
  const compress = bool(options, 'compress', hubOptions.compression !== null)
  const maxSubs = hubOptions.maxSubscriptions
  const native = {
    host,
    port: int(options, 'port', 0, 65535),
    backlog: int(options, 'backlog', 1, 1 << 20),
    path: string(options, 'path', (v) => PATH.test(v) && !v.includes('?') && v.length <= 1024, "a path starting with '/' (no query, no spaces)"),
    topicsParam: string(options, 'topicsParam', (v) => PARAM.test(v), 'a query parameter name ([A-Za-z0-9_.~-], 1 to 64 characters)'),
    headerTimeoutMs: int(options, 'headerTimeoutMs', 100, 2 ** 31 - 1),
    maxHeaderBytes: int(options, 'maxHeaderBytes', 1024, 65536),
    maxHeaders: int(options, 'maxHeaders', 8, 256),
    maxConnectionsPerIp: int(options, 'maxConnectionsPerIp', 0, 1 << 21, hubOptions.maxConnectionsPerIp),
    acceptRate: int(options, 'acceptRate', 0, 10000000),
    maxPendingPerThread: int(options, 'maxPendingPerThread', 1, 1 << 20),
    maxTopics: Math.min(int(options, 'maxTopics', 1, 1 << 16), maxSubs),
    ...corsOf(options.cors),
    compression: compress,
    authorize: authorize !== undefined,
    idleMs: timeout(options, 'idleTimeoutMs'),
    lifetimeMs: timeout(options, 'maxLifetimeMs'),
    history: bool(options, 'history', true) && hubOptions.history !== null
  }
  if (retry !== -1) {
    native.retryMin = typeof retry === 'number' ? retry : retry.min
    native.retryMax = typeof retry === 'number' ? retry : retry.max
  }
  const authorizeTimeoutMs = int(options, 'authorizeTimeoutMs', 100, 2 ** 31 - 1)
  return { native, authorize, authorizeTimeoutMs }
}

module.exports = { resolveListenOptions, LISTEN_DEFAULTS: DEFAULTS }
