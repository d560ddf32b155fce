'use strict'
// Mercure authorization (draft-dunglas-mercure-07, "Authorization"; the
// reference hub v0.24.2, authorization.go), with no HTTP answer of its own:
// the protocol layer asks, gets { ok: true, claims } or { ok: false, status,
// reason, headers } and writes the answer.
//  - where the token comes from: the Authorization header, else the
//    `authorization` query parameter, else the cookie (tokenOf);
//  - the cookie on a publish only from an allowed Origin (CSRF);
//  - the JWS verified by jose with exactly the role's algorithm, and the
//    `mercure` claim checked (verify), once per token (token-cache.js);
//  - 401 for no token or a bad one, 403 for a good token without the right.
// A token is never logged nor put in an error message.
const { SseError, invalid } = require('../errors')
const { resolveKeys } = require('./keys')
const { VerifiedTokenCache } = require('./token-cache')

// Budgets on what the client controls. A token bigger than this is refused
// before any parsing (the reference hub has none; real tokens are < 2 KiB).
const MAX_TOKEN_BYTES = 8 * 1024
// The claim arrays: Go's maxClaimMatchers, and the topic length of the hub.
const MAX_CLAIM_SELECTORS = 1000
const MAX_SELECTOR_BYTES = 1024
// Compact JWS serialization: three base64url parts.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/
const BEARER = /^bearer +([^ ]+) *$/i // RFC 9110: the scheme is case-insensitive
const NAMESPACED_CLAIM = 'https://mercure.rocks/'
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS'])
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/ // an RFC 9110 token

const AUTH_DEFAULTS = Object.freeze({
  anonymous: false,
  cookieName: 'mercureAuthorization',
  // On, as in the reference hub; the spec discourages it (the token lands in
  // logs and the browser history), and answers to it must be Cache-Control: private.
  allowQueryToken: true,
  publishOrigins: Object.freeze([]),
  clockToleranceSec: 0,
  maxCachedTokens: 10000
})

/** A refused request: the HTTP status, a short reason for the body, and the challenge. */
class MercureAuthError extends Error {
  /**
   * @param {401 | 403} status
   * @param {string} reason short, fixed text (no quote: it goes into the challenge): never a token, a topic or a subscriber
   * @param {string | null} bearerError the RFC 6750 error code (null: no token was given)
   */
  constructor (status, reason, bearerError = 'invalid_token') {
    super(reason)
    this.name = 'MercureAuthError'
    this.status = status
    this.reason = reason
    this.bearerError = bearerError
  }

  /** The WWW-Authenticate challenge (RFC 6750 section 3). */
  get challenge () {
    return this.bearerError === null ? 'Bearer' : `Bearer error="${this.bearerError}", error_description="${this.reason}"`
  }
}

const unauthorized = (reason, bearerError) => new MercureAuthError(401, reason, bearerError)

// --- options ---------------------------------------------------------------

function boolOption (options, name) {
  const value = options[name] === undefined ? AUTH_DEFAULTS[name] : options[name]
  if (typeof value !== 'boolean') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', `options.${name}`, value)
  return value
}

