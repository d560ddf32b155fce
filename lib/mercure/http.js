'use strict'
// The hub's HTTP answers, as the reference hub writes them: plain text
// (Go's http.Error: text/plain; charset=utf-8, nosniff, the reason and a
// line feed), the publish answer (200, the id), and the headers of a
// subscription stream (subscribe.go sendHeaders). No hub state here.

// subscribe.go: no cache, even for old browsers and proxies; `private` too,
// as the spec asks of answers to a request that may carry a query token.
const STREAM_HEADERS = Object.freeze({
  'cache-control': 'private, no-cache, no-store, must-revalidate, max-age=0',
  pragma: 'no-cache',
  expires: '0',
  'x-accel-buffering': 'no'
})
const ALLOW = 'GET, POST, OPTIONS'

/** An error answer: status, plain-text reason, extra headers (WWW-Authenticate, Connection). */
function sendText (res, status, reason, headers = {}) {
  if (res.headersSent || res.destroyed) {
    res.destroy()
    return
  }
  const body = `${reason}\n`
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value)
  res.setHeader('content-type', 'text/plain; charset=utf-8')
  res.setHeader('x-content-type-options', 'nosniff')
  res.setHeader('content-length', Buffer.byteLength(body))
  res.statusCode = status
  res.end(body)
}

/** The answer to a successful publish: 200, the update's id. */
function sendId (res, id) {
  if (res.headersSent || res.destroyed) return
  res.setHeader('content-type', 'text/plain; charset=utf-8')
  res.setHeader('cache-control', 'no-store')
  res.setHeader('content-length', Buffer.byteLength(id))
  res.statusCode = 200
  res.end(id)
}

/** 405 for a method the hub's path does not serve. */
function sendNotAllowed (res) {
  sendText(res, 405, 'Method Not Allowed', { allow: ALLOW })
}

// An id may hold any character but controls (update.js); a header value
// holds printable ASCII here. Others are percent-encoded as UTF-8, the IRI to
// URI mapping of RFC 3987 (3.1): the header names the same IRI.
const NOT_PRINTABLE_ASCII = /[^\x20-\x7e]/gu
function headerValue (id) {
  return id.replace(NOT_PRINTABLE_ASCII, (c) => Buffer.from(c, 'utf8').toString('hex').replace(/../g, '%$&').toUpperCase())
}

/** The headers of a subscription stream, set before hub.accept() writes the head. */
function setStreamHeaders (res, lastEventId) {
  for (const [name, value] of Object.entries(STREAM_HEADERS)) res.setHeader(name, value)
  if (lastEventId !== undefined) res.setHeader('last-event-id', headerValue(lastEventId))
}

module.exports = { STREAM_HEADERS, ALLOW, sendText, sendId, sendNotAllowed, setStreamHeaders, headerValue }
