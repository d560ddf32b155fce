'use strict'
// Child process of pocketbase-listeners.test.js: a Realtime app (argv[2]:
// 'http', 'fastify' or 'express'; argv[3]: the hub's transport) whose
// 'connect', 'subscribe', 'invalidSubscription' and 'disconnect' listeners
// throw, each beside a second listener that records what it saw. Prints one
// JSON line: the steps' results, what each second listener saw, and the
// uncaught exceptions (what the throwing listeners threw, surfaced later).

const { startRealtimeApp, openStream, post } = require('./pb-http')
const { waitFor, sleep } = require('./wait')

const [kind, transport] = process.argv.slice(2)
const out = { steps: {}, seen: { connect: 0, subscribe: 0, invalidSubscription: 0, disconnect: 0 }, uncaught: [] }
process.on('uncaughtException', (err) => { out.uncaught.push(err.message) })

const USER = { collectionId: 'users', id: 'u1' }

let app = null

async function main () {
  app = await startRealtimeApp(kind, { authenticate: () => USER, hubOptions: { transport, threads: 1 } })
  const realtime = app.realtime
  const throwing = {}
  for (const name of Object.keys(out.seen)) {
    realtime.on(name, () => { if (throwing[name]) throw new Error(`${name} listener threw`) })
    realtime.on(name, () => { out.seen[name]++ })
  }
  const steps = out.steps

  // connect: the stream stays the hub's and works; no error answer is written into it.
  throwing.connect = true
  const s = await openStream(app.port)
  const id = await s.connected()
  throwing.connect = false
  steps.connectStatus = s.status
  steps.sizeAfterConnect = realtime.size

  // subscribe: the POST is answered 204; what was asked for is recorded (a
  // later updateAuth evaluates that set, not the one before).
  steps.firstPost = (await post(app.port, { clientId: id, subscriptions: ['a'] })).status
  throwing.subscribe = true
  steps.throwingPost = (await post(app.port, { clientId: id, subscriptions: ['b'] })).status
  throwing.subscribe = false
  steps.afterThrowingPost = realtime.client(id).subscriptions
  steps.updateAuth = realtime.updateAuth({ ...USER, fresh: true })
  steps.afterUpdateAuth = realtime.client(id).subscriptions

  // invalidSubscription: a subscription whose options do not compile.
  throwing.invalidSubscription = true
  const bad = 'posts/*?options=' + encodeURIComponent(JSON.stringify({ query: { filter: 'views >>> 1' }, headers: {} }))
  steps.invalidPost = (await post(app.port, { clientId: id, subscriptions: ['b', bad] })).status
  throwing.invalidSubscription = false

  // revokeAuth with a 'subscribe' listener throwing for the first client: every client is revoked.
  const s2 = await openStream(app.port)
  const id2 = await s2.connected()
  steps.secondPost = (await post(app.port, { clientId: id2, subscriptions: ['b'] })).status
  throwing.subscribe = true
  steps.revokeAuth = realtime.revokeAuth(USER.collectionId, USER.id)
  throwing.subscribe = false
  steps.authAfterRevoke = [realtime.client(id).auth, realtime.client(id2).auth]
  steps.clientsOfAfterRevoke = realtime.clientsOf(USER.collectionId, USER.id).length

  // The stream is still open and delivers.
  realtime.publish('b', { n: 1 })
  await waitFor(() => s.events.some((e) => e.event === 'b'), 5000, 'the published event')
  steps.streamEnded = s.ended

  // disconnect: both clients leave the books.
  throwing.disconnect = true
  s.close()
  s2.close()
  await waitFor(() => realtime.size === 0, 5000, 'both clients gone')
  await sleep(50)
  throwing.disconnect = false
  steps.sizeAfterDisconnect = realtime.size
  steps.hubConnections = realtime.hub.stats().connections
  await app.close()
}

main().then(() => {
  process.stdout.write(JSON.stringify(out) + '\n')
}, (err) => {
  out.failed = err.stack
  process.stdout.write(JSON.stringify(out) + '\n')
  process.exit(1) // the app may hold streams a failed step left open
})
