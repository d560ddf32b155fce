'use strict'
// PocketBase subscription budgets (Realtime options maxOptionSubscriptionsPerClient,
// maxFilterNodesPerClient, maxCompiledBytesPerClient, maxDistinctSubscriptions,
// maxCompiledBytes): a POST past one gets PocketBase's 400 with a
// `validation_budget_exceeded` item naming the limit, setSubscriptions() a
// coded SseError, and nothing changes. Also: client filters naming
// @request. reach superusers only; records and auth records with integers
// beyond 64 bits are read as doubles instead of failing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startRealtimeApp, openStream, post, assertPbError } = require('../helpers/pb-http')
const { waitFor, cleanup } = require('../helpers/wait')
const { Realtime } = require('../../lib/pocketbase')

const GENERIC_400 = 'Something went wrong while processing your request.'
const POSTS = { name: 'posts', id: 'pbc_1125843985', listRule: '', viewRule: '' }
const USERS = {
  tokenA: { id: 'usera0000000001', collectionId: 'pbc_1736455494', collectionName: 'users', quota: 2 ** 64 },
  tokenS: { id: 'super0000000003', collectionId: 'pbc_3142635823', collectionName: '_superusers' }
}
const authenticate = (req) => USERS[String(req.headers.authorization || '')] || null
const withOptions = (topic, query) => `${topic}?options=${encodeURIComponent(JSON.stringify({ query, headers: {} }))}`

async function start (t, options = {}) {
  const defer = cleanup(t)
  const app = await startRealtimeApp('http', { authenticate, ...options })
  defer(() => app.close(), 'app close')
  const streams = []
  defer(() => { for (const s of streams) s.close() }, 'close streams')
  async function connect () {
    const s = await openStream(app.port)
    streams.push(s)
    await s.connected()
    return s
  }
  return { realtime: app.realtime, port: app.port, connect }
}

test('a POST past a subscription budget gets 400 validation_budget_exceeded and changes nothing', async (t) => {
  const { realtime, port, connect } = await start(t, { maxOptionSubscriptionsPerClient: 2, maxFilterNodesPerClient: 4 })
  const s = await connect()
  const f = (n) => withOptions('posts/*', { filter: `views > ${n}` })
  const first = [f(1), f(2), 'posts/*', 'posts/r1']
  assert.equal((await post(port, { clientId: s.cid, subscriptions: first })).status, 204)
  const stats = realtime.stats()
  assert.equal(stats.keys, 4)
  assert.ok(stats.compiledBytes > 0, 'pbStats reports compiled bytes')

  assertPbError(await post(port, { clientId: s.cid, subscriptions: [f(1), f(2), f(3)] }), 400, GENERIC_400, {
    subscriptions: {
      code: 'validation_budget_exceeded',
      message: 'The subscriptions exceed the maxOptionSubscriptionsPerClient budget: at most 2 subscriptions with options per client.'
    }
  }, 'three subscriptions with options')
  const deep = withOptions('posts/*', { filter: 'views > 1 && views < 9 && title != ""' })
  assertPbError(await post(port, { clientId: s.cid, subscriptions: [deep, f(1)] }), 400, GENERIC_400, {
    subscriptions: {
      code: 'validation_budget_exceeded',
      message: 'The subscriptions exceed the maxFilterNodesPerClient budget: at most 4 filter nodes per client.'
    }
  }, 'five filter nodes')
  assert.deepEqual(realtime.client(s.cid).subscriptions.sort(), first.slice().sort(), 'nothing changed')
  assert.deepEqual(realtime.stats(), stats)

  assert.throws(() => realtime.setSubscriptions(s.cid, [f(1), f(2), f(3)]),
    { name: 'SseError', code: 'ERR_SSE_TOO_MANY_OPTION_SUBSCRIPTIONS', message: /maxOptionSubscriptionsPerClient/ })
  assert.throws(() => realtime.setSubscriptions(s.cid, [deep, f(1)]), { code: 'ERR_SSE_CLIENT_FILTER_BUDGET' })
  realtime.setSubscriptions(s.cid, [])
  assert.equal(realtime.stats().compiledBytes, 0, 'the accounting returns to zero')
})

