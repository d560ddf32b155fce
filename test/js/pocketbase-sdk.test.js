'use strict'
// The official PocketBase JS SDK (pocketbase@0.28, `pocketbase/cjs`, with
// eventsource@4 as EventSource) against examples/pocketbase-server.js, which
// serves /api/realtime with sse-fanout/pocketbase. No part of the SDK is
// stubbed: it connects, reads its client id from PB_CONNECT, POSTs its
// subscriptions and reconnects on its own.
//  1. collection.subscribe('*') and subscribe(id) receive create/update/delete;
//     unsubscribe(id) and unsubscribe() stop them while others still receive.
//  2. { filter } and { fields } options: each subscription gets exactly its
//     records and fields, per client and per option set within one client.
//  3. Auth: users sign up and log in through the SDK; owner-only notes reach
//     their owner and nobody else, a guest gets none (REST and realtime).
//  4. A server restart on the same port: every client reconnects, resubmits
//     and receives again, without help.
//  5. 200 SDK clients all receive every event, in order.
//  6. Custom messages: realtime.publish to a topic, sendToClient to one client.
//  7. idleTimeoutMs / maxLifetimeMs end streams; the SDK comes back by itself.
// "Nothing arrived" is checked after a barrier (a custom message every client
// subscribed to) has arrived: a stream delivers in order.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { startPb, sdk, recorder, barrier, armBarrier, brief } = require('../helpers/pb-sdk')
const { waitFor, cleanup } = require('../helpers/wait')

const postIds = (rec) => rec.events.map((e) => e.record.id)

test('subscribe("*") and subscribe(id) receive create, update and delete; unsubscribe stops them', async (t) => {
  const defer = cleanup(t)
  const { url, realtime } = await startPb(defer)
  const a = sdk(defer, url, 'A')
  const b = sdk(defer, url, 'B')
  const writer = sdk(defer, url, 'writer')
  await armBarrier([a, b])

  const aAll = recorder('A posts/*')
  const bAll = recorder('B posts/*')
  await a.collection('posts').subscribe('*', aAll)
  await b.collection('posts').subscribe('*', bAll)
  assert.match(a.realtime.clientId, /^[A-Za-z0-9]{40}$/, 'the SDK read a 40-character client id from PB_CONNECT')
  assert.notEqual(a.realtime.clientId, b.realtime.clientId)

  const p1 = await writer.collection('posts').create({ title: 'one', views: 1 })
  assert.match(p1.id, /^[a-z0-9]{15}$/)
  assert.match(p1.created, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z$/)
  await aAll.wait(1)
  await bAll.wait(1)
  for (const rec of [aAll, bAll]) {
    const e = rec.events[0]
    assert.equal(e.action, 'create')
    assert.deepEqual(e.record, p1, 'the event carries the record as the API returned it')
    assert.equal(e.record.collectionName, 'posts')
    assert.match(e.record.collectionId, /^pbc_\d+$/)
  }

  // One record: the id subscription gets its updates and its delete, not other records.
  const aOne = recorder('A posts/p1')
  await a.collection('posts').subscribe(p1.id, aOne)
  const updated = await writer.collection('posts').update(p1.id, { title: 'one, edited' })
  const p2 = await writer.collection('posts').create({ title: 'two' })
  await writer.collection('posts').delete(p1.id)
  await aAll.wait(4)
  await aOne.wait(2)
  await bAll.wait(4)
  await barrier(realtime, [a, b])
  assert.deepEqual(aAll.map(), [`create:${p1.id}`, `update:${p1.id}`, `create:${p2.id}`, `delete:${p1.id}`])
  assert.deepEqual(bAll.map(), aAll.map())
  assert.deepEqual(aOne.map(), [`update:${p1.id}`, `delete:${p1.id}`], 'posts/<id> gets only that record')
  assert.equal(aOne.events[0].record.title, 'one, edited')
  assert.deepEqual(aOne.events[0].record, updated)
  assert.equal(aOne.events[1].record.id, p1.id)

  // unsubscribe(id) ends that subscription only.
  const aTwo = recorder('A posts/p2')
  await a.collection('posts').subscribe(p2.id, aTwo)
  await writer.collection('posts').update(p2.id, { title: 'two, edited' })
  await aTwo.wait(1)
  await a.collection('posts').unsubscribe(p2.id)
  await writer.collection('posts').update(p2.id, { title: 'two, edited again' })
  await aAll.wait(6)
  await barrier(realtime, [a, b])
  assert.deepEqual(aTwo.map(), [`update:${p2.id}`], 'nothing after unsubscribe(id)')
  assert.deepEqual(aAll.map().slice(4), [`update:${p2.id}`, `update:${p2.id}`], 'posts/* still receives')

  // unsubscribe('*'): B (still subscribed) gets the next event, A does not.
  await a.collection('posts').unsubscribe('*')
  assert.ok(a.realtime.isConnected, "A keeps its stream (it still has 'barrier')")
  assert.deepEqual([...realtime.client(a.realtime.clientId).subscriptions].sort(), ['barrier', `posts/${p1.id}`].sort())
  const p3 = await writer.collection('posts').create({ title: 'three' })
  await bAll.wait(7)
  await barrier(realtime, [a, b])
  assert.equal(bAll.events[6].record.id, p3.id)
  assert.equal(aAll.events.length, 6, `A received nothing after unsubscribe: ${JSON.stringify(aAll.map())}`)
})

