'use strict'
// SSE client process for the integration tests. Run with child_process.fork;
// the parent drives it over IPC (see clients.js for the parent's side).
//
// It opens raw TCP (or TLS) connections to 127.0.0.1, writes an HTTP/1.1 (or
// HTTP/1.0) GET by hand, parses the response head, decodes chunked transfer
// encoding when the response uses it, and parses the body as an SSE stream
// (sse-parser.js). Nothing here comes from node:http, so what the tests see is
// what a client on the wire gets.
//
// Commands (each message carries a `seq`; the reply carries the same seq):
//   { cmd: 'open', n, port, path | paths, http10?, tls?, stall?, host?, method?, headers? }
//       opens n connections; replies once each has its response head (or,
//       with stall, once its request is written), or failed.
//       path may contain "{i}", replaced by the connection's index. In stall
//       mode the socket is paused right after the request: it never reads.
//       method (default GET) is the request method; headers ({ name: value })
//       are added to the request, "{i}" in a value replaced as in path.
//   { cmd: 'summary' }        per connection: event count and state flags
//   { cmd: 'report', indices?, events?, truncate?, raw? }  full state
//   { cmd: 'close', indices? | n? }  destroys those connections (n: the first
//                                    n that are still open)
//   { cmd: 'resume', indices }       resumes reading on stalled connections
//   { cmd: 'exit' }
// The process exits by itself after `lifetimeMs` (argv[2], default 60 s) and
// when the parent goes away.

const net = require('node:net')
const tls = require('node:tls')
const { SseParser } = require('./sse-parser')

const lifetimeMs = Number(process.argv[2]) || 60000
const lifetime = setTimeout(() => {
  process.stderr.write(`sse-clients: lifetime of ${lifetimeMs} ms over, exiting\n`)
  process.exit(3)
}, lifetimeMs)
process.on('disconnect', () => process.exit(0))

const conns = [] // by index
const RAW_KEEP = 4096 // body bytes kept for inspection

const CRLF = Buffer.from('\r\n')
const HEAD_END = Buffer.from('\r\n\r\n')

// Decodes an HTTP/1.1 chunked body (RFC 9112, 7.1). onData gets chunk data,
// onEnd the last-chunk (with any trailer) having been read.
class ChunkedDecoder {
  constructor (onData, onEnd, onError) {
    this.onData = onData
    this.onEnd = onEnd
    this.onError = onError
    this.state = 'size'
    this.line = ''
    this.remaining = 0
    this.crlf = 0 // bytes of the CRLF after chunk data already seen
    this.afterEnd = 0 // bytes received after the end of the body
  }

  push (buf) {
    let i = 0
    while (i < buf.length) {
      switch (this.state) {
        case 'size':
        case 'trailer': {
          const nl = buf.indexOf(10, i)
          const end = nl < 0 ? buf.length : nl + 1
          this.line += buf.toString('latin1', i, end)
          i = end
          if (nl < 0) break
          if (!this.line.endsWith('\r\n')) return this._fail(`bare LF in chunk framing: ${JSON.stringify(this.line)}`)
          const line = this.line.slice(0, -2)
          this.line = ''
          if (this.state === 'trailer') {
            if (line === '') {
              this.state = 'done'
              this.onEnd()
            }
            break
          }
          const size = line.split(';')[0].trim()
          if (!/^[0-9a-fA-F]+$/.test(size)) return this._fail(`bad chunk size line ${JSON.stringify(line)}`)
          this.remaining = parseInt(size, 16)
          this.state = this.remaining === 0 ? 'trailer' : 'data'
          break
        }
        case 'data': {
          const take = Math.min(this.remaining, buf.length - i)
          this.onData(buf.subarray(i, i + take))
          i += take
          this.remaining -= take
          if (this.remaining === 0) {
            this.state = 'crlf'
            this.crlf = 0
          }
          break
        }
        case 'crlf':
          if (buf[i] !== CRLF[this.crlf]) return this._fail(`expected CRLF after chunk data, got byte ${buf[i]}`)
          i++
          if (++this.crlf === 2) this.state = 'size'
          break
        case 'done':
          this.afterEnd += buf.length - i
          i = buf.length
          break
        case 'failed':
          return
      }
    }
  }

  _fail (message) {
    this.state = 'failed'
    this.onError(message)
  }
}