test('hub-wide budgets: distinct subscriptions and compiled bytes', async (t) => {
  const { realtime, port, connect } = await start(t, { maxDistinctSubscriptions: 3 })
  const a = await connect()
  const b = await connect()
  assert.equal((await post(port, { clientId: a.cid, subscriptions: ['posts/1', 'posts/2', 'posts/3'] })).status, 204)
  const res = await post(port, { clientId: b.cid, subscriptions: ['posts/4'] })
  assert.equal(res.status, 400)
  assert.equal(JSON.parse(res.body).data.subscriptions.code, 'validation_budget_exceeded')
  assert.match(JSON.parse(res.body).data.subscriptions.message, /maxDistinctSubscriptions budget: at most 3 /)
  assert.equal((await post(port, { clientId: b.cid, subscriptions: ['posts/1'] })).status, 204, 'a shared key is no new key')
  assert.throws(() => realtime.setSubscriptions(b.cid, ['posts/5']), { code: 'ERR_SSE_TOO_MANY_DISTINCT_SUBSCRIPTIONS' })
})

test('budget options are validated like the other integer options, with documented defaults', () => {
  const { DEFAULTS } = require('../../lib/pocketbase')
  assert.equal(DEFAULTS.maxOptionSubscriptionsPerClient, 100)
  assert.equal(DEFAULTS.maxFilterNodesPerClient, 200)
  assert.equal(DEFAULTS.maxCompiledBytesPerClient, 1024 * 1024)
  assert.equal(DEFAULTS.maxDistinctSubscriptions, 100000)
  assert.equal(DEFAULTS.maxCompiledBytes, 256 * 1024 * 1024)
  for (const name of ['maxOptionSubscriptionsPerClient', 'maxFilterNodesPerClient', 'maxCompiledBytesPerClient',
    'maxDistinctSubscriptions', 'maxCompiledBytes']) {
    assert.throws(() => new Realtime({ [name]: -1 }), { code: 'ERR_SSE_INVALID_ARGUMENT', message: new RegExp(`options\\.${name}`) })
    assert.throws(() => new Realtime({ [name]: 1.5 }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  }
})

test('client filters naming @request. reach superusers only; integers beyond 64 bits read as doubles', async (t) => {
  const { realtime, port, connect } = await start(t)
  const user = await connect()
  const root = await connect()
  const probe = withOptions('posts/*', { filter: '@request.auth.id != ""' })
  const big = withOptions('posts/*', { filter: 'n > 9223372036854775807 && n = 18446744073709551616' })
  // The auth record holds 2 ** 64 (JSON.stringify writes 18446744073709551616): this POST answered 500.
  assert.equal((await post(port, { clientId: user.cid, subscriptions: [probe, big] }, { auth: 'tokenA' })).status, 204)
  assert.equal((await post(port, { clientId: root.cid, subscriptions: [probe] }, { auth: 'tokenS' })).status, 204)
  realtime.broadcastRecord(POSTS, 'create', { id: 'r1', n: 2 ** 64 })
  await waitFor(() => root.events.some((e) => e.event === probe), 5000, 'the superuser frame')
  await waitFor(() => user.events.some((e) => e.event === big), 5000, 'the big-number frame')
  assert.equal(JSON.parse(user.events.find((e) => e.event === big).data).record.n, 2 ** 64)
  realtime.sendToClient(user.cid, {}, { event: 'barrier' })
  await waitFor(() => user.events.some((e) => e.event === 'barrier'), 5000, 'barrier')
  assert.equal(user.events.filter((e) => e.event === probe).length, 0, 'a user cannot filter by @request.')
})