test('{ filter } and { fields } options: each subscription receives exactly its records and fields', async (t) => {
  const defer = cleanup(t)
  const { url, realtime } = await startPb(defer)
  const f1 = sdk(defer, url, 'F1')
  const f2 = sdk(defer, url, 'F2')
  const plain = sdk(defer, url, 'plain')
  const both = sdk(defer, url, 'both')
  const writer = sdk(defer, url, 'writer')
  await armBarrier([f1, f2, plain, both])

  const popular = recorder('F1 views > 10')
  const activeTitles = recorder('F2 status = "active", fields id,title')
  const all = recorder('plain posts/*')
  const low = recorder('both views <= 10')
  const high = recorder('both views > 10 (fields title,views)')
  await f1.collection('posts').subscribe('*', popular, { filter: 'views > 10' })
  await f2.collection('posts').subscribe('*', activeTitles, { filter: 'status = "active"', fields: 'id,title' })
  await plain.collection('posts').subscribe('*', all)
  // One client, the same topic with two option sets: two subscriptions, each its own frames.
  await both.collection('posts').subscribe('*', low, { filter: 'views <= 10' })
  await both.collection('posts').subscribe('*', high, { filter: 'views > 10', fields: 'title,views' })
  assert.equal([...realtime.client(both.realtime.clientId).subscriptions].filter((s) => s.startsWith('posts/*?options=')).length, 2)

  const a = await writer.collection('posts').create({ title: 'a', views: 5, status: 'active' })
  const b = await writer.collection('posts').create({ title: 'b', views: 20, status: 'draft' })
  const c = await writer.collection('posts').create({ title: 'c', views: 50, status: 'active' })
  const d = await writer.collection('posts').create({ title: 'd', views: 10, status: 'archived' })
  await all.wait(4)
  await barrier(realtime, [f1, f2, plain, both])

  assert.deepEqual(postIds(all), [a.id, b.id, c.id, d.id])
  assert.deepEqual(all.events.map((e) => e.record), [a, b, c, d])
  assert.deepEqual(postIds(popular), [b.id, c.id])
  assert.deepEqual(popular.events.map((e) => e.record), [b, c], 'no fields option: whole records')
  assert.deepEqual(activeTitles.events.map((e) => e.action), ['create', 'create'])
  assert.deepEqual(activeTitles.events.map((e) => e.record), [{ id: a.id, title: 'a' }, { id: c.id, title: 'c' }],
    'only the active posts, only id and title')
  assert.deepEqual(postIds(low), [a.id, d.id])
  assert.deepEqual(high.events.map((e) => e.record), [{ title: 'b', views: 20 }, { title: 'c', views: 50 }])

  // An update moves a record into (and out of) a filtered subscription.
  await writer.collection('posts').update(a.id, { views: 11 })
  await all.wait(5)
  await barrier(realtime, [f1, f2, plain, both])
  assert.deepEqual(popular.map().slice(2), [`update:${a.id}`], 'now popular')
  assert.equal(popular.events[2].record.views, 11)
  assert.equal(low.events.length, 2, 'no longer in views <= 10')
  assert.deepEqual(high.events.slice(2).map((e) => e.record), [{ title: 'a', views: 11 }])
  assert.deepEqual(activeTitles.events.slice(2).map((e) => e.record), [{ id: a.id, title: 'a' }])
})

