'use strict'
// The HTTP side of PocketBase's realtime routes: reading and binding the POST
// body as PocketBase does (its BindBody, Go's JSON decoder, ozzo-validation's
// form checks), and the JSON error answers with PocketBase's bodies and
// messages. No Realtime state here: routes.js and realtime.js use it.
const { LINE_BREAK_OR_NUL } = require('../validate')

const MAX_CLIENT_ID = 255
const MAX_SUBSCRIPTIONS = 1000
const MAX_SUBSCRIPTION_CHARS = 2500

const MESSAGES = {
  400: 'Something went wrong while processing your request.',
  404: 'Missing or invalid client id.',
  403: "The current and the previous request authorization don't match.",
  413: 'Request entity too large',
  429: 'Too Many Requests.',
  405: 'Method not allowed.',
  500: 'Something went wrong while processing your request.'
}
const INVALID_CLIENT = 'Invalid realtime client.'

/** An error answered with PocketBase's body: {"data":{...},"message":"...","status":N}. */
class PbHttpError extends Error {
  constructor (status, message = MESSAGES[status], data = {}) {
    super(message)
    this.status = status
    this.data = data
  }
}

function sendJsonError (res, status, message, data) {
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return
  }
  const body = JSON.stringify({ data, message, status })
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) })
  res.end(body)
}

function lengthError (code, message) { return { code, message } }

/** The HTTP status for an accept() that refused a stream. */
function connectStatus (err) {
  if (err.statusCode) return err.statusCode
  return err.code === 'ERR_SSE_CLOSED' || err.code === 'ERR_SSE_TOO_MANY_CONNECTIONS' ? 503 : 400
}

/** PocketBase's form checks (ozzo-validation): every field's first failing rule. */
function validateForm (clientId, subscriptions) {
  const data = {}
  const chars = [...clientId].length
  if (chars === 0) {
    data.clientId = lengthError('validation_required', 'Cannot be blank.')
  } else if (chars > MAX_CLIENT_ID) {
    data.clientId = lengthError('validation_length_out_of_range', `The length must be between 1 and ${MAX_CLIENT_ID}.`)
  }
  if (subscriptions.length > MAX_SUBSCRIPTIONS) {
    data.subscriptions = lengthError('validation_length_too_long', `The length must be no more than ${MAX_SUBSCRIPTIONS}.`)
  } else {
    const each = {}
    for (let i = 0; i < subscriptions.length; i++) {
      const s = subscriptions[i]
      if (s.length > MAX_SUBSCRIPTION_CHARS && [...s].length > MAX_SUBSCRIPTION_CHARS) {
        each[i] = lengthError('validation_length_too_long', `The length must be no more than ${MAX_SUBSCRIPTION_CHARS}.`)
      } else if (LINE_BREAK_OR_NUL.test(s)) {
        // Not a PocketBase rule: the subscription is the frame's event name,
        // and a line break there would let a client forge fields.
        each[i] = lengthError('validation_invalid_value', 'Must not contain CR, LF or NUL.')
      }
    }
    if (Object.keys(each).length > 0) data.subscriptions = each
  }
  if (Object.keys(data).length > 0) throw new PbHttpError(400, MESSAGES[400], data)
}

function mediaType (req) {
  return String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase()
}

function isForm (req) { return mediaType(req) === 'application/x-www-form-urlencoded' }

function isJson (req) {
  const type = mediaType(req)
  return type === 'application/json' || type.endsWith('+json')
}

/**
 * {clientId, subscriptions} from a parsed body. JSON types are strict (Go's
 * decoder refuses a string where a list belongs); a form may give one value.
 */
function readForm (body, form) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new PbHttpError(400)
  let { clientId, subscriptions } = body
  if (clientId === undefined || clientId === null) clientId = ''
  if (typeof clientId !== 'string') throw new PbHttpError(400)
  if (subscriptions === undefined || subscriptions === null) subscriptions = []
  if (form && typeof subscriptions === 'string') subscriptions = [subscriptions]
  if (!Array.isArray(subscriptions) || !subscriptions.every((s) => typeof s === 'string')) throw new PbHttpError(400)
  return { clientId, subscriptions }
}

// As PocketBase's BindBody: an empty body binds nothing (validation then
// speaks), JSON is read, forms only when allowed; any other type is refused.
function parseBody (buffer, req, allowForms) {
  if (buffer.length === 0) return {}
  const text = buffer.toString('utf8')
  if (isForm(req)) {
    if (!allowForms) throw new PbHttpError(400)
    const params = new URLSearchParams(text)
    return { clientId: params.get('clientId') ?? '', subscriptions: params.getAll('subscriptions') }
  }
  if (!isJson(req)) throw new PbHttpError(400)
  return goJsonFields(firstJsonValue(text))
}

// Go's json.Decoder (PocketBase's BindBody) reads the first JSON value and
// ignores what follows it: `{"clientId":"x"} trailing` binds, and so does
// `null` (nothing bound; validation speaks).
function firstJsonValue (text) {
  try {
    return JSON.parse(text)
  } catch {}
  let i = 0
  while (i < text.length && ' \t\r\n'.includes(text[i])) i++
  if (text.startsWith('null', i)) return null
  if (text[i] === '{') {
    let depth = 0
    let inString = false
    for (let j = i; j < text.length; j++) {
      const c = text[j]
      if (inString) {
        if (c === '\\') j++
        else if (c === '"') inString = false
      } else if (c === '"') {
        inString = true
      } else if (c === '{' || c === '[') {
        depth++
      } else if ((c === '}' || c === ']') && --depth === 0) {
        try {
          return JSON.parse(text.slice(i, j + 1))
        } catch {
          break
        }
      }
    }
  }
  throw new PbHttpError(400)
}

// Go's decoder matches object keys to struct fields case-insensitively (with
// Unicode simple folding: U+017F folds to s, U+212A to k); the last key that
// matches a field wins.
const FOLD = (k) => k.toLowerCase().replace(/\u017f/g, 's').replace(/\u212a/g, 'k')
function goJsonFields (body) {
  if (body === null) return {}
  if (typeof body !== 'object' || Array.isArray(body)) return body
  const out = {}
  for (const [key, value] of Object.entries(body)) {
    const folded = FOLD(key)
    if (folded === 'clientid') out.clientId = value
    else if (folded === 'subscriptions') out.subscriptions = value
  }
  return out
}

function readBody (req, limit) {
  const declared = Number(req.headers['content-length'])
  if (declared > limit) return Promise.reject(new PbHttpError(413))
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    const onData = (chunk) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        req.resume()
        reject(new PbHttpError(413))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => { cleanup(); resolve(Buffer.concat(chunks, size)) }
    const onError = (err) => { cleanup(); reject(err) }
    const cleanup = () => {
      req.removeListener('data', onData)
      req.removeListener('end', onEnd)
      req.removeListener('error', onError)
    }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
  })
}

module.exports = {
  MAX_SUBSCRIPTIONS,
  MESSAGES,
  INVALID_CLIENT,
  PbHttpError,
  sendJsonError,
  lengthError,
  connectStatus,
  validateForm,
  isForm,
  isJson,
  readForm,
  parseBody,
  goJsonFields,
  readBody
}
