'use strict'
// examples/demo-server.js with REDIS_URL: three demo processes (PORT=0) on
// one real redis-server are one hub for /events, /publish and /poll:
//   - every stream, on each of the three, gets every event published on any
//     of them once, in one order, with one id, and each 202 body's id is that
//     event's id;
//   - /poll on the third answers the events after the first;
//   - a stream resumed with Last-Event-ID on another demo gets exactly the
//     missed events;
//   - before the first event every demo is at one Redis epoch, seq 0 (a
//     position id of then resumes on any demo);
//   - bad input is the demo's 400 as without a bus; /stats has the bus;
//     the startup log names the bus (the URL without its password, the
//     prefix, the instance id);
//   - Redis out of memory: the publishing demo goes down, answers 202 with a
//     local id and delivers at once; once Redis takes writes again its outbox
//     reaches the other demos, and its own stream does not get it twice;
//   - without REDIS_URL the demo has no bus.
// Skipped (with the reason) only where redis-server is missing.

const { test, before, after } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const { startExample } = require('../helpers/pb-example')
const { redisMissing, startRedis } = require('../helpers/redis')
const { openStream } = require('../helpers/bus-instance')
const { waitFor, within } = require('../helpers/wait')

const missing = redisMissing()
const OPTIONS = { skip: missing || false, timeout: 30000 }
const PREFIX = 'demo:{three}'
const PASSWORD = 'not-shown' // Redis's default user (nopass) takes any password

// One redis-server and three demos for the file.
const stops = []
let redis = null
let demos = []
before(async () => {
  if (missing) return
  redis = await startRedis(null)
  const url = `redis://:${PASSWORD}@127.0.0.1:${redis.port}`
  demos = await Promise.all([0, 1, 2].map(() => startExample({ after: (fn) => stops.push(fn) }, 'examples/demo-server.js',
    { REDIS_URL: url, REDIS_PREFIX: PREFIX, PUBLISH_TOKEN: '' })))
  for (const demo of demos) demo.port = Number(new URL(demo.url).port)
  await waitFor(async () => (await Promise.all(demos.map(stats))).every((s) => s.bus?.state === 'up'), 10000, 'every demo\'s bus up')
})
after(async () => {
  await Promise.all(stops.map((stop) => stop()))
  await redis?.close()
})

