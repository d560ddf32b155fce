'use strict'
// The verification keys of a Mercure hub: one { key, alg } per role
// (publisher, subscriber), from the options or else from the environment
// variables the Mercure Caddy module reads (MERCURE_PUBLISHER_JWT_KEY/_ALG,
// MERCURE_SUBSCRIBER_JWT_KEY/_ALG). Every key is checked against its
// algorithm here, at creation, so a misconfigured hub fails at start-up with a
// message naming the option or variable, not at its first request with a 401.
// A message never quotes a key: keys are secrets (or look like them).
const crypto = require('node:crypto')
const { SseError, invalid } = require('../errors')

const HMAC = new Set(['HS256', 'HS384', 'HS512'])
const RSA = new Set(['RS256', 'RS384', 'RS512'])
const RSA_PSS = new Set(['PS256', 'PS384', 'PS512'])
// ES* pin the curve (RFC 7518 3.4); node:crypto names the curves as OpenSSL does.
const EC_CURVES = { ES256: 'prime256v1', ES384: 'secp384r1', ES512: 'secp521r1' }
const ALGORITHMS = Object.freeze([...HMAC, ...RSA, ...RSA_PSS, ...Object.keys(EC_CURVES), 'EdDSA'])
// jose refuses RSA keys under 2048 bits at verification (checkModulusLength):
// refuse them here, where the message can say which key.
const MIN_RSA_BITS = 2048

const ROLES = Object.freeze({
  publisher: { option: 'publisherJwt', keyVar: 'MERCURE_PUBLISHER_JWT_KEY', algVar: 'MERCURE_PUBLISHER_JWT_ALG' },
  subscriber: { option: 'subscriberJwt', keyVar: 'MERCURE_SUBSCRIBER_JWT_KEY', algVar: 'MERCURE_SUBSCRIBER_JWT_ALG' }
})

const PEM_LABEL = /-----BEGIN ([A-Z0-9 ]+)-----/
const PUBLIC_PEM_LABELS = new Set(['PUBLIC KEY', 'RSA PUBLIC KEY', 'CERTIFICATE'])

function keyError (where, what) {
  return new SseError('ERR_SSE_INVALID_ARGUMENT', `Invalid key in ${where}: ${what}`)
}

// Env files and container settings often carry a PEM on one line with literal
// "\n" escapes; a PEM with no real line break cannot be read otherwise.
function unescapePem (text) {
  if (text.includes('\n') || !text.includes('\\n')) return text
  return text.replace(/\\n/g, '\n')
}

/** An HMAC secret: the raw bytes of the string (as Go and Caddy take it), a Buffer, or a secret KeyObject. */
function hmacKey (key, alg, where) {
  if (key instanceof crypto.KeyObject) {
    if (key.type !== 'secret') throw keyError(where, `${alg} takes a secret (a string), but a ${key.type} KeyObject was given`)
    return new Uint8Array(key.export())
  }
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key)
  if (bytes.length === 0) throw keyError(where, `the ${alg} secret is empty`)
  // A public key used as an HMAC secret is the classic algorithm-confusion
  // setup (anyone holding the public key could sign): never what was meant.
  if (PEM_LABEL.test(bytes.toString('latin1', 0, Math.min(bytes.length, 64)))) {
    throw keyError(where, `${alg} takes a shared secret, but a PEM key was given: set the algorithm to the key's (RS256, ES256, EdDSA...)`)
  }
  return new Uint8Array(bytes)
}

/** A public KeyObject from a PEM (SPKI, PKCS#1 RSA or a certificate) or a KeyObject; never a private key. */
function publicKeyOf (key, alg, where) {
  if (key instanceof crypto.KeyObject) {
    if (key.type !== 'public') throw keyError(where, `${alg} takes a public key, but a ${key.type} KeyObject was given`)
    return key
  }
  const pem = unescapePem(typeof key === 'string' ? key : Buffer.from(key).toString('latin1'))
  const label = PEM_LABEL.exec(pem)
  if (label === null) throw keyError(where, `${alg} takes a PEM public key ("-----BEGIN PUBLIC KEY-----"), but the value is not PEM`)
  if (label[1].includes('PRIVATE')) {
    throw keyError(where, `a private key (${label[1]}) was given; the hub verifies tokens and needs only the public key: give the PUBLIC KEY PEM`)
  }
  if (!PUBLIC_PEM_LABELS.has(label[1])) throw keyError(where, `${alg} takes a PUBLIC KEY, RSA PUBLIC KEY or CERTIFICATE PEM, but "${label[1]}" was given`)
  try {
    return crypto.createPublicKey(pem)
  } catch (error) {
    throw keyError(where, `the ${label[1]} PEM does not parse (${error.code || error.message})`)
  }
}

