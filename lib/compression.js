'use strict'
// Compressed streams (README.md, "Compression"; issue 16): the hub's
// `compression` option, the per-accept `compress` option, and the choice of a
// coding from the request's Accept-Encoding (RFC 9110, section 12.5.3).
//
// The compression itself is native (src/compress): every event is compressed
// once, as raw DEFLATE blocks of its own ended by a sync flush, and the same
// bytes go to every gzip or deflate stream; a stream keeps no compressor.
// Only streams the I/O threads write (taken over) are compressed: a stream on
// the JS transport (TLS, HTTP/2, transport 'js') stays identity.

const { invalid } = require('./errors')

/** The codings the hub speaks, by their Content-Encoding token (native ids). */
const CODINGS = Object.freeze({ gzip: 1, deflate: 2 })
const DEFAULT_COMPRESSION = Object.freeze({ level: 6, minBytes: 128 })
const SETTING_KEYS = new Set(['level', 'minBytes'])
// Accept-Encoding is the client's: its work is bounded by Node's header limit
// (16 KiB by default) and one linear pass; elements past this many are ignored.
const MAX_ELEMENTS = 64
const QVALUE = /^(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$/

/** options.compression: false/undefined -> null; true -> the defaults; { level, minBytes }. */
function resolveCompression (value) {
  if (value === undefined || value === false || value === null) return null
  if (value === true) return DEFAULT_COMPRESSION
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean or { level, minBytes }', 'options.compression', value)
  }
  for (const key of Object.keys(value)) {
    if (!SETTING_KEYS.has(key)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'level or minBytes', `options.compression key ${JSON.stringify(key)}`, key)
  }
  const level = value.level === undefined ? DEFAULT_COMPRESSION.level : value.level
  if (!Number.isInteger(level) || level < 1 || level > 9) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an integer between 1 and 9 (zlib level)', 'options.compression.level', level)
  }
  const minBytes = value.minBytes === undefined ? DEFAULT_COMPRESSION.minBytes : value.minBytes
  if (!Number.isInteger(minBytes) || minBytes < 0 || minBytes > 2 ** 31 - 1) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between 0 and ${2 ** 31 - 1} (bytes)`, 'options.compression.minBytes', minBytes)
  }
  return Object.freeze({ level, minBytes })
}

/** accept()'s options.compress: undefined (the hub's choice), true or false. */
function checkCompress (value, name) {
  if (value !== undefined && typeof value !== 'boolean') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', name, value)
  return value
}

/**
 * The coding to answer an Accept-Encoding with: 'gzip', 'deflate', or null
 * (identity). The highest q-value wins, gzip on a tie; `*` stands for a coding
 * not named; `x-gzip` is gzip (RFC 9110, 8.4.1.3). An element with a
 * malformed q-value is ignored. No header, or nothing acceptable: identity
 * (a stream is never refused for its encoding).
 */
function negotiate (header) {
  if (typeof header !== 'string' || header === '') return null
  const q = { gzip: undefined, deflate: undefined, '*': undefined }
  const elements = header.split(',', MAX_ELEMENTS)
  for (const element of elements) {
    const parts = element.split(';')
    let name = parts[0].trim().toLowerCase()
    if (name === 'x-gzip') name = 'gzip'
    if (!(name in q)) continue
    let weight = 1
    let valid = true
    for (let i = 1; i < parts.length; i++) {
      const param = parts[i].trim()
      const eq = param.indexOf('=')
      if (eq < 0 || param.slice(0, eq).trim().toLowerCase() !== 'q') continue
      const v = param.slice(eq + 1).trim()
      if (!QVALUE.test(v)) {
        valid = false
        break
      }
      weight = Number(v)
    }
    // The most specific element counts; of two for one name, the higher.
    if (valid) q[name] = Math.max(q[name] ?? 0, weight)
  }
  const gzip = q.gzip ?? q['*'] ?? 0
  const deflate = q.deflate ?? q['*'] ?? 0
  if (gzip <= 0 && deflate <= 0) return null
  return gzip >= deflate ? 'gzip' : 'deflate'
}

module.exports = { CODINGS, DEFAULT_COMPRESSION, resolveCompression, checkCompress, negotiate }