/** An HTTP request on a fresh connection: { status, body } (JSON, or null when empty). */
function call (demo, method, path, body) {
  return within(new Promise((resolve, reject) => {
    const req = http.request(`${demo.url}${path}`, { method, agent: false }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c) => { text += c })
      res.on('end', () => resolve({ status: res.statusCode, body: text === '' ? null : JSON.parse(text) }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  }), 10000, `${method} ${path} on ${demo.url}`)
}

const stats = async (demo) => (await call(demo, 'GET', '/stats')).body
const publish = (demo, data, topic = 'demo') => call(demo, 'POST', `/publish?topic=${encodeURIComponent(topic)}`, data)
/** The stream's events without the demo's sse-position events. */
const messages = (stream) => stream.events.filter((e) => e.event !== 'sse-position').map((e) => ({ id: e.id, data: e.data }))

test('three demos on one REDIS_URL: every stream gets every event once, in one order, with the 202s\' ids; /poll and Last-Event-ID across them', OPTIONS, async (t) => {
  const streams = await Promise.all(demos.map((demo) => openStream(demo.port, '/events?topics=demo')))
  t.after(() => { for (const s of streams) s.close() })
  assert.deepEqual(streams.map((s) => s.status), [200, 200, 200])
  await waitFor(async () => (await Promise.all(demos.map(stats))).every((s) => s.connections === 1), 5000, 'a stream on each demo')
  // Before the first event every demo is at one Redis epoch, seq 0: a position id given out now means the same on each.
  const positions = (await Promise.all(demos.map(stats))).map((s) => s.bus.position)
  assert.equal(positions[0].seq, 0)
  assert.match(positions[0].epoch, /^[A-Za-z0-9]{9}$/)
  assert.deepEqual(positions, [positions[0], positions[0], positions[0]])

  // Publishes on each of the three, the three at once.
  const K = 5
  const replies = await Promise.all(demos.map(async (demo, k) => {
    const out = []
    for (let i = 0; i < K; i++) {
      const data = `demo ${k} event ${i}`
      out.push({ data, res: await publish(demo, data) })
    }
    return out
  }))
  const published = replies.flat()
  for (const { data, res } of published) {
    assert.equal(res.status, 202, data)
    assert.equal(res.body.ok, true)
    assert.match(res.body.id, /^[A-Za-z0-9]{9}-\d+$/, `${data}: a Redis id (<epoch of 9>-<seq>)`)
  }
  const N = 3 * K
  await waitFor(() => streams.every((s) => messages(s).length >= N), 10000, `every stream to get ${N} events`)
  const order = messages(streams[0])
  assert.equal(order.length, N)
  const epoch = order[0].id.split('-')[0]
  assert.deepEqual(order.map((e) => e.id), Array.from({ length: N }, (_, i) => `${epoch}-${i + 1}`), 'dense ids in stream order')
  for (const s of streams) assert.deepEqual(messages(s), order, 'the same events, once, in the same order, with the same ids')
  const idOf = new Map(order.map((e) => [e.data, e.id]))
  for (const { data, res } of published) assert.equal(res.body.id, idOf.get(data), `the 202 body's id is ${data}'s`)
  for (let k = 0; k < 3; k++) {
    const mine = order.filter((e) => e.data.startsWith(`demo ${k} `)).map((e) => e.data)
    assert.deepEqual(mine, replies[k].map((r) => r.data), `demo ${k}'s events in its publish order`)
  }
  assert.equal(await redis.cli('XLEN', `${PREFIX}:stream`), String(N), 'the stream under REDIS_PREFIX')

  // /poll on the third: the events after the first.
  const polled = await call(demos[2], 'GET', `/poll?topics=demo&since=${order[0].id}`)
  assert.equal(polled.status, 200)
  assert.deepEqual(polled.body.events.map((e) => ({ id: e.id, data: e.data })), order.slice(1))
  assert.equal(polled.body.cursor, order.at(-1).id)
  // The position of before the first event, resumed on another demo: every event, no reset.
  const fromStart = await call(demos[1], 'GET', `/poll?topics=demo&since=${positions[0].epoch}-0`)
  assert.equal(fromStart.status, 200)
  assert.deepEqual(fromStart.body.events.map((e) => ({ id: e.id, data: e.data })), order)
  assert.equal(fromStart.body.reset, undefined)

  // A client of the first moves to the second with Last-Event-ID.
  streams[0].close()
  const lastId = messages(streams[0]).at(-1).id
  const missed = []
  for (const [demo, data] of [[demos[1], 'missed 0'], [demos[2], 'missed 1'], [demos[0], 'missed 2']]) {
    const res = await publish(demo, data)
    assert.equal(res.status, 202)
    missed.push({ id: res.body.id, data })
  }
  assert.equal((await publish(demos[0], 'not for the client', 'other')).status, 202)
  const moved = await openStream(demos[1].port, '/events?topics=demo', { 'last-event-id': lastId })
  t.after(() => moved.close())
  await waitFor(() => messages(moved).length >= 3, 10000, 'the moved client to get the missed events')
  const live = await publish(demos[2], 'live')
  await waitFor(() => messages(moved).length >= 4, 10000, 'the live event on the moved client')
  assert.deepEqual(messages(moved), [...missed, { id: live.body.id, data: 'live' }], 'exactly the missed events, then the live one')
  assert.equal(moved.events.some((e) => e.event === 'reset'), false, 'no reset')
  for (const s of streams.slice(1)) {
    await waitFor(() => messages(s).length === N + 4, 5000, 'the streams that stayed to get every event')
    assert.deepEqual(messages(s), [...order, ...missed, { id: live.body.id, data: 'live' }])
  }
})

test('the bus in the demo: the startup log, /stats; bad input is a 400', OPTIONS, async () => {
  for (const demo of demos) {
    const s = await stats(demo)
    const busLine = () => demo.output().split('\n').find((l) => l.includes('redis bus:'))
    await waitFor(busLine, 5000, () => `the startup log names the bus (output: ${demo.output()})`)
    const line = busLine()
    assert.ok(line.includes(`redis://127.0.0.1:${redis.port}`), line)
    assert.ok(line.includes(PREFIX), line)
    assert.ok(line.includes(`instance ${s.bus.instanceId}`), line)
    assert.equal(demo.output().includes(PASSWORD), false, 'the password is not printed')
    assert.equal(s.bus.state, 'up')
    assert.match(s.bus.instanceId, /^[A-Za-z0-9]{8}$/)
  }
  assert.equal(new Set((await Promise.all(demos.map(stats))).map((s) => s.bus.instanceId)).size, 3, 'three instance ids')

  // Bad input: bus.publish() rejects, the demo answers 400 as without a bus.
  const bad = await publish(demos[0], 'x', 'a\nb')
  assert.equal(bad.status, 400)
  assert.equal(bad.body.error, 'ERR_SSE_INVALID_TOPIC')
  assert.equal((await publish(demos[0], 'x', '')).status, 400)
})

test('Redis out of memory: the publishing demo goes down and delivers locally (202, a local id); back up, the others get the event, nobody twice', OPTIONS, async (t) => {
  const streams = await Promise.all(demos.map((demo) => openStream(demo.port, '/events?topics=oom')))
  t.after(() => { for (const s of streams) s.close() })
  // Redis out of memory (noeviction, the default policy) refuses the function's writes.
  await redis.cli('CONFIG', 'SET', 'maxmemory', '1')
  let res
  try {
    res = await publish(demos[1], 'while Redis is full', 'oom')
    assert.equal(res.status, 202, JSON.stringify(res.body))
    assert.match(res.body.id, /^[A-Za-z0-9]{8}-\d+$/, 'a local id (an epoch of 8): delivered here at once')
    await waitFor(() => messages(streams[1]).length === 1, 5000, 'the event on the publishing demo')
    const down = (await stats(demos[1])).bus
    assert.equal(down.state, 'down')
    assert.match(down.lastError, /Redis refused a write: OOM/)
    assert.equal(down.outbox.events, 1)
    assert.equal(down.rejected, 0, 'not the event\'s fault: nothing rejected')
  } finally {
    await redis.cli('CONFIG', 'SET', 'maxmemory', '0')
  }
  await waitFor(async () => { const b = (await stats(demos[1])).bus; return b.state === 'up' && b.outbox.events === 0 }, 15000, 'up again, the outbox flushed')
  await waitFor(() => messages(streams[0]).length === 1 && messages(streams[2]).length === 1, 10000, 'the event on the other demos')
  const [other] = messages(streams[0])
  assert.equal(other.data, 'while Redis is full')
  assert.match(other.id, /^[A-Za-z0-9]{9}-\d+$/, 'a Redis id on the others')
  assert.deepEqual(messages(streams[2]), [other])
  assert.deepEqual(messages(streams[1]).map((e) => e.data), ['while Redis is full'], 'not twice on the publisher')
})

test('without REDIS_URL the demo has no bus', { timeout: 20000 }, async (t) => {
  const demo = await startExample(t, 'examples/demo-server.js', { PUBLISH_TOKEN: '' })
  // The startup lines may come in more than one chunk after the address.
  await waitFor(() => /no Redis bus/.test(demo.output()), 5000, () => `the demo says it has no bus (output: ${demo.output()})`)
  assert.equal((await stats(demo)).bus, undefined)
  const res = await publish(demo, 'local')
  assert.equal(res.status, 202)
  assert.match(res.body.id, /^[A-Za-z0-9]{8}-1$/, 'a local id at once')
})
