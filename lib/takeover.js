'use strict'
// Handing a plain HTTP/1.x socket from Node to the addon.
//
// The addon dup()s the socket's fd; Node's socket object is then destroyed
// (closing only Node's fd: the TCP connection lives on through the duplicate)
// and the I/O thread writes the response from the first byte on. Node must
// not have written anything for this response yet, so the addon writes the
// head itself, carrying every header the app set before the hand-over.

const vary = require('vary')
const { HUB_HEAD_HEADERS } = require('./headers')

/** The fd to take over, or -1 when this request must stay on the JS transport. */
function takeoverFd (req, res) {
  if (process.platform !== 'linux' && process.platform !== 'darwin') return -1
  if (req.httpVersionMajor !== 1 || res.headersSent) return -1
  const socket = req.socket
  if (!socket || socket.encrypted || socket !== res.socket) return -1
  // Anything Node still holds for this socket (an earlier keep-alive
  // response) would be lost or interleaved.
  if (socket.writableLength !== 0 || socket.destroyed) return -1
  const handle = socket._handle
  if (!handle || typeof handle.fd !== 'number' || handle.fd < 0) return -1
  return handle.fd
}

/**
 * The response head the addon writes: app headers plus the SSE ones; with a
 * coding ('gzip', 'deflate') its Content-Encoding, and with `offered` (the
 * hub offered compression) Accept-Encoding added to the app's Vary.
 */
function buildHead (res, chunked, coding = null, offered = false) {
  if (offered) vary(res, 'Accept-Encoding')
  let head = 'HTTP/1.1 200 OK\r\n'
  const names = res.getRawHeaderNames()
  let cacheControl = 'no-cache'
  for (const raw of names) {
    const name = raw.toLowerCase()
    if (HUB_HEAD_HEADERS.has(name)) continue
    const value = res.getHeader(name)
    if (name === 'cache-control') {
      cacheControl = String(value)
      continue
    }
    if (Array.isArray(value)) {
      for (const v of value) head += `${raw}: ${v}\r\n`
    } else {
      head += `${raw}: ${value}\r\n`
    }
  }
  if (res.sendDate && !res.hasHeader('date')) head += `date: ${new Date().toUTCString()}\r\n`
  head += 'content-type: text/event-stream\r\n'
  head += `cache-control: ${cacheControl}\r\n`
  head += 'x-accel-buffering: no\r\n'
  if (coding !== null) head += `content-encoding: ${coding}\r\n`
  head += chunked ? 'connection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n' : 'connection: close\r\n\r\n'
  return head
}

/** Same headers for a response Node keeps writing (TLS, HTTP/2, or forced). */
function writeJsHead (req, res) {
  if (res.headersSent) return
  res.statusCode = 200
  res.setHeader('content-type', 'text/event-stream')
  if (!res.hasHeader('cache-control')) res.setHeader('cache-control', 'no-cache')
  res.setHeader('x-accel-buffering', 'no')
  if (req.httpVersionMajor === 1) {
    res.removeHeader('content-length')
    if (req.httpVersionMinor >= 1) res.setHeader('connection', 'keep-alive')
  }
  res.writeHead(200)
  if (typeof res.flushHeaders === 'function') res.flushHeaders()
}

module.exports = { takeoverFd, buildHead, writeJsHead }