test('users sign up and log in through the SDK; owner-only notes reach their owner only, guests get none', async (t) => {
  const defer = cleanup(t)
  const { url, realtime, server } = await startPb(defer)
  const ua = sdk(defer, url, 'user A')
  const ub = sdk(defer, url, 'user B')
  const guest = sdk(defer, url, 'guest')

  // Sign-up validation, PocketBase-shaped.
  await assert.rejects(ua.collection('users').create({ email: 'a@example.com', password: 'secret-a-123', passwordConfirm: 'other' }),
    (err) => {
      assert.equal(err.status, 400)
      assert.equal(err.response.message, 'Failed to create record.')
      assert.deepEqual(err.response.data, { passwordConfirm: { code: 'validation_values_mismatch', message: "Values don't match." } })
      return true
    })
  await assert.rejects(ua.collection('users').create({ email: 'a@example.com' }), (err) => {
    assert.equal(err.status, 400)
    assert.deepEqual(Object.keys(err.response.data).sort(), ['password', 'passwordConfirm'])
    assert.deepEqual(err.response.data.password, { code: 'validation_required', message: 'Cannot be blank.' })
    return true
  })

  const users = {}
  for (const [pb, email, password] of [[ua, 'a@example.com', 'secret-a-123'], [ub, 'b@example.com', 'secret-b-456']]) {
    const created = await pb.collection('users').create({ email, password, passwordConfirm: password, name: email[0] })
    assert.equal(created.email, email)
    assert.equal(created.password, undefined, 'the password is never returned')
    assert.ok(!JSON.stringify(created).includes(password))
    const auth = await pb.collection('users').authWithPassword(email, password)
    assert.equal(auth.record.id, created.id)
    assert.ok(pb.authStore.isValid, 'the token is a JWT the SDK accepts (exp in the future)')
    assert.equal(pb.authStore.record.id, created.id)
    users[email[0]] = created
  }
  await assert.rejects(guest.collection('users').authWithPassword('a@example.com', 'wrong'), (err) => {
    assert.equal(err.status, 400)
    assert.deepEqual(err.response, { data: {}, message: 'Failed to authenticate.', status: 400 })
    return true
  })

  await armBarrier([ua, ub, guest])
  const aNotes = recorder('A notes/*')
  const bNotes = recorder('B notes/*')
  const guestNotes = recorder('guest notes/*')
  const aUsers = recorder('A users/*')
  await ua.collection('notes').subscribe('*', aNotes)
  await ub.collection('notes').subscribe('*', bNotes)
  await guest.collection('notes').subscribe('*', guestNotes)
  await ua.collection('users').subscribe('*', aUsers)
  assert.equal(realtime.client(ua.realtime.clientId).auth.id, users.a.id, 'the realtime client is bound to user A')
  assert.ok(realtime.client(guest.realtime.clientId).auth == null, 'the guest is bound to nobody')

  const noteA = await ua.collection('notes').create({ owner: users.a.id, text: 'from A' })
  const noteB = await ub.collection('notes').create({ owner: users.b.id, text: 'from B' })
  // B subscribes to A's note by id: the view rule hides it.
  const bOnA = recorder('B notes/<A note>')
  await ub.collection('notes').subscribe(noteA.id, bOnA)
  await ua.collection('notes').update(noteA.id, { text: 'from A, edited' })
  await ub.collection('notes').update(noteB.id, { text: 'from B, edited' })
  await ub.collection('users').update(users.b.id, { name: 'Bee' }) // not A's record: A hears nothing
  await ua.collection('users').update(users.a.id, { name: 'Ay' })
  await ua.collection('notes').delete(noteA.id)
  await aNotes.wait(3)
  await bNotes.wait(2)
  await aUsers.wait(1)
  await barrier(realtime, [ua, ub, guest])

  assert.deepEqual(aNotes.map(), [`create:${noteA.id}`, `update:${noteA.id}`, `delete:${noteA.id}`])
  assert.deepEqual(aNotes.events.map((e) => e.record.owner), [users.a.id, users.a.id, users.a.id])
  assert.deepEqual(bNotes.map(), [`create:${noteB.id}`, `update:${noteB.id}`])
  assert.deepEqual(guestNotes.events, [], 'a guest gets no notes')
  assert.deepEqual(bOnA.events, [], "B gets nothing of A's note, even by id")
  assert.deepEqual(aUsers.map(), [`update:${users.a.id}`], 'A hears of its own user record only')
  assert.equal(aUsers.events[0].record.name, 'Ay')
  assert.ok(!('password' in aUsers.events[0].record))

  // The records API applies the same rules.
  assert.deepEqual((await ub.collection('notes').getList(1, 50)).items.map((r) => r.id), [noteB.id])
  assert.deepEqual((await guest.collection('notes').getList(1, 50)).items, [])
  await assert.rejects(ua.collection('notes').getOne(noteB.id), (err) => {
    assert.deepEqual(err.response, { data: {}, message: "The requested resource wasn't found.", status: 404 })
    return true
  })
  await assert.rejects(guest.collection('notes').create({ owner: users.a.id, text: 'forged' }), (err) => err.status === 400)
  assert.equal([...server.collections.get('notes').records.values()].length, 1)
})

