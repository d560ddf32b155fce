'use strict'
// The publish request's body: its media type, its bounded reading, and its
// parsing as Go's url.ParseQuery does it (what the reference hub's
// r.ParseForm runs), strictly: a bad percent escape or a `;` separator makes
// the whole form malformed (Go: 400, nothing published), `+` is a space, an
// empty pair is skipped, a name may repeat. Text that is not UTF-8 is refused
// too: Go would carry the bytes, a JS string cannot. No hub state here.

const FORM_TYPE = 'application/x-www-form-urlencoded'
const BAD_ESCAPE = /%(?![0-9A-Fa-f]{2})/
const ESCAPE = /%([0-9A-Fa-f]{2})/g
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
// Pairs in one form, empty ones included: Go's url.ParseQuery refuses more
// since 1.25.6 (GODEBUG urlmaxqueryparams, CVE-2025-61726). Without it a
// 1 MiB body of `a=b&` is 262,144 pairs, about 280 ms of the JS thread.
const MAX_FORM_PAIRS = 10000

/** A request the hub answers with an error: HTTP status and a short plain-text reason. */
class HttpError extends Error {
  constructor (status, reason, headers = {}) {
    super(reason)
    this.status = status
    this.headers = headers
  }
}

/** The request's media type, lower case, without parameters ('' when absent). */
function mediaType (req) {
  return String(req.headers['content-type'] || '').split(';')[0].trim().toLowerCase()
}

function isForm (req) { return mediaType(req) === FORM_TYPE }

/**
 * The body, at most `limit` bytes: rejects with a 413 HttpError past it
 * (declared or read), the rest of the body left unread.
 */
function readBody (req, limit) {
  const declared = Number(req.headers['content-length'])
  if (declared > limit) return Promise.reject(tooLarge(limit))
  return new Promise((resolve, reject) => {
    const chunks = []
    let size = 0
    const cleanup = () => {
      req.removeListener('data', onData)
      req.removeListener('end', onEnd)
      req.removeListener('error', onError)
      req.removeListener('close', onClose)
    }
    const onData = (chunk) => {
      size += chunk.length
      if (size > limit) {
        cleanup()
        reject(tooLarge(limit))
        return
      }
      chunks.push(chunk)
    }
    const onEnd = () => { cleanup(); resolve(Buffer.concat(chunks, size)) }
    const onError = (err) => { cleanup(); reject(err) }
    const onClose = () => { cleanup(); reject(new HttpError(400, 'the request body was cut short')) }
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('close', onClose)
  })
}

function tooLarge (limit) {
  // The connection closes after the answer: the rest of the body is not read.
  return new HttpError(413, `the request body is larger than maxBodyBytes (${limit} bytes)`, { connection: 'close' })
}

// One name or value: `+` is a space, %XX a byte, the bytes UTF-8. `text` holds
// the body's bytes one per char (latin1).
function decodeComponent (text) {
  let out = text.includes('+') ? text.replace(/\+/g, ' ') : text
  if (out.includes('%')) {
    if (BAD_ESCAPE.test(out)) throw new HttpError(400, 'malformed form body: a "%" not followed by two hexadecimal digits')
    out = out.replace(ESCAPE, (_, hex) => String.fromCharCode(parseInt(hex, 16)))
  }
  try {
    return utf8.decode(Buffer.from(out, 'latin1'))
  } catch {
    throw new HttpError(400, 'malformed form body: not UTF-8')
  }
}

/**
 * A form body (Buffer) -> Map of name -> values in order. Throws a 400
 * HttpError for a malformed body.
 */
function parseForm (body) {
  const fields = new Map()
  const pairs = body.toString('latin1').split('&', MAX_FORM_PAIRS + 1)
  if (pairs.length > MAX_FORM_PAIRS) throw new HttpError(400, `malformed form body: more than ${MAX_FORM_PAIRS} fields`)
  for (const pair of pairs) {
    if (pair.includes(';')) throw new HttpError(400, 'malformed form body: ";" is not a separator (use "&")')
    if (pair === '') continue
    const eq = pair.indexOf('=')
    const name = decodeComponent(eq === -1 ? pair : pair.slice(0, eq))
    const value = eq === -1 ? '' : decodeComponent(pair.slice(eq + 1))
    const values = fields.get(name)
    if (values === undefined) fields.set(name, [value])
    else values.push(value)
  }
  return fields
}

/**
 * A body a framework already parsed (express.urlencoded(): an object of
 * strings and arrays of strings) -> the same Map as parseForm.
 */
function formFromObject (body) {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new HttpError(400, 'malformed form body')
  const fields = new Map()
  for (const [name, value] of Object.entries(body)) {
    const values = Array.isArray(value) ? value : [value]
    if (!values.every((v) => typeof v === 'string')) {
      throw new HttpError(400, `malformed form body: "${name}" is not a plain field (parse forms with express.urlencoded({ extended: false }), or leave the body to the hub)`)
    }
    fields.set(name, values)
  }
  return fields
}

module.exports = { FORM_TYPE, MAX_FORM_PAIRS, HttpError, mediaType, isForm, readBody, parseForm, formFromObject }
