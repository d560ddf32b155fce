'use strict'
// Compressed SSE streams for the tests (issue 16), over real sockets:
//   startEventsServer(t, hub, { acceptOptions, beforeAccept })
//       a node:http server on 127.0.0.1:0 handing /events?t=a&t=b to
//       hub.accept(); ?compress=true|false and ?coding=<Accept-Encoding>
//       (the request's header rewritten before accept) when present.
//       { port, accepted: [{ id, url }], errors }; closed after the test.
//   openStream(port, path, { acceptEncoding, headers, http10 })
//       GET on a socket of its own; resolves with the response head. The
//       body is kept as it came (s.body(), the compressed bytes) and fed,
//       chunk by chunk as it arrives, to zlib's streaming decoder chosen by
//       the response's Content-Encoding (createGunzip, createInflate; none
//       for identity): s.decoded() is what came out of it so far, s.events
//       the SSE events parsed from it (sse-parser.js).
//   decodeWhole(coding, buffer)  zlib.gunzipSync / inflateSync (checks the
//       trailer: CRC-32 and ISIZE, or Adler-32), identity as is.
// HTTP/1.1 streams use node:http (it undoes the chunked framing, never the
// Content-Encoding); HTTP/1.0 ones a raw socket (the body runs to EOF).

const http = require('node:http')
const net = require('node:net')
const zlib = require('node:zlib')
const { SseParser } = require('./sse-parser')
const { listenLoopback } = require('./listen')
const { waitFor, within, cleanup } = require('./wait')

/** The events path: topics, and optional query parameters (compress, coding, ...). */
function eventsPath (topics, extra = {}) {
  const q = new URLSearchParams()
  for (const t of topics) q.append('t', t)
  for (const [k, v] of Object.entries(extra)) q.set(k, String(v))
  return `/events?${q}`
}

/**
 * @param {import('node:test').TestContext} t
 * @param {import('../..').Hub} hub
 * @param {{ acceptOptions?: object, beforeAccept?: (req, res, url) => void }} [options]
 */
async function startEventsServer (t, hub, { acceptOptions = {}, beforeAccept } = {}) {
  const defer = cleanup(t)
  const accepted = [] // { id, url } in accept order
  const errors = []
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost')
    if (url.pathname !== '/events') {
      res.statusCode = 404
      res.end()
      return
    }
    const options = { topics: url.searchParams.getAll('t'), ...acceptOptions }
    if (url.searchParams.has('compress')) options.compress = url.searchParams.get('compress') === 'true'
    if (url.searchParams.has('coding')) req.headers['accept-encoding'] = url.searchParams.get('coding')
    if (beforeAccept) beforeAccept(req, res, url)
    try {
      accepted.push({ id: hub.accept(req, res, options).id, url: req.url })
    } catch (error) {
      errors.push(error)
      res.statusCode = 500
      res.end(String(error.code || error.message))
    }
  })
  await listenLoopback(defer, server)
  return { server, port: server.address().port, accepted, errors }
}

/** zlib's streaming decoder for a Content-Encoding (null: identity). */
function decoderFor (coding) {
  if (coding === 'gzip') return zlib.createGunzip()
  if (coding === 'deflate') return zlib.createInflate()
  return null
}

/** The whole body decoded at once: zlib checks the trailer's checksum and length. */
function decodeWhole (coding, body) {
  if (coding === 'gzip') return zlib.gunzipSync(body)
  if (coding === 'deflate') return zlib.inflateSync(body)
  return body
}

/**
 * The client's side of one stream. feed(chunk) for each body chunk as it
 * arrives; finish() at the end of the body (clean or not).
 */
