'use strict'
// A TCP proxy on 127.0.0.1:0 that a test controls: it pipes every connection
// to a target port, and on demand cuts every live connection (both sides, as
// a dropped network path would) or refuses new ones for a while (each is
// reset at once, so the client sees a connection error, not a response).
//
//   const proxy = await startProxy(server.port)
//   proxy.url                 'http://127.0.0.1:<port>'
//   proxy.cut({ refuseMs })   cuts every live connection, refuses for refuseMs
//   proxy.refuse() / admit()  refuse until admit()
//   proxy.accepted, refused, live   counts
//
// It knows nothing of HTTP: what a client sent is the server's to record.

const net = require('node:net')
const { within } = require('./wait')

/**
 * @param {number} targetPort the port on 127.0.0.1 to forward to
 * @returns {Promise<Proxy>}
 */
async function startProxy (targetPort) {
  const pairs = new Set() // { client, upstream }
  let refusing = false
  let refuseTimer = null
  const counts = { accepted: 0, refused: 0, cut: 0 }

  const server = net.createServer((client) => {
    if (refusing) {
      counts.refused++
      client.resetAndDestroy()
      return
    }
    counts.accepted++
    const upstream = net.connect({ host: '127.0.0.1', port: targetPort })
    const pair = { client, upstream }
    pairs.add(pair)
    // No half-open pair: either side ending or failing ends both.
    const end = () => {
      if (!pairs.delete(pair)) return
      client.destroy()
      upstream.destroy()
    }
    for (const socket of [client, upstream]) {
      socket.setNoDelay(true)
      socket.on('error', end)
      socket.on('close', end)
    }
    client.pipe(upstream)
    upstream.pipe(client)
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: '127.0.0.1', port: 0 }, resolve)
  })
  const port = server.address().port

  const proxy = {
    port,
    url: `http://127.0.0.1:${port}`,
    /** Connections piped so far. */
    get accepted () { return counts.accepted },
    /** Connections reset while refusing. */
    get refused () { return counts.refused },
    /** Connections ended by cut(). */
    get cutCount () { return counts.cut },
    /** True while new connections are refused. */
    get refusing () { return refusing },
    /** Connections piped now. */
    get live () { return pairs.size },
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
        pair.upstream.destroy()
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
      for (const pair of [...pairs]) {
        pairs.delete(pair)
        pair.client.destroy()
        pair.upstream.destroy()
      }
      if (!server.listening) return Promise.resolve()
      return within(new Promise((resolve) => server.close(() => resolve())), 5000, 'proxy.close()')
    }
  }
  return proxy
}

module.exports = { startProxy }