function intOption (options, name, max) {
  const value = options[name] === undefined ? AUTH_DEFAULTS[name] : options[name]
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between 0 and ${max}`, `options.${name}`, value)
  }
  return value
}

/**
 * publishOrigins, as the reference hub reads it: `*` allows every origin, an
 * entry with one `*` is a prefix and a suffix (`https://*.example.com`), the
 * rest must be equal; compared in lower case.
 */
function readPublishOrigins (origins) {
  if (origins === undefined) return { all: false, exact: new Set(), wildcards: [] }
  if (!Array.isArray(origins)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an array of origins', 'options.publishOrigins', origins)
  const exact = new Set()
  const wildcards = []
  let all = false
  origins.forEach((origin, i) => {
    if (typeof origin !== 'string' || origin === '' || origin.split('*').length > 2) {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an origin ("https://app.example.com", "https://*.example.com" or "*")', `options.publishOrigins[${i}]`, origin)
    }
    const lower = origin.toLowerCase()
    if (lower === '*') all = true
    else if (lower.includes('*')) wildcards.push(lower.split('*'))
    else exact.add(lower)
  })
  return { all, exact, wildcards }
}

/** The authorization options, checked, with their defaults (AUTH_DEFAULTS). */
function readAuthOptions (options = {}) {
  if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
  const cookieName = options.cookieName === undefined ? AUTH_DEFAULTS.cookieName : options.cookieName
  if (typeof cookieName !== 'string' || !COOKIE_NAME.test(cookieName)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a cookie name (an RFC 9110 token)', 'options.cookieName', cookieName)
  }
  return Object.freeze({
    anonymous: boolOption(options, 'anonymous'),
    cookieName,
    allowQueryToken: boolOption(options, 'allowQueryToken'),
    publishOrigins: readPublishOrigins(options.publishOrigins),
    clockToleranceSec: intOption(options, 'clockToleranceSec', 3600),
    maxCachedTokens: intOption(options, 'maxCachedTokens', 1000000)
  })
}

/**
 * What authorizePublish and authorizeSubscribe need: the keys (resolveKeys),
 * the options, the selector matcher, the cache. `jwtVerify` and `now` are
 * seams for tests (a counting wrapper, a fixed clock).
 * @param {object} options the hub's options (publisherJwt, subscriberJwt, anonymous, cookieName, ...)
 * @param {{ env?: object, selectorMatches: (selector: string, topic: string) => boolean,
 *   jwtVerify?: Function, now?: () => number }} deps
 */
function createAuthContext (options = {}, { env = process.env, selectorMatches, jwtVerify, now = Date.now } = {}) {
  if (typeof selectorMatches !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a function (selector, topic) => boolean', 'selectorMatches', selectorMatches)
  }
  const authOptions = readAuthOptions(options)
  return Object.freeze({
    keys: resolveKeys(options, env),
    options: authOptions,
    selectorMatches,
    cache: new VerifiedTokenCache({ maxEntries: authOptions.maxCachedTokens, now }),
    jwtVerify: jwtVerify || null,
    now
  })
}

// --- jose ------------------------------------------------------------------

let josePromise = null

/** jose, loaded once (it is ESM only); ERR_SSE_MISSING_DEPENDENCY when it is not installed. */
function loadJose () {
  josePromise ||= import('jose').catch((error) => {
    josePromise = null
    if (error && error.code === 'ERR_MODULE_NOT_FOUND') {
      throw new SseError('ERR_SSE_MISSING_DEPENDENCY', 'sse-fanout/mercure needs jose (npm install jose)')
    }
    throw error
  })
  return josePromise
}

// --- where the token comes from --------------------------------------------

/** Every value of a header, duplicates included (Node keeps only the first Authorization in req.headers). */
function headerValues (req, name) {
  const raw = req.rawHeaders
  if (!Array.isArray(raw)) {
    const value = req.headers && req.headers[name]
    return value === undefined ? [] : [].concat(value)
  }
  const values = []
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i].length === name.length && raw[i].toLowerCase() === name) values.push(raw[i + 1])
  }
  return values
}

function checkSize (token) {
  if (token.length > MAX_TOKEN_BYTES) throw unauthorized('token too large')
  return token
}

function tokenFromHeader (values) {
  if (values.length !== 1) throw unauthorized('more than one Authorization header', 'invalid_request')
  // Sized before the pattern runs, so the regexp never sees a huge value.
  if (values[0].length > MAX_TOKEN_BYTES + 16) throw unauthorized('token too large')
  const match = BEARER.exec(values[0])
  if (match === null) throw unauthorized('the Authorization header is not Bearer and a token', 'invalid_request')
  return checkSize(match[1])
}

/** The `authorization` query values (the name may be percent-encoded, as Go decodes it too), or null when there is none. */
function queryTokens (url) {
  const start = typeof url === 'string' ? url.indexOf('?') : -1
  // The common case, a query with neither the name nor an escape, is not parsed.
  if (start === -1 || (!url.includes('authorization', start) && !url.includes('%', start))) return null
  const values = new URLSearchParams(url.slice(start + 1)).getAll('authorization')
  return values.length === 0 ? null : values
}

