'use strict'
// updateAuth and revokeAuth never leave a client with the rights it had: a
// client whose re-evaluated subscriptions cannot be applied (a budget refuses
// them, or anything else fails) has its stream ended (the SDK reconnects and
// authenticates afresh), is unbound at once and reported as requestError; the
// other clients of the identity are updated whatever happens to that one, and
// the count returned is of the clients updated in place. Over real sockets,
// on node:http, Fastify and Express.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startRealtimeApp, openStream, post } = require('../helpers/pb-http')
const { waitFor, sleep, cleanup } = require('../helpers/wait')

// 'staff-feed' for staff only, 'public-feed' for everyone else.
function authorizeTopic (topic, { auth }) {
  if (topic === 'staff-feed') return auth?.role === 'staff'
  if (topic === 'public-feed') return auth?.role !== 'staff'
  return true
}

async function connect (app, subscriptions) {
  const s = await openStream(app.port)
  const id = await s.connected()
  const res = await post(app.port, { clientId: id, subscriptions })
  assert.equal(res.status, 204, res.body)
  return { s, id }
}

for (const kind of ['http', 'fastify', 'express']) {
  test(`${kind}: updateAuth whose new set exceeds a budget ends that client's stream instead of keeping the old rights`, async (t) => {
    const defer = cleanup(t)
    let current = { collectionId: 'users', id: 'u1', role: 'staff' }
    const authenticate = (request) => (request.headers.authorization === 'guest' ? null : current)
    const app = await startRealtimeApp(kind, { authorizeTopic, authenticate, maxDistinctSubscriptions: 3 })
    defer(() => app.close(), 'app.close()')
    const errors = []
    app.realtime.on('requestError', (err) => errors.push(err.code))
    const staff = await connect(app, ['staff-feed', 'public-feed']) // receives staff-feed only
    const other = await connect(app, ['news']) // same identity, a set that stays within the budgets
    const guest = await openStream(app.port)
    const gid = await guest.connected()
    assert.equal((await post(app.port, { clientId: gid, subscriptions: ['x1'] }, { auth: 'guest' })).status, 204)
    // The demoted staff client would now need public-feed: a fourth distinct subscription.
    current = { collectionId: 'users', id: 'u1', role: 'member' }
    assert.equal(app.realtime.updateAuth(current), 1, 'only the client updated in place is counted')
    assert.deepEqual(errors, ['ERR_SSE_TOO_MANY_DISTINCT_SUBSCRIPTIONS'])
    assert.deepEqual(app.realtime.clientsOf('users', 'u1'), [other.id])
    assert.equal(app.realtime.client(other.id).auth.role, 'member')
    app.realtime.publish('staff-feed', { secret: true })
    app.realtime.publish('news', { n: 1 })
    await waitFor(() => staff.s.ended, 5000, 'the refused client\'s stream ended')
    await other.s.wait(2)
    assert.deepEqual(staff.s.names(1), [], 'nothing more reached the refused client')
    await waitFor(() => app.realtime.client(staff.id) === undefined, 5000, 'the refused client gone')
  })
}

test('revokeAuth: a client that fails unexpectedly does not stop the others; it is ended and reported', async (t) => {
  const defer = cleanup(t)
  const user = { collectionId: 'users', id: 'u1' }
  const app = await startRealtimeApp('http', { authenticate: () => user })
  defer(() => app.close(), 'app.close()')
  const clients = []
  for (let i = 0; i < 3; i++) clients.push(await connect(app, ['posts/*']))
  const errors = []
  app.realtime.on('requestError', (err) => errors.push(err.message))
  // Simulates a failure of the native call for the first client only.
  const apply = app.realtime._apply
  let calls = 0
  app.realtime._apply = function (...args) {
    if (calls++ === 0) throw new Error('unexpected failure')
    return apply.apply(this, args)
  }
  assert.equal(app.realtime.revokeAuth('users', 'u1'), 2)
  assert.deepEqual(errors, ['unexpected failure'])
  assert.deepEqual(app.realtime.clientsOf('users', 'u1'), [], 'no client keeps the revoked identity')
  for (const c of clients.slice(1)) assert.equal(app.realtime.client(c.id).auth, null)
  await waitFor(() => clients[0].s.ended, 5000, 'the failed client\'s stream ended')
  await sleep(50)
  assert.equal(clients[1].s.ended, false)
  assert.equal(clients[2].s.ended, false)
})

test('updateAuth with an async authorizeTopic: a set refused by a budget once the answers come ends the stream too', async (t) => {
  const defer = cleanup(t)
  let current = { collectionId: 'users', id: 'u1', role: 'staff' }
  const authenticate = (request) => (request.headers.authorization === 'guest' ? null : current)
  let release
  const gate = new Promise((resolve) => { release = resolve })
  const app = await startRealtimeApp('http', {
    // The answer for public-feed waits for the gate once the user is demoted.
    authorizeTopic: async (topic, context) => {
      if (topic === 'public-feed' && context.auth?.role === 'member') await gate
      return authorizeTopic(topic, context)
    },
    authenticate,
    maxDistinctSubscriptions: 3
  })
  defer(() => app.close(), 'app.close()')
  const errors = []
  app.realtime.on('requestError', (err) => errors.push(err.code))
  const staff = await connect(app, ['staff-feed', 'public-feed'])
  const other = await connect(app, ['news'])
  const guest = await openStream(app.port)
  const gid = await guest.connected()
  assert.equal((await post(app.port, { clientId: gid, subscriptions: ['x1'] }, { auth: 'guest' })).status, 204)
  current = { collectionId: 'users', id: 'u1', role: 'member' }
  // Both take the record at once, with only the topics already allowed (none while the answers are pending).
  assert.equal(app.realtime.updateAuth(current), 2)
  assert.deepEqual(app.realtime.client(staff.id).subscriptions, [])
  // Meanwhile the guest takes the distinct subscription staff-feed freed.
  assert.equal((await post(app.port, { clientId: gid, subscriptions: ['x1', 'x2'] }, { auth: 'guest' })).status, 204)
  release()
  await waitFor(() => errors.length === 1, 5000, 'requestError')
  assert.deepEqual(errors, ['ERR_SSE_TOO_MANY_DISTINCT_SUBSCRIPTIONS'])
  assert.deepEqual(app.realtime.clientsOf('users', 'u1'), [other.id])
  await waitFor(() => staff.s.ended, 5000, 'the refused client\'s stream ended')
  assert.deepEqual(app.realtime.client(other.id).subscriptions, ['news'])
})
