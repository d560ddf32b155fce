'use strict'
// PocketBase subscription budgets (Realtime options maxOptionSubscriptionsPerClient,
// maxFilterNodesPerClient, maxCompiledBytesPerClient, maxDistinctSubscriptions,
// maxCompiledBytes, and the sums over the streams of one client address:
// maxOptionSubscriptionsPerIp, maxFilterNodesPerIp, maxCompiledBytesPerIp,
// maxSubscriptionsPerIp): a POST past one gets PocketBase's 400 with a
// `validation_budget_exceeded` item naming the limit, setSubscriptions() a
// coded SseError, and nothing changes. Also: client filters naming
// @request. reach superusers only; records and auth records with integers
// beyond 64 bits are read as doubles instead of failing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startApp } = require('../helpers/pb-app')
const { post, assertPbError } = require('../helpers/pb-http')
const { waitFor } = require('../helpers/wait')
const { Realtime } = require('../../lib/pocketbase')

const GENERIC_400 = 'Something went wrong while processing your request.'
const POSTS = { name: 'posts', id: 'pbc_1125843985', listRule: '', viewRule: '' }
const USERS = {
  tokenA: { id: 'usera0000000001', collectionId: 'pbc_1736455494', collectionName: 'users', quota: 2 ** 64 },
  tokenS: { id: 'super0000000003', collectionId: 'pbc_3142635823', collectionName: '_superusers' }
}
const authenticate = (req) => USERS[String(req.headers.authorization || '')] || null
const withOptions = (topic, query) => `${topic}?options=${encodeURIComponent(JSON.stringify({ query, headers: {} }))}`