/** The first cookie of that name (as Go's r.Cookie), unquoted; null when absent or empty. */
function cookieValue (header, name) {
  if (typeof header !== 'string' || !header.includes(name)) return null
  for (const part of header.split(';')) {
    const eq = part.indexOf('=')
    if (eq === -1 || part.slice(0, eq).trim() !== name) continue
    let value = part.slice(eq + 1).trim()
    if (value.length >= 2 && value[0] === '"' && value[value.length - 1] === '"') value = value.slice(1, -1)
    return value === '' ? null : value
  }
  return null
}

/** The request's origin: Origin, else the scheme://host of Referer; null with neither. */
function originOf (req) {
  const origin = req.headers.origin
  if (typeof origin === 'string' && origin !== '') return origin.toLowerCase()
  const referer = req.headers.referer
  if (typeof referer !== 'string' || referer === '') return null
  try {
    const url = new URL(referer)
    return `${url.protocol}//${url.host}`.toLowerCase()
  } catch {
    throw unauthorized('the Referer is not a URL', 'invalid_request')
  }
}

function originAllowed (origin, { all, exact, wildcards }) {
  if (all || exact.has(origin)) return true
  return wildcards.some(([prefix, suffix]) =>
    origin.length >= prefix.length + suffix.length && origin.startsWith(prefix) && origin.endsWith(suffix))
}

/**
 * A cookie is sent by the browser on any request to the hub, whoever made it:
 * on a publish (or any unsafe method) it counts only from an allowed origin.
 */
function checkCookieOrigin (req, role, options) {
  if (role !== 'publisher' && SAFE_METHODS.has(req.method)) return
  const origin = originOf(req)
  if (origin === null) throw unauthorized('a cookie token needs an Origin or Referer header', 'invalid_request')
  if (!originAllowed(origin, options.publishOrigins)) throw unauthorized('origin not allowed to publish with a cookie')
}

/**
 * The request's token and where it came from, by the spec's precedence: the
 * Authorization header (the rest ignored), else the `authorization` query
 * parameter (the cookie ignored), else the cookie. null: no token at all.
 * Throws a MercureAuthError (401) for a malformed or oversized one, a query
 * token when allowQueryToken is off, or a cookie from a refused origin.
 * @param {import('node:http').IncomingMessage | { raw: import('node:http').IncomingMessage }} request
 * @param {'publisher' | 'subscriber'} role
 * @param {ReturnType<typeof readAuthOptions>} options
 * @returns {{ token: string, source: 'header' | 'query' | 'cookie' } | null}
 */
function tokenOf (request, role, options) {
  const req = request.raw || request
  const header = headerValues(req, 'authorization')
  if (header.length > 0) return { token: tokenFromHeader(header), source: 'header' }
  const query = queryTokens(req.url)
  if (query !== null) {
    if (!options.allowQueryToken) throw unauthorized('tokens in the query are not accepted here', 'invalid_request')
    if (query.length !== 1) throw unauthorized('more than one authorization query parameter', 'invalid_request')
    return { token: checkSize(query[0]), source: 'query' }
  }
  const cookie = cookieValue(req.headers.cookie, options.cookieName)
  if (cookie === null) return null
  checkCookieOrigin(req, role, options)
  return { token: checkSize(cookie), source: 'cookie' }
}

// --- verification ----------------------------------------------------------

// jose's error codes -> the reason a client sees.
const JOSE_REASONS = {
  ERR_JWT_EXPIRED: 'token expired',
  ERR_JOSE_ALG_NOT_ALLOWED: 'token algorithm not accepted',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'bad token signature',
  ERR_JWS_INVALID: 'malformed token',
  ERR_JWT_INVALID: 'malformed token',
  ERR_JOSE_NOT_SUPPORTED: 'unsupported token'
}

