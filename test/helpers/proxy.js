'use strict'
// A TCP proxy on 127.0.0.1:0 that a test controls: it pipes every connection
// to a target port, and on demand cuts every live connection (both sides, as
// a dropped network path would) or refuses new ones for a while (each is
// reset at once, so the client sees a connection error, not a response).
// It can also play a proxy that does not pass streams: answer a request
// with 502, or hold it open and forward nothing, or let an established
// connection's answer stop coming (a buffering proxy).
//
//   const proxy = await startProxy(server.port)
//   proxy.url                 'http://127.0.0.1:<port>'
//   proxy.cut({ refuseMs })   cuts every live connection, refuses for refuseMs
//   proxy.refuse() / admit()  refuse until admit()
//   proxy.setMode('502', { path: '/events' })   new connections whose request
//                             targets /events... get 502; others pass
//   proxy.setMode('hold', { path })   ... are held open, nothing forwarded
//   proxy.setMode('pass')     every new connection passes (the default)
//   proxy.silence({ path })   established connections of path: the server's
//                             bytes are dropped from now on
//   proxy.accepted, refused, live, answered502, held, silenced   counts
//
// It knows little of HTTP: it reads the request line of a connection's first
// request (its path decides what happens to the connection) and nothing
// after. A client that keeps connections alive may send a later request on a
// connection that passed; the test's server should close every connection
// but streams after one answer (`connection: close`) when a mode decides by
// path. Held connections stay held after setMode('pass') (until the client
// gives up, cut() or close()).

const net = require('node:net')
const { within } = require('./wait')

const MAX_REQUEST_LINE = 8192
const MODES = ['pass', '502', 'hold']
const BAD_GATEWAY = 'HTTP/1.1 502 Bad Gateway\r\ncontent-type: text/plain\r\ncontent-length: 11\r\nconnection: close\r\n\r\nBad Gateway'

/** Whether a request target matches path: a prefix string or a RegExp (undefined: every target). */
function matches (path, target) {
  if (path === undefined) return true
  return path instanceof RegExp ? path.test(target) : target.startsWith(path)
}

/**
 * @param {number} targetPort the port on 127.0.0.1 to forward to
 * @returns {Promise<Proxy>}
 */