function parseHead (text) {
  const lines = text.split('\r\n')
  const m = /^HTTP\/(\d\.\d) (\d{3})(?: (.*))?$/.exec(lines[0])
  if (!m) return null
  const headers = {}
  const rawHeaders = []
  for (const line of lines.slice(1)) {
    if (line === '') continue
    const colon = line.indexOf(':')
    if (colon <= 0) return null
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    rawHeaders.push([line.slice(0, colon), value])
    if (name in headers) {
      headers[name] = [].concat(headers[name], value)
    } else {
      headers[name] = value
    }
  }
  return { httpVersion: m[1], status: Number(m[2]), headers, rawHeaders }
}

function openOne (i, o, done) {
  const c = {
    i,
    socket: null,
    tcp: false, // the TCP (and TLS) connection was established
    requested: false,
    head: false,
    status: 0,
    httpVersion: '',
    headers: null,
    rawHeaders: null,
    chunked: false,
    events: [],
    parser: null,
    decoder: null,
    ended: false, // the chunked body's last-chunk arrived
    eof: false, // the server closed its side (FIN)
    eofAfterEnd: false, // the FIN came after the last-chunk
    closed: false,
    destroyedByUs: false,
    error: null,
    framingError: null,
    bodyBytes: 0,
    raw: [],
    rawLen: 0,
    headBuf: Buffer.alloc(0),
    stalled: !!o.stall
  }
  conns[i] = c
  let reported = false
  const settle = () => {
    if (!reported) {
      reported = true
      done(c)
    }
  }

  c.parser = new SseParser((ev) => c.events.push(ev))
  const onBody = (buf) => {
    c.bodyBytes += buf.length
    if (c.rawLen < RAW_KEEP) {
      const keep = buf.subarray(0, RAW_KEEP - c.rawLen)
      c.raw.push(Buffer.from(keep))
      c.rawLen += keep.length
    }
  }

  const path = o.paths ? o.paths[i - o.first] : String(o.path || '/').replaceAll('{i}', String(i))
  const version = o.http10 ? '1.0' : '1.1'
  let extraHeaders = ''
  if (o.headers) {
    for (const [name, value] of Object.entries(o.headers)) extraHeaders += `${name}: ${String(value).replaceAll('{i}', String(i))}\r\n`
  }
  const request = `${o.method || 'GET'} ${path} HTTP/${version}\r\nHost: 127.0.0.1:${o.port}\r\n` +
    'Accept: text/event-stream\r\nCache-Control: no-cache\r\nUser-Agent: sse-fanout-test\r\n' + extraHeaders + '\r\n'

  const socket = o.tls
    ? tls.connect({ host: o.host || '127.0.0.1', port: o.port, rejectUnauthorized: false })
    : net.connect({ host: o.host || '127.0.0.1', port: o.port })
  c.socket = socket
  socket.setNoDelay(true)
  socket.once(o.tls ? 'secureConnect' : 'connect', () => {
    c.tcp = true
    socket.write(request)
    c.requested = true
    if (o.stall) {
      socket.pause() // never read: the server's writes pile up
      settle()
    }
  })

  socket.on('data', (buf) => {
    if (!c.head) {
      c.headBuf = Buffer.concat([c.headBuf, buf])
      const at = c.headBuf.indexOf(HEAD_END)
      if (at < 0) {
        if (c.headBuf.length > 65536) {
          c.framingError = 'response head longer than 64 KiB'
          socket.destroy()
        }
        return
      }
      const parsed = parseHead(c.headBuf.toString('latin1', 0, at))
      const rest = c.headBuf.subarray(at + 4)
      c.headBuf = null
      if (!parsed) {
        c.framingError = 'malformed response head'
        socket.destroy()
        settle()
        return
      }
      c.head = true
      c.status = parsed.status
      c.httpVersion = parsed.httpVersion
      c.headers = parsed.headers
      c.rawHeaders = parsed.rawHeaders
      const te = String(parsed.headers['transfer-encoding'] || '').toLowerCase()
      c.chunked = te.split(',').map((s) => s.trim()).includes('chunked')
      if (c.chunked) {
        c.decoder = new ChunkedDecoder(
          (data) => { onBody(data); c.parser.push(data) },
          () => { c.ended = true; c.parser.end() },
          (message) => { c.framingError = message; socket.destroy() })
      }
      settle()
      buf = rest
      if (buf.length === 0) return
    }
    if (c.decoder) {
      c.decoder.push(buf)
    } else {
      onBody(buf)
      c.parser.push(buf)
    }
  })
  socket.on('end', () => {
    c.eof = true
    c.eofAfterEnd = c.ended
    if (!c.chunked) c.parser.end()
  })
  socket.on('error', (err) => {
    c.error = err.code || err.message
  })
  socket.on('close', () => {
    c.closed = true
    settle()
  })
}