function reasonOf (error) {
  if (error.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') return error.claim === 'nbf' ? 'token not yet valid' : 'invalid token claims'
  return JOSE_REASONS[error.code] || 'invalid token'
}

function selectorList (value, name) {
  if (value === undefined || value === null) return undefined
  if (!Array.isArray(value) || value.length > MAX_CLAIM_SELECTORS) {
    throw unauthorized(`the ${name} claim is not an array of at most ${MAX_CLAIM_SELECTORS} selectors`)
  }
  for (const selector of value) {
    if (typeof selector !== 'string' || Buffer.byteLength(selector) > MAX_SELECTOR_BYTES) {
      throw unauthorized(`a selector of the ${name} claim is not a string of at most ${MAX_SELECTOR_BYTES} bytes`)
    }
  }
  return Object.freeze(value.slice())
}

// Claims are shared by every request of a cached token: none may change them.
function deepFreeze (value) {
  const stack = [value]
  while (stack.length > 0) {
    const item = stack.pop()
    if (item === null || typeof item !== 'object' || Object.isFrozen(item)) continue
    Object.freeze(item)
    for (const key of Object.keys(item)) stack.push(item[key])
  }
  return value
}

/**
 * The Mercure claims of a verified payload: `https://mercure.rocks/` when
 * present and not null, else `mercure` (as v0.24.2 reads them: the namespaced
 * claim replaces the short one). A token with neither is valid and has no right.
 */
function mercureClaims (payload) {
  const namespaced = payload[NAMESPACED_CLAIM]
  const claim = namespaced !== undefined && namespaced !== null ? namespaced : payload.mercure
  const claims = {}
  if (claim !== undefined && claim !== null) {
    if (typeof claim !== 'object' || Array.isArray(claim)) throw unauthorized('the mercure claim is not an object')
    const publish = selectorList(claim.publish, 'publish')
    const subscribe = selectorList(claim.subscribe, 'subscribe')
    if (publish !== undefined) claims.publish = publish
    if (subscribe !== undefined) claims.subscribe = subscribe
    if (claim.payload !== undefined) claims.payload = deepFreeze(claim.payload)
  }
  if (payload.exp !== undefined) claims.exp = payload.exp
  return Object.freeze(claims)
}

async function verifyUncached (token, roleKey, ctx) {
  const jwtVerify = ctx.jwtVerify || (await loadJose()).jwtVerify
  const now = ctx.now ? ctx.now() : Date.now()
  const toleranceSec = ctx.options ? ctx.options.clockToleranceSec : 0
  let payload
  try {
    payload = (await jwtVerify(token, roleKey.key, {
      algorithms: [roleKey.alg], // one algorithm per role: no `none`, no RS/HS confusion
      clockTolerance: toleranceSec,
      currentDate: new Date(now)
    })).payload
  } catch (error) {
    // jose's errors (ERR_JOSE_*, ERR_JWS_*, ERR_JWT_*) are the token's fault;
    // anything else is a bug or a bad key, which a 401 would hide.
    if (!(error && typeof error.code === 'string' && error.code.startsWith('ERR_J'))) throw error
    throw unauthorized(reasonOf(error))
  }
  const value = mercureClaims(payload)
  const expiresAtMs = payload.exp === undefined ? Infinity : (payload.exp + toleranceSec) * 1000
  return { value, expiresAtMs }
}

/**
 * Verifies a token with one role's key (resolveKeys) and returns its Mercure
 * claims { publish?, subscribe?, payload?, exp? } (frozen, shared through the
 * cache). Rejects with a MercureAuthError (401) for an oversized, malformed,
 * badly signed, wrong-algorithm (`none` included), expired or not-yet-valid
 * token, or a malformed `mercure` claim. `exp` and `nbf` are checked with
 * ctx.options.clockToleranceSec; `iat`, `iss`, `aud` are not (as Go).
 * @param {string} token
 * @param {{ role: string, alg: string, key: object }} roleKey
 * @param {{ cache?: VerifiedTokenCache, options?: object, jwtVerify?: Function, now?: () => number }} [ctx]
 */
async function verify (token, roleKey, ctx = {}) {
  if (typeof token !== 'string' || token === '') throw unauthorized('empty token')
  checkSize(token)
  if (!COMPACT_JWS.test(token)) throw unauthorized('malformed token')
  if (!ctx.cache) return (await verifyUncached(token, roleKey, ctx)).value
  return ctx.cache.getOrVerify(`${roleKey.role}:${token}`, () => verifyUncached(token, roleKey, ctx))
}

// --- the decisions ---------------------------------------------------------

const refused = (error) => ({ ok: false, status: error.status, reason: error.reason, headers: { 'www-authenticate': error.challenge } })

// The exact selectors of a claim, once per (cached, frozen) claims object.
const exactSets = new WeakMap()
function exactSetOf (selectors) {
  let set = exactSets.get(selectors)
  if (set === undefined) exactSets.set(selectors, set = new Set(selectors))
  return set
}

/** Every topic matches a publish selector (`*` allows all); a missing or empty claim allows nothing. */
function canPublish (selectors, topics, selectorMatches) {
  if (selectors === undefined || selectors.length === 0) return false
  const exact = exactSetOf(selectors)
  if (exact.has('*')) return true
  return topics.every((topic) => exact.has(topic) || selectors.some((selector) => selectorMatches(selector, topic)))
}

/** The token of a request (null: none), verified; a MercureAuthError when either step fails. */
async function claimsOf (req, role, ctx) {
  const found = tokenOf(req, role, ctx.options)
  if (found === null) return null
  return { claims: await verify(found.token, ctx.keys[role], ctx), source: found.source }
}

async function authorize (req, role, ctx, decide) {
  let verified
  try {
    verified = await claimsOf(req, role, ctx)
  } catch (error) {
    if (error instanceof MercureAuthError) return refused(error)
    throw error
  }
  return decide(verified)
}

/**
 * May this request publish an update on these topics? 401 without a valid
 * token (never anonymous), 403 when the token's `mercure.publish` is missing,
 * empty, or matches not every topic; 403 too when HTTP publishing is off
 * (publisherJwt: null).
 * @returns {Promise<{ ok: true, claims: object, source: string } | { ok: false, status: number, reason: string, headers: object }>}
 */
async function authorizePublish (req, topics, ctx) {
  if (ctx.keys.publisher === null) return { ok: false, status: 403, reason: 'publishing over HTTP is off', headers: {} }
  return authorize(req, 'publisher', ctx, (verified) => {
    if (verified === null) return refused(unauthorized('no token', null))
    if (!canPublish(verified.claims.publish, topics, ctx.selectorMatches)) {
      return refused(new MercureAuthError(403, 'the token may not publish on these topics', 'insufficient_scope'))
    }
    return { ok: true, claims: verified.claims, source: verified.source }
  })
}

/**
 * May this request subscribe? A valid token gives its claims; no token is
 * anonymous (claims null) when options.anonymous is on, else 401; a token
 * that fails is 401 even with anonymous on. With no subscriber key, tokens
 * are not read and everyone is anonymous. Which updates reach the stream
 * (private ones by `mercure.subscribe`) is decided at delivery, not here.
 * @returns {Promise<{ ok: true, claims: object | null, source: string | null } | { ok: false, status: number, reason: string, headers: object }>}
 */
async function authorizeSubscribe (req, ctx) {
  if (ctx.keys.subscriber === null) return { ok: true, claims: null, source: null }
  return authorize(req, 'subscriber', ctx, (verified) => {
    if (verified !== null) return { ok: true, claims: verified.claims, source: verified.source }
    if (ctx.options.anonymous) return { ok: true, claims: null, source: null }
    return refused(unauthorized('no token', null))
  })
}

module.exports = {
  AUTH_DEFAULTS,
  MAX_TOKEN_BYTES,
  MAX_CLAIM_SELECTORS,
  MAX_SELECTOR_BYTES,
  MercureAuthError,
  createAuthContext,
  readAuthOptions,
  resolveKeys,
  loadJose,
  tokenOf,
  verify,
  canPublish,
  authorizePublish,
  authorizeSubscribe
}