/** Checks that a public key is of the kind the algorithm verifies with. */
function checkKeyFitsAlg (publicKey, alg, where) {
  const type = publicKey.asymmetricKeyType
  const details = publicKey.asymmetricKeyDetails || {}
  if (RSA.has(alg) || RSA_PSS.has(alg)) {
    // An RSA-PSS-only key (id-RSASSA-PSS) has no JWK form, which jose needs on Node 20.
    if (type === 'rsa-pss') throw keyError(where, `${alg} needs a plain RSA key (rsaEncryption); RSA-PSS-only keys are not supported`)
    if (type !== 'rsa') throw keyError(where, `${alg} needs an RSA key, but an ${type} key was given`)
    if (details.modulusLength < MIN_RSA_BITS) {
      throw keyError(where, `${alg} needs an RSA key of at least ${MIN_RSA_BITS} bits, but it has ${details.modulusLength}`)
    }
  } else if (alg in EC_CURVES) {
    if (type !== 'ec') throw keyError(where, `${alg} needs an EC key on ${EC_CURVES[alg]}, but an ${type} key was given`)
    if (details.namedCurve !== EC_CURVES[alg]) {
      throw keyError(where, `${alg} needs an EC key on ${EC_CURVES[alg]}, but the key is on ${details.namedCurve}`)
    }
  } else if (type !== 'ed25519') {
    throw keyError(where, `EdDSA needs an Ed25519 key, but an ${type} key was given`)
  }
  // jose turns a KeyObject into a CryptoKey through its JWK: a key that has
  // none would fail every verification, so it fails here instead.
  try {
    publicKey.export({ format: 'jwk' })
  } catch (error) {
    throw keyError(where, `the key cannot be used by jose (${error.code || error.message})`)
  }
}

function isKeyValue (key) {
  return typeof key === 'string' || Buffer.isBuffer(key) || key instanceof Uint8Array || key instanceof crypto.KeyObject
}

/**
 * One role's key, checked (also the native listener's token keys,
 * lib/listener/options.js). `where` names the source for the messages (the
 * option or the variable); `algWhere` the same for the algorithm.
 * @returns {{ role: string, alg: string, key: Uint8Array | crypto.KeyObject, source: string }}
 */
function roleKey (role, key, alg, where, algWhere) {
  if (!ALGORITHMS.includes(alg)) throw invalid('ERR_SSE_INVALID_ARGUMENT', `one of ${ALGORITHMS.join(', ')}`, algWhere, alg)
  if (!isKeyValue(key)) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', `Expected a string, a Buffer or a KeyObject for ${where} but received a value of type ${typeof key}`)
  }
  if (HMAC.has(alg)) return Object.freeze({ role, alg, key: hmacKey(key, alg, where), source: where })
  const publicKey = publicKeyOf(key, alg, where)
  checkKeyFitsAlg(publicKey, alg, where)
  return Object.freeze({ role, alg, key: publicKey, source: where })
}

/** A role's key from options[publisherJwt|subscriberJwt] = { key, alg? }; null: explicitly none. */
function keyFromOptions (role, value) {
  const { option } = ROLES[role]
  if (value === null) return null
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', '{ key, alg } or null', `options.${option}`, value)
  }
  const alg = value.alg === undefined ? 'HS256' : value.alg
  return roleKey(role, value.key, alg, `options.${option}.key`, `options.${option}.alg`)
}

/** A role's key from the MERCURE_* variables; an unset or empty KEY is no key, an empty ALG is HS256. */
function keyFromEnv (role, env) {
  const { keyVar, algVar } = ROLES[role]
  const key = env[keyVar]
  if (key === undefined || key === '') {
    if (env[algVar]) throw new SseError('ERR_SSE_INVALID_ARGUMENT', `${algVar} is set but ${keyVar} is not`)
    return null
  }
  return roleKey(role, key, env[algVar] || 'HS256', keyVar, algVar)
}

/**
 * The publisher and subscriber keys. Per role: `options.publisherJwt` /
 * `options.subscriberJwt` ({ key, alg }, alg defaulting to HS256) when given
 * (null: that role has no key, and the environment is not read), else the
 * MERCURE_* variables of `env`. As Caddy does, a hub needs a publisher key
 * (null turns HTTP publishing off) and a subscriber key unless
 * `options.anonymous` is true.
 * @returns {{ publisher: object | null, subscriber: object | null }}
 */
function resolveKeys (options = {}, env = process.env) {
  if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
  if (env === null || typeof env !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an environment object', 'env', env)
  const keys = {}
  for (const role of Object.keys(ROLES)) {
    const value = options[ROLES[role].option]
    keys[role] = value === undefined ? keyFromEnv(role, env) : keyFromOptions(role, value)
  }
  if (keys.publisher === null && options.publisherJwt !== null) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT',
      'No publisher key: set MERCURE_PUBLISHER_JWT_KEY (and MERCURE_PUBLISHER_JWT_ALG unless HS256) or options.publisherJwt ({ key, alg }; null turns HTTP publishing off)')
  }
  if (keys.subscriber === null && options.anonymous !== true) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', options.subscriberJwt === null
      ? 'options.subscriberJwt is null, so subscribers can only be anonymous: options.anonymous must be true'
      : 'No subscriber key: set MERCURE_SUBSCRIBER_JWT_KEY (and MERCURE_SUBSCRIBER_JWT_ALG unless HS256) or options.subscriberJwt, or allow anonymous subscribers (options.anonymous: true)')
  }
  return Object.freeze(keys)
}

module.exports = { resolveKeys, roleKey, ALGORITHMS, ROLES }
