'use strict'
// One error vocabulary for the package: every failure is an SseError with a
// stable `code`. Native Status values map onto these codes by name
// (ERR_SSE_ + statusName); test/js/hub-errors.test.js checks the two tables agree.

class SseError extends Error {
  constructor (code, message) {
    super(message)
    this.name = 'SseError'
    this.code = code
  }
}

/** Every code the package throws, with what it means. Documented in README.md. */
const codes = Object.freeze({
  ERR_SSE_INVALID_ARGUMENT: 'An argument or option has the wrong type or value.',
  ERR_SSE_INVALID_TOPIC: 'A topic is empty, longer than 1024 bytes, or contains CR, LF or NUL.',
  ERR_SSE_INVALID_EVENT: 'An event name contains CR, LF or NUL.',
  ERR_SSE_INVALID_ID: 'An event id contains CR, LF or NUL.',
  ERR_SSE_INVALID_RETRY: 'A retry delay is not a non-negative integer.',
  ERR_SSE_INVALID_DATA: 'Event data is neither a string, a Buffer nor a JSON-serialisable value.',
  ERR_SSE_DATA_TOO_LARGE: 'An encoded event is larger than maxQueueBytes, so no client could ever receive it.',
  ERR_SSE_TOO_MANY_SUBSCRIPTIONS: 'A connection would pass maxSubscriptions.',
  ERR_SSE_UNKNOWN_CONNECTION: 'The connection id was never issued by this hub, or its connection has ended.',
  ERR_SSE_TOO_MANY_CONNECTIONS: 'The hub already holds maxConnections connections, or the process has no file descriptor left for a stream (HTTP 503).',
  ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP: 'The hub already holds maxConnectionsPerIp connections from this client address (HTTP 429).',
  ERR_SSE_CLOSED: 'The hub is closed (or closing).',
  ERR_SSE_TOO_MANY_OPTION_SUBSCRIPTIONS: 'A PocketBase client would hold more than maxOptionSubscriptionsPerClient subscriptions with ?options; nothing was changed.',
  ERR_SSE_CLIENT_FILTER_BUDGET: "The filters of a PocketBase client's subscriptions would pass maxFilterNodesPerClient nodes; nothing was changed.",
  ERR_SSE_CLIENT_MEMORY_BUDGET: "A PocketBase client's compiled subscriptions would pass maxCompiledBytesPerClient; nothing was changed.",
  ERR_SSE_TOO_MANY_DISTINCT_SUBSCRIPTIONS: 'The hub would hold more than maxDistinctSubscriptions distinct PocketBase subscriptions; nothing was changed.',
  ERR_SSE_SUBSCRIPTION_MEMORY_BUDGET: "The hub's compiled PocketBase subscriptions would pass maxCompiledBytes; nothing was changed.",
  ERR_SSE_TOO_MANY_IP_OPTION_SUBSCRIPTIONS: 'The PocketBase clients of one address would hold more than maxOptionSubscriptionsPerIp subscriptions with ?options; nothing was changed.',
  ERR_SSE_IP_FILTER_BUDGET: 'The filters of the PocketBase clients of one address would pass maxFilterNodesPerIp nodes; nothing was changed.',
  ERR_SSE_IP_MEMORY_BUDGET: 'The compiled subscriptions of the PocketBase clients of one address would pass maxCompiledBytesPerIp; nothing was changed.',
  ERR_SSE_TOO_MANY_IP_SUBSCRIPTIONS: 'The PocketBase clients of one address would hold more than maxSubscriptionsPerIp subscriptions; nothing was changed.',
  ERR_SSE_INVALID_FILTER: 'A PocketBase rule or filter does not compile, or a record is not a JSON object with a string id.',
  ERR_SSE_NATIVE_LOAD: 'The native addon could not be loaded.',
  ERR_SSE_MISSING_DEPENDENCY: 'An optional peer dependency (prom-client for sse-fanout/metrics, @redis/client for sse-fanout/redis, jose for sse-fanout/mercure) is not installed.',
  ERR_SSE_LISTEN: 'hub.listen() could not listen on its address (the port is in use, no permission, ...).',
  ERR_SSE_BAD_REQUEST: "The native listener refused a malformed request, or one past its limits (HTTP 400, 405, 413, 414, 431, 505; the listener's answer, never thrown).",
  ERR_SSE_NOT_FOUND: "A request to the native listener on a path it does not serve (HTTP 404; the listener's answer, never thrown).",
  ERR_SSE_UNAUTHORIZED: "The native listener's authorize hook refused the request with 401 and no code of its own (the listener's answer, never thrown).",
  ERR_SSE_FORBIDDEN: "The native listener's authorize hook refused the request (403, or its status with no code of its own; the listener's answer, never thrown).",
  ERR_SSE_AUTHORIZE: "The native listener's authorize hook threw or rejected (HTTP 500; the listener's answer, never thrown).",
  ERR_SSE_QUEUE_FULL: 'The I/O threads are behind: maxPendingCommands or maxPendingBytes is reached, nothing was queued; retry once they caught up.'
})

function describe (value) {
  if (value === null) return 'null'
  if (Array.isArray(value)) return `an array of length ${value.length}`
  const type = typeof value
  if (type === 'string') return value.length > 40 ? `a string of length ${value.length}` : `"${value}" of type string`
  if (type === 'object') return `an object${value.constructor && value.constructor.name ? ` (${value.constructor.name})` : ''}`
  return `${String(value)} of type ${type}`
}

/** sharp's wording: "Expected X for Y but received Z". */
function invalid (code, what, name, value) {
  return new SseError(code, `Expected ${what} for ${name} but received ${describe(value)}`)
}

module.exports = { SseError, codes, invalid, describe }
