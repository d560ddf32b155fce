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

const Negotiator = require('negotiator')
const { invalid } = require('./errors')

/** The codings the hub speaks, by their Content-Encoding token (native ids). */
const CODINGS = Object.freeze({ gzip: 1, deflate: 2 })
const DEFAULT_COMPRESSION = Object.freeze({ level: 6, minBytes: 128 })
const SETTING_KEYS = new Set(['level', 'minBytes'])
const PREFERRED = ['gzip', 'deflate']

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
 * (identity), by negotiator (the parser Express's `compression` uses): the
 * highest q-value wins, gzip before deflate before identity on a tie, `*`
 * stands for a coding not named (`codings`: the ones on offer, gzip and
 * deflate by default). No header, or no coding acceptable:
 * identity (a stream is never refused for its encoding). The header is the
 * client's: one linear parse, bounded by Node's header size limit.
 */
function negotiate (header, codings = PREFERRED) {
  if (typeof header !== 'string' || header === '') return null
  const best = new Negotiator({ headers: { 'accept-encoding': header } }).encoding([...codings, 'identity'], { preferred: codings })
  return best === 'gzip' || best === 'deflate' ? best : null
}

module.exports = { CODINGS, DEFAULT_COMPRESSION, resolveCompression, checkCompress, negotiate }