function streamState (status, headers, rawHeaders, close) {
  const coding = headers['content-encoding'] || null
  const decoder = decoderFor(coding)
  const raw = []
  const out = []
  const s = {
    status,
    headers,
    rawHeaders, // [name, value] pairs as sent
    coding,
    events: [],
    comments: () => parser.comments,
    ended: false, // the body ended (response 'end', or EOF for HTTP/1.0)
    aborted: false, // the connection closed before the end of the body
    decoderEnded: false, // the decoder's 'end': the compressed stream was complete
    decodeError: null,
    close,
    body: () => Buffer.concat(raw),
    decoded: () => Buffer.concat(out),
    /** Resolves once n events were decoded (bounded). */
    waitEvents (n, timeoutMs = 5000) {
      return waitFor(() => s.events.length >= n, timeoutMs,
        () => `${n} events decoded (got ${s.events.length}; coding ${coding}; decoded ${JSON.stringify(s.decoded().toString().slice(-300))})`, 5)
    },
    /** Resolves once the body ended and the decoder said so (or failed). */
    waitEnd (timeoutMs = 5000) {
      return waitFor(() => (s.ended || s.aborted) && (decoder === null || s.decoderEnded || s.decodeError !== null), timeoutMs,
        () => `the end of the ${coding || 'identity'} body (ended ${s.ended}, aborted ${s.aborted}, decoder ended ${s.decoderEnded})`)
    }
  }
  const parser = new SseParser((ev) => s.events.push(ev))
  const take = (buf) => { out.push(buf); parser.push(buf) }
  if (decoder) {
    decoder.on('data', take)
    decoder.on('end', () => { s.decoderEnded = true })
    decoder.on('error', (err) => { s.decodeError = err })
  }
  s.feed = (chunk) => {
    raw.push(chunk)
    if (decoder) decoder.write(chunk)
    else take(chunk)
  }
  s.finish = (clean) => {
    if (s.ended || s.aborted) return
    if (clean) s.ended = true
    else s.aborted = true
    if (decoder) decoder.end()
  }
  return s
}

/**
 * Opens a stream; resolves with its state once the response head arrived.
 * @param {number} port
 * @param {string} path
 * @param {{ acceptEncoding?: string, headers?: object, http10?: boolean, timeoutMs?: number }} [options]
 */
function openStream (port, path, { acceptEncoding, headers = {}, http10 = false, timeoutMs = 5000 } = {}) {
  const h = { accept: 'text/event-stream', ...headers }
  if (acceptEncoding !== undefined) h['accept-encoding'] = acceptEncoding
  const opening = http10 ? openHttp10(port, path, h) : openHttp11(port, path, h)
  return within(opening, timeoutMs, `GET ${path} (accept-encoding ${acceptEncoding}) response head`)
}

function openHttp11 (port, path, headers) {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, headers }, (res) => {
      const pairs = []
      for (let i = 0; i < res.rawHeaders.length; i += 2) pairs.push([res.rawHeaders[i], res.rawHeaders[i + 1]])
      const s = streamState(res.statusCode, res.headers, pairs, () => req.destroy())
      s.httpVersion = res.httpVersion
      s.pause = () => res.pause()
      s.resume = () => res.resume()
      res.on('data', (chunk) => s.feed(chunk))
      res.on('end', () => s.finish(true))
      res.on('aborted', () => s.finish(false))
      res.on('error', () => s.finish(false))
      res.on('close', () => s.finish(false)) // after 'end' when clean
      resolve(s)
    })
    req.on('error', reject)
  })
}

// HTTP/1.0: no chunked framing; the body is every byte up to the server's FIN.
function openHttp10 (port, path, headers) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    let head = Buffer.alloc(0)
    let s = null
    socket.once('connect', () => {
      let request = `GET ${path} HTTP/1.0\r\nHost: 127.0.0.1:${port}\r\n`
      for (const [name, value] of Object.entries(headers)) request += `${name}: ${value}\r\n`
      socket.write(request + '\r\n')
    })
    socket.on('data', (buf) => {
      if (s !== null) return s.feed(buf)
      head = Buffer.concat([head, buf])
      const at = head.indexOf('\r\n\r\n')
      if (at < 0) return
      const lines = head.toString('latin1', 0, at).split('\r\n')
      const m = /^HTTP\/(\d\.\d) (\d{3})/.exec(lines[0])
      if (!m) {
        socket.destroy()
        return reject(new Error(`malformed response head: ${JSON.stringify(lines[0])}`))
      }
      const headersIn = {}
      const pairs = []
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(':')
        const name = line.slice(0, colon).trim()
        const value = line.slice(colon + 1).trim()
        pairs.push([name, value])
        headersIn[name.toLowerCase()] = value
      }
      s = streamState(Number(m[2]), headersIn, pairs, () => socket.destroy())
      s.httpVersion = m[1]
      resolve(s)
      const rest = head.subarray(at + 4)
      if (rest.length > 0) s.feed(rest)
    })
    socket.on('end', () => { if (s) s.finish(true) })
    socket.on('close', () => { if (s) s.finish(false) })
    socket.on('error', (err) => { if (s === null) reject(err) })
  })
}

/** The values of a header as sent, every line of it (names compared case-insensitively). */
function headerLines (s, name) {
  // Values lowercased: header values such as Vary's field names are case-insensitive.
  return s.rawHeaders.filter(([n]) => n.toLowerCase() === name).map(([, v]) => v.toLowerCase())
}

module.exports = { eventsPath, startEventsServer, openStream, decodeWhole, headerLines }
