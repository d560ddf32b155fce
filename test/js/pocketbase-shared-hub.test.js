'use strict'
// Two Realtimes on one Hub (options.hub): each has its own native
// subscription index (NativeRealtime), whose internal topics live in a topic
// space of their own, so neither delivers the other's records, custom
// messages or budgets. Over real sockets, on the node:http app, with both
// transports.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { Hub } = require('../..')
const { post } = require('../helpers/pb-http')
const { startApp, received } = require('../helpers/pb-app')

for (const transport of ['auto', 'js']) {
  test(`${transport} transport: two Realtimes sharing a hub deliver only their own records and messages`, async (t) => {
    const hub = new Hub({ threads: 2, transport })
    t.after(() => hub.close())
    const a = await startApp(t, 'http', { hub })
    const b = await startApp(t, 'http', { hub })
    assert.equal(a.realtime.hub, b.realtime.hub)

    // The same subscriptions on both: each index numbers its keys from 1.
    const subs = ['posts/*', 'posts/*?options={"query":{"filter":"n > 1"}}', 'news']
    const sa = await a.connect()
    const sb = await b.connect()
    assert.equal((await post(a.port, { clientId: sa.cid, subscriptions: subs })).status, 204)
    assert.equal((await post(b.port, { clientId: sb.cid, subscriptions: subs })).status, 204)

    const posts = { name: 'posts', id: 'pbc_posts', listRule: '', viewRule: '' }
    a.realtime.broadcastRecord(posts, 'create', { id: 'from-a', n: 2 })
    b.realtime.broadcastRecord(posts, 'create', { id: 'from-b', n: 0 })
    a.realtime.publish('news', 'a-news')
    b.realtime.publish('news', 'b-news')
    await a.barrier(sa)
    await b.barrier(sb)

    const ids = (s) => received(s).map(([event, data]) => event === 'news' ? `news:${data}` : `${event}:${JSON.parse(data).record.id}`)
    assert.deepEqual(ids(sa), [
      'posts/*:from-a',
      'posts/*?options={"query":{"filter":"n > 1"}}:from-a',
      'news:a-news'
    ])
    assert.deepEqual(ids(sb), ['posts/*:from-b', 'news:b-news'])

    // Each index counts its own clients and keys.
    assert.equal(a.realtime.stats().clients, 1)
    assert.equal(b.realtime.stats().clients, 1)
    assert.equal(a.realtime.stats().keys, 3)
    assert.equal(b.realtime.stats().keys, 3)

    // One Realtime closing leaves the other delivering.
    await a.realtime.close()
    b.realtime.broadcastRecord(posts, 'update', { id: 'after', n: 5 })
    await b.barrier(sb)
    assert.deepEqual(ids(sb).slice(2), ['posts/*:after', 'posts/*?options={"query":{"filter":"n > 1"}}:after'])
  })
}
