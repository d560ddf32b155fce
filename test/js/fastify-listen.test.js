'use strict'
// The Fastify plugin's `listen` option (issue 17): the app keeps its routes on
// Fastify while the heavy SSE traffic goes to the native listener of the same
// hub; app.close() closes the listener with the hub. Real sockets.
const { test } = require('node:test')
const assert = require('node:assert/strict')
const Fastify = require('fastify')
const plugin = require('../../lib/fastify')
const { openStream } = require('../helpers/compressed')
const { rawConnect } = require('../helpers/raw-http')
const { waitFor, cleanup } = require('../helpers/wait')

test('listen: a native port beside the app\'s routes, one hub; closed with the app', async (t) => {
  const defer = cleanup(t)
  const app = Fastify()
  defer(() => app.close(), 'app.close()')
  await app.register(plugin, { threads: 1, listen: { port: 0, cors: true } })
  app.post('/news', async (request) => {
    app.sse.publish('news', request.body)
    return { ok: true }
  })
  app.get('/events', (request, reply) => { reply.sse({ topics: ['news'] }) })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const appPort = app.server.address().port
  const listener = app.sseListener
  assert.ok(listener.port > 0 && listener.port !== appPort)

  const native = await openStream(listener.port, '/events?topics=news')
  const viaFastify = await openStream(appPort, '/events')
  assert.equal(native.headers['access-control-allow-origin'], '*')
  await waitFor(() => app.sse.stats().connections === 2, 5000, 'both streams counted')
  const res = await fetch(`http://127.0.0.1:${appPort}/news`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"n":1}', signal: AbortSignal.timeout(5000) })
  assert.equal(res.status, 200)
  await native.waitEvents(1)
  await viaFastify.waitEvents(1)
  assert.equal(native.events[0].data, '{"n":1}')
  assert.equal(listener.stats().streams, 1)

  await app.close()
  await assert.rejects(rawConnect(listener.port), /ECONNREFUSED/)
  await native.waitEnd()
})

test('listen: bad options fail the registration', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  app.register(plugin, { threads: 1, listen: { port: 'x' } })
  await assert.rejects(app.ready(), /options\.port/)
  const other = Fastify()
  t.after(() => other.close())
  other.register(plugin, { threads: 1, listen: 5 })
  await assert.rejects(other.ready(), /options\.listen/)
})