test('server restart on the same port: SDK clients reconnect, resubmit and receive again by themselves', async (t) => {
  const defer = cleanup(t)
  const first = await startPb(defer)
  const url = first.url
  const n = 5
  const clients = []
  const recs = []
  for (let i = 0; i < n; i++) {
    const pb = sdk(defer, url, `C${i}`)
    const rec = recorder(`C${i} posts/*`)
    // Client 0 also carries an options subscription: it must come back as well.
    await pb.collection('posts').subscribe('*', rec, i === 0 ? { filter: 'views > 0' } : undefined)
    clients.push(pb)
    recs.push(rec)
  }
  const writer = sdk(defer, url, 'writer')
  await writer.collection('posts').create({ title: 'before', views: 1 })
  for (const rec of recs) await rec.wait(1)
  const oldIds = clients.map((pb) => pb.realtime.clientId)

  const disconnects = []
  for (const pb of clients) pb.realtime.onDisconnect = (subs) => disconnects.push(subs)
  await first.server.close()
  await waitFor(() => clients.every((pb) => !pb.realtime.isConnected), 10000, 'every SDK client noticed the server went away')
  assert.ok(disconnects.length >= n)
  assert.ok(disconnects.every((subs) => subs.length > 0), 'the SDK reports active subscriptions: it will reconnect')

  const second = await startPb(defer, {}, first.port)
  assert.equal(second.port, first.port)
  await waitFor(() => clients.every((pb) => {
    const c = pb.realtime.isConnected && second.realtime.client(pb.realtime.clientId)
    return c && [...c.subscriptions].some((s) => s.startsWith('posts/*'))
  }), 15000, 'every SDK client reconnected and resubmitted its subscriptions')
  clients.forEach((pb, i) => assert.notEqual(pb.realtime.clientId, oldIds[i], 'a new client id after reconnecting'))
  assert.ok([...second.realtime.client(clients[0].realtime.clientId).subscriptions][0].startsWith('posts/*?options='))

  const after = await writer.collection('posts').create({ title: 'after', views: 2 })
  for (const rec of recs) await rec.wait(2, 10000)
  for (const rec of recs) {
    assert.equal(rec.events.length, 2)
    assert.deepEqual(rec.events[1], { action: 'create', record: after })
  }
})

test('200 SDK clients all receive every event, in order', async (t) => {
  const defer = cleanup(t, 30000)
  const { url, realtime } = await startPb(defer)
  const N = 200
  const clients = []
  const recs = []
  for (let i = 0; i < N; i++) {
    clients.push(sdk(defer, url, `C${i}`))
    recs.push(recorder(`C${i}`))
  }
  await Promise.all(clients.map((pb, i) => pb.collection('posts').subscribe('*', recs[i])))
  assert.equal(realtime.hub.stats().connections, N)
  assert.equal(new Set(clients.map((pb) => pb.realtime.clientId)).size, N, 'distinct client ids')

  const writer = sdk(defer, url, 'writer')
  const created = []
  for (let k = 0; k < 10; k++) created.push(await writer.collection('posts').create({ title: `post ${k}`, k }))
  const updated = await writer.collection('posts').update(created[3].id, { title: 'changed' })
  await writer.collection('posts').delete(created[5].id)
  const expected = [...created.map((r) => `create:${r.id}`), `update:${updated.id}`, `delete:${created[5].id}`]
  await waitFor(() => recs.every((rec) => rec.events.length >= expected.length), 30000,
    () => `every client has ${expected.length} events (short: ${recs.filter((r) => r.events.length < expected.length).length})`)
  for (const rec of recs) assert.deepEqual(rec.map(brief), expected)
  assert.deepEqual(recs[N - 1].events[0].record, created[0])
})