function open (msg) {
  const first = conns.length
  const o = { ...msg, first }
  const n = msg.n
  const limit = msg.concurrency || 200
  for (let k = 0; k < n; k++) conns.push(null) // reserve indices now
  return new Promise((resolve) => {
    let next = 0
    let settled = 0
    let inFlight = 0
    const failed = []
    const timer = setTimeout(() => finish(true), msg.timeoutMs || 20000)
    function finish (timedOut) {
      clearTimeout(timer)
      const indices = []
      for (let k = 0; k < n; k++) indices.push(first + k)
      const notReady = indices.filter((i) => !conns[i] || !(msg.stall ? conns[i].requested : conns[i].head))
      resolve({ first, n, ready: n - notReady.length, notReady, failed, timedOut: !!timedOut })
    }
    function pump () {
      while (inFlight < limit && next < n) {
        const i = first + next++
        inFlight++
        openOne(i, o, (c) => {
          inFlight--
          settled++
          if (!(msg.stall ? c.requested : c.head)) failed.push({ i, error: c.error || c.framingError || 'closed' })
          if (settled === n) finish(false)
          else pump()
        })
      }
    }
    if (n === 0) finish(false)
    else pump()
  })
}

function flags (c) {
  if (!c) return 0
  return (c.head ? 1 : 0) | (c.ended ? 2 : 0) | (c.eof ? 4 : 0) | (c.closed ? 8 : 0) |
    (c.error ? 16 : 0) | (c.tcp ? 32 : 0) | (c.framingError ? 64 : 0)
}

function describe (c, msg) {
  const out = {
    i: c.i,
    tcp: c.tcp,
    head: c.head,
    status: c.status,
    httpVersion: c.httpVersion,
    chunked: c.chunked,
    count: c.events.length,
    comments: c.parser.comments,
    retry: c.parser.retry,
    ended: c.ended,
    eof: c.eof,
    eofAfterEnd: c.eofAfterEnd,
    closed: c.closed,
    destroyedByUs: c.destroyedByUs,
    error: c.error,
    framingError: c.framingError,
    bodyBytes: c.bodyBytes,
    bytesAfterEnd: c.decoder ? c.decoder.afterEnd : 0
  }
  if (msg.headers !== false) {
    out.headers = c.headers
    out.rawHeaders = c.rawHeaders
  }
  if (msg.events) {
    out.events = msg.truncate
      ? c.events.map((e) => ({ ...e, data: e.data.slice(0, msg.truncate) }))
      : c.events
  }
  if (msg.raw) out.raw = Buffer.concat(c.raw).toString('utf8')
  return out
}

function pick (msg) {
  if (Array.isArray(msg.indices)) return msg.indices.map((i) => conns[i]).filter(Boolean)
  return conns.filter(Boolean)
}

async function handle (msg) {
  switch (msg.cmd) {
    case 'open':
      return open(msg)
    case 'summary':
      return { flags: conns.map(flags), counts: conns.map((c) => (c ? c.events.length : 0)) }
    case 'report':
      return { conns: pick(msg).map((c) => describe(c, msg)) }
    case 'close': {
      let list = pick(msg).filter((c) => !c.closed && !c.destroyedByUs)
      if (typeof msg.n === 'number') list = list.slice(0, msg.n)
      for (const c of list) {
        c.destroyedByUs = true
        c.socket.destroy()
      }
      return { closed: list.map((c) => c.i) }
    }
    case 'resume':
      for (const c of pick(msg)) {
        c.stalled = false
        c.socket.resume()
      }
      return { ok: true }
    case 'exit':
      return { exiting: true }
    default:
      throw new Error(`unknown command ${msg.cmd}`)
  }
}

process.on('message', (msg) => {
  handle(msg).then(
    (result) => {
      process.send({ seq: msg.seq, ok: true, result }, () => {
        if (msg.cmd === 'exit') {
          clearTimeout(lifetime)
          for (const c of conns) if (c) c.socket.destroy()
          process.exit(0)
        }
      })
    },
    (err) => process.send({ seq: msg.seq, ok: false, error: String(err && err.stack) }))
})

process.send({ ready: true, pid: process.pid })
