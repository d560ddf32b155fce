'use strict'
// The native listener's options (hub.listen()), checked with the library's
// wording and turned into what NativeListener takes.
const net = require('node:net')
const { SseError, invalid } = require('../errors')
const { checkRetry } = require('../validate')
const { roleKey } = require('../mercure/keys')

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

// The token path (src/auth, src/listener/token.cpp): the algorithms the I/O
// threads verify, and the budgets of what the options name.
const TOKEN_ALGORITHMS = Object.freeze(['HS256', 'RS256', 'ES256'])
const MAX_TOKEN_KEYS = 8
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,256}$/ // an RFC 9110 token
const CLAIM_PATH = /^[^.]{1,256}(\.[^.]{1,256}){0,7}$/
const TOKEN_DEFAULTS = Object.freeze({
  cookie: 'mercureAuthorization',
  query: 'authorization',
  claim: 'mercure.subscribe',
  userClaim: 'sub',
  clockToleranceSec: 0,
  cache: 1024
})
// Verified tokens each I/O thread keeps (src/listener/token_cache.hpp): at
// most this many, in at most TOKEN_CACHE_BYTES_PER_ENTRY bytes each on
// average, and never less than TOKEN_CACHE_MIN_BYTES (room for one token of
// the verifier's largest, 8 KiB, with its claims).
const MAX_TOKEN_CACHE = 65536
const TOKEN_CACHE_BYTES_PER_ENTRY = 1024
const TOKEN_CACHE_MIN_BYTES = 16 * 1024

// One key: checked by the Mercure layer's rules (keys.js: PEM, KeyObject or
// secret; private keys refused), then the bytes the verifier takes (the
// secret, or the public key as SPKI DER). Messages never quote a key.
function tokenKey (entry, where) {
  if (entry === null || typeof entry !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', '{ algorithm, key, kid? }', where, entry)
  const { algorithm, key, kid } = entry
  if (!TOKEN_ALGORITHMS.includes(algorithm)) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT',
      `Expected one of ${TOKEN_ALGORITHMS.join(', ')} for ${where}.algorithm: the native listener verifies those three (the Mercure hub's JS path takes more)`)
  }
  if (kid !== undefined && (typeof kid !== 'string' || kid.length === 0 || Buffer.byteLength(kid) > 256)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a non-empty string of at most 256 bytes', `${where}.kid`, kid)
  }
  const checked = roleKey('subscriber', key, algorithm, `${where}.key`, `${where}.algorithm`)
  const bytes = algorithm === 'HS256' ? Buffer.from(checked.key) : checked.key.export({ type: 'spki', format: 'der' })
  return kid === undefined ? { algorithm, key: bytes } : { algorithm, key: bytes, kid }
}

function nameOrNull (token, name, test, what) {
  const value = token[name] === undefined ? TOKEN_DEFAULTS[name] : token[name]
  if (value === null) return ''
  if (typeof value !== 'string' || !test(value)) throw invalid('ERR_SSE_INVALID_ARGUMENT', `${what} or null`, `options.token.${name}`, value)
  return value
}

/** options.token, checked: what NativeListener takes (keys as bytes). */
function tokenOf (token) {
  if (token === null || typeof token !== 'object' || Array.isArray(token)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', '{ keys: [{ algorithm, key, kid? }], ... } or { algorithm, key, ... }', 'options.token', token)
  }
  let keys
  if (token.keys !== undefined) {
    if (!Array.isArray(token.keys) || token.keys.length === 0 || token.keys.length > MAX_TOKEN_KEYS) {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', `an array of 1 to ${MAX_TOKEN_KEYS} keys`, 'options.token.keys', token.keys)
    }
    keys = token.keys.map((k, i) => tokenKey(k, `options.token.keys[${i}]`))
  } else {
    keys = [tokenKey(token, 'options.token')]
  }
  const claim = token.claim === undefined ? TOKEN_DEFAULTS.claim : token.claim
  if (typeof claim !== 'string' || !CLAIM_PATH.test(claim)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', "a claim path ('mercure.subscribe': 1 to 8 names joined by dots)", 'options.token.claim', claim)
  }
  const clockToleranceSec = token.clockToleranceSec === undefined ? 0 : token.clockToleranceSec
  if (!Number.isInteger(clockToleranceSec) || clockToleranceSec < 0 || clockToleranceSec > 3600) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an integer between 0 and 3600 (seconds)', 'options.token.clockToleranceSec', clockToleranceSec)
  }
  const cache = token.cache === undefined ? TOKEN_DEFAULTS.cache : token.cache
  if (!Number.isInteger(cache) || cache < 0 || cache > MAX_TOKEN_CACHE) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between 0 (no cache) and ${MAX_TOKEN_CACHE} (tokens per I/O thread)`, 'options.token.cache', cache)
  }
  return {
    keys,
    cache,
    cacheBytes: cache === 0 ? 0 : Math.max(cache * TOKEN_CACHE_BYTES_PER_ENTRY, TOKEN_CACHE_MIN_BYTES),
    cookie: nameOrNull(token, 'cookie', (v) => COOKIE_NAME.test(v), 'a cookie name (an RFC 9110 token)'),
    query: nameOrNull(token, 'query', (v) => PARAM.test(v), 'a query parameter name ([A-Za-z0-9_.~-], 1 to 64 characters)'),
    claim,
    userClaim: nameOrNull(token, 'userClaim', (v) => v.length > 0 && v.length <= 256, 'a claim name (1 to 256 characters)'),
    clockToleranceSec
  }
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
  if (options.token !== undefined && authorize !== undefined) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'options.token and options.authorize exclude each other: a stream is admitted by a token or by the hook')
  }
  const token = options.token === undefined ? undefined : tokenOf(options.token)
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
    token,
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

module.exports = { resolveListenOptions, LISTEN_DEFAULTS: DEFAULTS, TOKEN_DEFAULTS, TOKEN_ALGORITHMS }
