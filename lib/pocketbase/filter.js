'use strict'
// compileFilter(): a PocketBase filter or rule for an app's own API, compiled
// once by the engine the realtime index uses (src/pocketbase/pb_filter.hpp,
// through the addon's NativeFilter) and tested against records as often as
// needed. Read-only: nothing here touches a hub.
const { SseError, invalid } = require('../errors')
const native = require('../native')
const { checkAuth } = require('./records')

class Filter {
  constructor (expression, nativeFilter) {
    this.expression = expression
    this._native = nativeFilter
    Object.freeze(this)
  }

  /** True when record (and the caller's auth record, or null) pass the expression. */
  test (record, auth = null) {
    if (record === null || typeof record !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a record object', 'record', record)
    auth = checkAuth(auth)
    const result = this._native.test(JSON.stringify(record), auth === null ? null : JSON.stringify(auth))
    if (typeof result === 'string') throw new SseError('ERR_SSE_INVALID_FILTER', result)
    return result
  }
}

/** Compiles a PocketBase filter or rule; throws ERR_SSE_INVALID_FILTER with the reason when it does not compile. */
function compileFilter (expression) {
  if (typeof expression !== 'string') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a filter string', 'expression', expression)
  const nativeFilter = new native.NativeFilter(expression)
  const error = nativeFilter.error()
  if (error !== null) throw new SseError('ERR_SSE_INVALID_FILTER', `${error} (in ${JSON.stringify(expression)})`)
  return new Filter(expression, nativeFilter)
}

module.exports = { compileFilter }