/** A node:http Realtime app with these options; connect(localAddress) opens a stream from that address. */
async function start (t, options = {}) {
  const { realtime, port, connect } = await startApp(t, 'http', { authenticate, ...options })
  return { realtime, port, connect: (localAddress = '127.0.0.1') => connect({ localAddress }) }
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

const budgetMessage = (res) => {
  assert.equal(res.status, 400, res.body.slice(0, 300))
  const item = JSON.parse(res.body).data.subscriptions
  assert.equal(item.code, 'validation_budget_exceeded')
  return item.message
}

test('per-address budgets: the streams of one address share them, another address subscribes as before', async (t) => {
  const { realtime, port, connect } = await start(t)
  const keyed = (c, n) => Array.from({ length: n }, (_, i) => withOptions('posts/*', { n: `${c}_${i}` }))
  const post2 = (s, subscriptions) => post(port, { clientId: s.cid, subscriptions }, { localAddress: '127.0.0.2' })
  // Each stream of 127.0.0.2 takes its full per-client option budget (100).
  const mine = []
  for (let c = 0; c < 4; c++) mine.push(await connect('127.0.0.2'))
  assert.equal((await post2(mine[0], keyed(0, 100))).status, 204)
  assert.equal((await post2(mine[1], keyed(1, 100))).status, 204)
  const stats = realtime.stats()
  assert.equal(budgetMessage(await post2(mine[2], keyed(2, 100))),
    'The subscriptions exceed the maxOptionSubscriptionsPerIp budget: at most 200 subscriptions with options per client address.')
  assert.equal(budgetMessage(await post2(mine[3], keyed(3, 1))), budgetMessage(await post2(mine[2], keyed(2, 1))))
  assert.deepEqual(realtime.stats(), stats, 'refused sets change nothing')
  assert.deepEqual(realtime.client(mine[2].cid).subscriptions, [])
  assert.throws(() => realtime.setSubscriptions(mine[2].cid, keyed(2, 1)),
    { name: 'SseError', code: 'ERR_SSE_TOO_MANY_IP_OPTION_SUBSCRIPTIONS', message: /maxOptionSubscriptionsPerIp/ })

  // Another address is not affected, and a stream that shrinks its set makes room.
  const other = await connect('127.0.0.3')
  assert.equal((await post(port, { clientId: other.cid, subscriptions: keyed(9, 100) }, { localAddress: '127.0.0.3' })).status, 204)
  assert.equal((await post2(mine[0], keyed(0, 40))).status, 204)
  assert.equal((await post2(mine[2], keyed(2, 60))).status, 204)
  assert.equal(budgetMessage(await post2(mine[3], keyed(3, 1))).includes('maxOptionSubscriptionsPerIp'), true)
  // A stream that ends releases its share.
  mine[1].close()
  await waitFor(() => realtime.client(mine[1].cid) === undefined, 5000, 'the disconnect')
  assert.equal((await post2(mine[3], keyed(3, 100))).status, 204)

  // Plain keys count against maxSubscriptionsPerIp (5000): five full clients.
  const plain = (c) => Array.from({ length: 1000 }, (_, i) => `posts/c${c}k${i}`)
  const post4 = (s, subscriptions) => post(port, { clientId: s.cid, subscriptions }, { localAddress: '127.0.0.4' })
  for (let c = 0; c < 5; c++) assert.equal((await post4(await connect('127.0.0.4'), plain(c))).status, 204, `stream ${c}`)
  const sixth = await connect('127.0.0.4')
  assert.match(budgetMessage(await post4(sixth, plain(5))), /maxSubscriptionsPerIp budget: at most 5000 subscriptions per client address/)
  // The exhaustion: the hub-wide budget is far off; anyone else subscribes.
  const victim = await connect('127.0.0.5')
  assert.equal((await post(port, { clientId: victim.cid, subscriptions: ['posts/abc123'] }, { localAddress: '127.0.0.5' })).status, 204)
})

test('per-address filter and memory budgets refuse with their own codes', async (t) => {
  // A key padded with 2 KB of options holds about 4.5 KB (no filter nodes).
  const { realtime, connect } = await start(t, { maxFilterNodesPerIp: 3, maxCompiledBytesPerIp: 12 * 1024 })
  const a = await connect('127.0.0.6')
  const b = await connect('127.0.0.6')
  const f = (n) => withOptions('posts/*', { filter: `views > ${n}` })
  realtime.setSubscriptions(a.cid, [f(1), f(2)])
  assert.throws(() => realtime.setSubscriptions(b.cid, [f(3), f(4)]), { code: 'ERR_SSE_IP_FILTER_BUDGET', message: /maxFilterNodesPerIp/ })
  realtime.setSubscriptions(b.cid, [f(3)])
  realtime.setSubscriptions(a.cid, [])
  const big = (n) => withOptions('posts/*', { pad: String(n).repeat(2000) })
  realtime.setSubscriptions(a.cid, [big(1)])
  realtime.setSubscriptions(b.cid, [f(3), big(2)])
  assert.throws(() => realtime.setSubscriptions(b.cid, [f(3), big(2), big(3), big(4), big(5), big(6)]),
    { code: 'ERR_SSE_IP_MEMORY_BUDGET', message: /maxCompiledBytesPerIp/ })
  assert.deepEqual(realtime.client(b.cid).subscriptions, [f(3), big(2)])
})

test('budget options are validated like the other integer options, with documented defaults', () => {
  const { DEFAULTS } = require('../../lib/pocketbase')
  assert.equal(DEFAULTS.maxOptionSubscriptionsPerClient, 100)
  assert.equal(DEFAULTS.maxFilterNodesPerClient, 200)
  assert.equal(DEFAULTS.maxCompiledBytesPerClient, 1024 * 1024)
  assert.equal(DEFAULTS.maxDistinctSubscriptions, 1000000)
  assert.equal(DEFAULTS.maxCompiledBytes, 256 * 1024 * 1024)
  assert.equal(DEFAULTS.maxOptionSubscriptionsPerIp, 200)
  assert.equal(DEFAULTS.maxFilterNodesPerIp, 400)
  assert.equal(DEFAULTS.maxCompiledBytesPerIp, 4 * 1024 * 1024)
  assert.equal(DEFAULTS.maxSubscriptionsPerIp, 5000)
  // One address cannot fill a hub-wide budget alone.
  assert.ok(DEFAULTS.maxSubscriptionsPerIp * 100 <= DEFAULTS.maxDistinctSubscriptions)
  assert.ok(DEFAULTS.maxCompiledBytesPerIp * 64 <= DEFAULTS.maxCompiledBytes)
  for (const name of ['maxOptionSubscriptionsPerClient', 'maxFilterNodesPerClient', 'maxCompiledBytesPerClient',
    'maxDistinctSubscriptions', 'maxCompiledBytes', 'maxOptionSubscriptionsPerIp', 'maxFilterNodesPerIp',
    'maxCompiledBytesPerIp', 'maxSubscriptionsPerIp']) {
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
