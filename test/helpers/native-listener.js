'use strict'
// The native listener's test fixture: a Hub (2 threads unless told) closed
// after the test, listening with hub.listen() on a free loopback port; and a
// GET request head to send raw.
const { Hub } = require('../..')
const { cleanup } = require('./wait')

/** Returns { hub, listener, port, defer }. */
async function startListener (t, hubOptions = {}, listenOptions = {}) {
  const defer = cleanup(t)
  const hub = new Hub({ threads: 2, ...hubOptions })
  defer(() => hub.close(), 'hub.close()')
  const listener = await hub.listen({ port: 0, ...listenOptions })
  return { hub, listener, port: listener.port, defer }
}

/** A GET head for `path` with Host and the extra header lines given (each ending in CRLF). */
const GET = (path, extra = '') => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}\r\n`

module.exports = { startListener, GET }