test('custom messages: realtime.publish to a topic and sendToClient to exactly one client', async (t) => {
  const defer = cleanup(t)
  const { url, realtime } = await startPb(defer)
  const connects = []
  const disconnects = []
  realtime.on('connect', (e) => connects.push(e.clientId))
  realtime.on('disconnect', (e) => disconnects.push(e))

  const c1 = sdk(defer, url, 'C1')
  const c2 = sdk(defer, url, 'C2')
  const c3 = sdk(defer, url, 'C3')
  await armBarrier([c1, c2, c3])
  const r1 = recorder('C1 custom-topic')
  const r2 = recorder('C2 custom-topic')
  const r3 = recorder('C3 other-topic')
  await c1.realtime.subscribe('custom-topic', r1)
  await c2.realtime.subscribe('custom-topic', r2)
  await c3.realtime.subscribe('other-topic', r3)
  for (const pb of [c1, c2, c3]) assert.ok(connects.includes(pb.realtime.clientId), "'connect' names the SDK's client id")
  assert.deepEqual([...realtime.client(c1.realtime.clientId).subscriptions].sort(), ['barrier', 'custom-topic'])

  realtime.publish('custom-topic', { hello: 'world', n: 1 })
  await r1.wait(1)
  await r2.wait(1)
  await barrier(realtime, [c1, c2, c3])
  assert.deepEqual(r1.events, [{ hello: 'world', n: 1 }])
  assert.deepEqual(r2.events, [{ hello: 'world', n: 1 }])
  assert.deepEqual(r3.events, [], 'other topics get nothing')

  assert.equal(realtime.sendToClient(c1.realtime.clientId, { only: 'C1' }, { event: 'custom-topic' }), true)
  await r1.wait(2)
  await barrier(realtime, [c1, c2, c3])
  assert.deepEqual(r1.events[1], { only: 'C1' })
  assert.equal(r2.events.length, 1, 'sendToClient reached only its client')
  assert.equal(realtime.sendToClient('x'.repeat(40), { nobody: true }, { event: 'custom-topic' }), false)

  // A client that goes away is reported with its id, and sendToClient then says false.
  const gone = c3.realtime.clientId
  await c3.realtime.unsubscribe()
  await waitFor(() => disconnects.some((e) => e.clientId === gone), 5000, "'disconnect' for C3")
  await waitFor(() => realtime.client(gone) === undefined, 5000, 'realtime.client(C3) is gone')
  assert.equal(realtime.sendToClient(gone, { late: true }, { event: 'other-topic' }), false)
})

test('idleTimeoutMs and maxLifetimeMs end streams; the SDK reconnects by itself and keeps receiving', async (t) => {
  const defer = cleanup(t)
  // PocketBase: 5 min without a delivered message, 30 min in any case. Shortened here.
  const { url, realtime } = await startPb(defer, { realtime: { idleTimeoutMs: 400, maxLifetimeMs: 1500 } })
  const disconnects = []
  realtime.on('disconnect', (e) => disconnects.push(e))
  const idle = sdk(defer, url, 'idle')
  const busy = sdk(defer, url, 'busy')
  const idleRec = recorder('idle posts/*')
  const busyTicks = recorder('busy tick')
  await idle.collection('posts').subscribe('*', idleRec)
  await busy.realtime.subscribe('tick', busyTicks)
  const firstIdle = idle.realtime.clientId
  const firstBusy = busy.realtime.clientId

  // A message every 100 ms keeps `busy` from idling out, not past its lifetime.
  const ticker = setInterval(() => realtime.publish('tick', { at: Date.now() }), 100)
  defer(() => clearInterval(ticker), 'stop ticker')
  await waitFor(() => disconnects.some((e) => e.clientId === firstIdle), 3000, 'the idle stream is ended')
  assert.ok(!disconnects.some((e) => e.clientId === firstBusy), 'the busy stream is not idle')
  await waitFor(() => idle.realtime.isConnected && idle.realtime.clientId !== firstIdle &&
    realtime.client(idle.realtime.clientId)?.subscriptions.includes('posts/*'), 5000, 'the idle client reconnected and resubmitted')
  await waitFor(() => disconnects.some((e) => e.clientId === firstBusy), 5000, 'the busy stream ends at maxLifetimeMs')
  await waitFor(() => busy.realtime.isConnected && busy.realtime.clientId !== firstBusy &&
    realtime.client(busy.realtime.clientId)?.subscriptions.includes('tick'), 5000, 'the busy client reconnected and resubmitted')
  clearInterval(ticker)

  // The idle client keeps cycling (idle out, reconnect): an event sent while it is between
  // two streams is lost, as with PocketBase (no replay). One of a few tries must arrive.
  const writer = sdk(defer, url, 'writer')
  let received = null
  for (let attempt = 0; attempt < 5 && !received; attempt++) {
    await waitFor(() => idle.realtime.isConnected, 5000, 'idle client connected')
    const post = await writer.collection('posts').create({ title: `after reconnect ${attempt}` })
    received = await waitFor(() => idleRec.events.find((e) => e.record.id === post.id), 1000, 'event').catch(() => null)
  }
  assert.ok(received, 'the reconnected client receives record events')
  assert.equal(received.action, 'create')
})
