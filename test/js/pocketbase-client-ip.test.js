'use strict'
// The Realtime's default clientIp is the framework's view of the client: with
// Fastify's trustProxy and Express's 'trust proxy', X-Forwarded-For decides
// the per-IP limit and the same-IP check of the POST, as it does for the
// Hub's own Fastify plugin and Express middleware. All requests come from
// 127.0.0.1 over real sockets; only the forwarded address differs.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { Realtime, fastifyRealtime, expressRealtime } = require('../../lib/pocketbase')
const { openStream, post } = require('../helpers/pb-http')
const { cleanup } = require('../helpers/wait')

const OPTIONS = { hubOptions: { maxConnectionsPerIp: 1 } }

async function startFastify () {
  const app = require('fastify')({ logger: false, trustProxy: true })
  await app.register(fastifyRealtime, OPTIONS)
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { port: app.server.address().port, close: () => app.close() }
}

async function startExpress () {
  const realtime = new Realtime(OPTIONS)
  const app = require('express')()
  app.set('trust proxy', true)
  app.use(expressRealtime(realtime))
  const server = http.createServer(app)
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    port: server.address().port,
    async close () {
      await realtime.close()
      await new Promise((resolve) => { server.close(resolve); server.closeAllConnections() })
    }
  }
}

const forwarded = (ip) => ({ headers: { 'x-forwarded-for': ip } })

for (const [kind, start] of [['fastify (trustProxy: true)', startFastify], ['express (trust proxy)', startExpress]]) {
  test(`${kind}: the per-IP limit and checkIp use the forwarded address`, async (t) => {
    const defer = cleanup(t)
    const app = await start()
    defer(() => app.close(), 'app.close()')
    const a = await openStream(app.port, forwarded('203.0.113.1'))
    defer(() => a.close(), 'stream a')
    const b = await openStream(app.port, forwarded('203.0.113.2'))
    defer(() => b.close(), 'stream b')
    assert.equal(a.status, 200)
    assert.equal(b.status, 200, 'another forwarded address is another per-IP bucket')
    const again = await openStream(app.port, forwarded('203.0.113.1'))
    defer(() => again.close(), 'stream again')
    assert.equal(again.status, 429, 'a second stream from the same forwarded address is over maxConnectionsPerIp')
    const id = await a.connected()
    const other = await post(app.port, { clientId: id, subscriptions: ['x'] }, forwarded('203.0.113.2'))
    assert.equal(other.status, 400, 'a POST from another forwarded address fails the same-IP check')
    const same = await post(app.port, { clientId: id, subscriptions: ['x'] }, forwarded('203.0.113.1'))
    assert.equal(same.status, 204, same.body)
  })
}