async function startProxy (targetPort) {
  const pairs = new Set() // { client, upstream (null until it passes), target }
  let refusing = false
  let refuseTimer = null
  let mode = 'pass'
  let modePath
  const counts = { accepted: 0, refused: 0, cut: 0, answered502: 0, held: 0, silenced: 0 }

  // No half-open pair: either side ending or failing ends both.
  function end (pair) {
    if (!pairs.delete(pair)) return
    pair.client.destroy()
    if (pair.upstream) pair.upstream.destroy()
  }

  function pass (pair, head) {
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort })
    pair.upstream = upstream
    upstream.setNoDelay(true)
    upstream.on('error', () => end(pair))
    upstream.on('close', () => end(pair))
    upstream.write(head)
    pair.client.pipe(upstream)
    upstream.pipe(pair.client)
  }

  // The first request line decides, in the mode of that moment.
  function route (pair, head) {
    const applies = mode !== 'pass' && matches(modePath, pair.target)
    if (applies && mode === '502') {
      counts.answered502++
      pair.client.end(BAD_GATEWAY)
      pair.client.resume() // read (and drop) the rest: the close comes through
    } else if (applies && mode === 'hold') {
      counts.held++
      pair.client.on('data', () => {}) // dropped; reading on sees the client leave
      pair.client.resume()
    } else {
      pass(pair, head)
    }
  }

  const server = net.createServer((client) => {
    if (refusing) {
      counts.refused++
      client.resetAndDestroy()
      return
    }
    counts.accepted++
    const pair = { client, upstream: null, target: null }
    pairs.add(pair)
    client.setNoDelay(true)
    client.on('error', () => end(pair))
    client.on('close', () => end(pair))
    let head = Buffer.alloc(0)
    const onHead = (chunk) => {
      head = Buffer.concat([head, chunk])
      const eol = head.indexOf('\r\n')
      if (eol < 0 && head.length < MAX_REQUEST_LINE) return
      client.removeListener('data', onHead)
      client.pause()
      const line = head.subarray(0, eol < 0 ? head.length : eol).toString('latin1')
      pair.target = line.split(' ')[1] || ''
      route(pair, head)
    }
    client.on('data', onHead)
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, resolve)
  })
  const port = server.address().port

  const proxy = {
    port,
    url: `http://127.0.0.1:${port}`,
    /** Connections accepted so far (refused ones aside). */
    get accepted () { return counts.accepted },
    /** Connections reset while refusing. */
    get refused () { return counts.refused },
    /** Connections ended by cut(). */
    get cutCount () { return counts.cut },
    /** Requests answered 502. */
    get answered502 () { return counts.answered502 },
    /** Connections held (nothing forwarded). */
    get held () { return counts.held },
    /** Connections whose server bytes silence() dropped. */
    get silenced () { return counts.silenced },
    /** True while new connections are refused. */
    get refusing () { return refusing },
    /** 'pass', '502' or 'hold'. */
    get mode () { return mode },
    /** Connections open now (piped, held, or waiting for their request line). */
    get live () { return pairs.size },
    /**
     * What the proxy does with a new connection's first request from now on:
     * 'pass' forwards it; '502' answers `502 Bad Gateway` and closes; 'hold'
     * keeps the connection open and forwards nothing. With path (a prefix
     * of the request target, or a RegExp), only requests that match; the
     * others pass.
     * @param {'pass' | '502' | 'hold'} next
     * @param {{ path?: string | RegExp }} [options]
     */
    setMode (next, { path } = {}) {
      if (!MODES.includes(next)) throw new TypeError(`Expected one of ${MODES.join(', ')} for mode but received ${next}`)
      mode = next
      modePath = path
    },
    /**
     * Established connections whose first request matches path (every one
     * when absent): from now on the server's bytes are read and dropped, so
     * the client's open response goes silent while both sockets stay open.
     * @returns {number} the connections silenced
     */
    silence ({ path } = {}) {
      let n = 0
      for (const pair of pairs) {
        if (!pair.upstream || pair.silenced || !matches(path, pair.target)) continue
        pair.silenced = true
        pair.upstream.unpipe(pair.client)
        pair.upstream.on('data', () => {})
        pair.upstream.resume()
        n++
      }
      counts.silenced += n
      return n
    },
    /**
     * Cuts every live connection: the client's side is reset (the browser
     * sees a network error, not a clean end), the server's side destroyed.
     * With refuseMs, new connections are refused for that long.
     * @returns {number} the connections cut
     */
    cut ({ refuseMs = 0 } = {}) {
      if (refuseMs > 0) proxy.refuse(refuseMs)
      const n = pairs.size
      for (const pair of [...pairs]) {
        pairs.delete(pair)
        pair.client.resetAndDestroy()
        if (pair.upstream) pair.upstream.destroy()
      }
      counts.cut += n
      return n
    },
    /** Refuses new connections for ms, or until admit() when ms is absent. */
    refuse (ms) {
      refusing = true
      clearTimeout(refuseTimer)
      refuseTimer = ms === undefined ? null : setTimeout(proxy.admit, ms)
    },
    /** Accepts new connections again. */
    admit () {
      clearTimeout(refuseTimer)
      refuseTimer = null
      refusing = false
    },
    /** Stops listening and ends every connection (bounded). */
    close () {
      proxy.admit()
      for (const pair of [...pairs]) end(pair)
      if (!server.listening) return Promise.resolve()
      return within(new Promise((resolve) => server.close(() => resolve())), 5000, 'proxy.close()')
    }
  }
  return proxy
}

module.exports = { startProxy }
