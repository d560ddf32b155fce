'use strict'
// Raw HTTP/1.x over one TCP connection, for the native listener's tests: the
// bytes go out exactly as given (split where asked), and what comes back is
// kept whole, with the responses' heads parsed as they arrive.
const net = require('node:net')
const { waitFor, sleep } = require('./wait')

/**
 * Connects to 127.0.0.1:port. Returns { socket, data(), text(), closed, reset,
 * send(bytes, { split, delayMs }), heads(), waitHeads(n), waitClosed(), close() }.
 */
function rawConnect (port, { localAddress, allowHalfOpen = false } = {}) {
  return new Promise((resolve, reject) => {
    // allowHalfOpen: the client keeps its side open after the server's FIN
    // (a client that does not hang up).
    const socket = net.connect({ host: '127.0.0.1', port, localAddress, allowHalfOpen })
    socket.setNoDelay(true)
    const chunks = []
    const c = {
      socket,
      closed: false,
      ended: false,
      error: null,
      data: () => Buffer.concat(chunks),
      text: () => Buffer.concat(chunks).toString('latin1'),
      /** Writes bytes, in pieces of `split` bytes with delayMs between them (split 1: byte by byte). */
      async send (bytes, { split = 0, delayMs = 0 } = {}) {
        const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes, 'latin1')
        if (split <= 0) {
          socket.write(buf)
          return
        }
        for (let i = 0; i < buf.length; i += split) {
          socket.write(buf.subarray(i, i + split))
          if (delayMs > 0) await sleep(delayMs)
          else await new Promise((resolve) => setImmediate(resolve))
        }
      },
      /** Every response head received so far: { status, version, headers (lowercased names), raw }. */
      heads () { return parseHeads(c.text()) },
      waitHeads (n, timeoutMs = 5000) {
        return waitFor(() => c.heads().length >= n, timeoutMs, () => `${n} response heads (got ${JSON.stringify(c.text().slice(0, 400))})`)
      },
      waitClosed (timeoutMs = 5000) {
        return waitFor(() => c.closed, timeoutMs, () => `the server to close (got ${JSON.stringify(c.text().slice(0, 300))})`)
      },
      waitText (re, timeoutMs = 5000) {
        return waitFor(() => re.test(c.text()), timeoutMs, () => `${re} in ${JSON.stringify(c.text().slice(-400))}`)
      },
      close () { socket.destroy() }
    }
    socket.on('data', (b) => chunks.push(b))
    socket.on('end', () => { c.ended = true })
    socket.on('close', () => { c.closed = true })
    socket.on('error', (err) => { c.error = err })
    socket.once('connect', () => resolve(c))
    socket.once('error', reject)
  })
}

// Response heads in a byte stream. Bodies with content-length are skipped;
// a chunked or close-delimited body (an SSE stream) ends the parse.
function parseHeads (text) {
  const heads = []
  let at = 0
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at)
    if (end < 0) break
    const lines = text.slice(at, end).split('\r\n')
    const m = /^HTTP\/(\d\.\d) (\d{3}) ?(.*)$/.exec(lines[0])
    if (!m) break
    const headers = {}
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon).toLowerCase()
      const value = line.slice(colon + 1).trim()
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
    }
    const length = Number(headers['content-length'] || 0)
    const head = { status: Number(m[2]), version: m[1], reason: m[3], headers, body: text.slice(end + 4, end + 4 + length) }
    heads.push(head)
    if (headers['transfer-encoding'] || (headers['content-type'] || '').startsWith('text/event-stream')) break
    at = end + 4 + length
  }
  return heads
}

module.exports = { rawConnect, parseHeads }
