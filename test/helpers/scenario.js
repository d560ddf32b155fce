'use strict'
// The fan-out scenario shared by hub-publish.test.js (native transport, 1000
// clients), express.test.js, fastify.test.js and hub-js-transport.test.js (JS
// transport: https and transport 'js').
//
// Clients fall into groups with different subscriptions (exact topics, "/*"
// patterns, overlapping ones, none) and users. The server publishes an
// interleaved sequence of events: topic publishes (matched and unmatched),
// broadcasts, user-restricted publishes, sends to one connection, runtime
// subscribe/unsubscribe; a model computes, for every client, exactly the
// events it must receive, in order. The client process's parsed events must
// equal the model's: every matching event once, in publish order, nothing else.

const assert = require('node:assert/strict')
const { ssePath } = require('./server')

const GROUPS = [
  ['a'],
  ['b'],
  ['a', 'room/*'],
  ['room/1', 'room/*'], // both match room/1: still delivered once
  ['room/2/*', 'b'],
  [] // broadcasts and sends only
]

function specFor (tag) {
  return {
    tag,
    topics: GROUPS[tag % GROUPS.length].slice(),
    user: tag % 7 === 0 ? undefined : `u${tag % 7}`
  }
}

function matches (topics, topic) {
  return topics.some((t) => t === topic ||
    (t.endsWith('/*') && topic.length > t.length - 1 && topic.startsWith(t.slice(0, -1))))
}

/** The request paths for clients with tags first..first+n-1. */
function pathsFor (first, n) {
  const paths = []
  for (let tag = first; tag < first + n; tag++) paths.push(ssePath(specFor(tag)))
  return paths
}

/**
 * The steps: each does one hub call and says which clients it reaches and
 * with what event. `direct` picks the tags that get send() and subscription
 * changes (they must exist).
 */
function buildSteps (n) {
  const steps = []
  let k = 0
  const publish = (topic, data, options, expected) => {
    const seq = k++
    steps.push({
      call: (hub) => hub.publish(topic, typeof data === 'function' ? data(seq) : data, options),
      reaches: (spec) => matches(spec.topics, topic) &&
        (!options || !options.users || options.users.includes(spec.user)),
      event: { event: (options && options.event) || 'message', data: expected(seq), id: options && options.id }
    })
  }
  const broadcast = (data, options, expected) => {
    const seq = k++
    steps.push({
      call: (hub) => hub.broadcast(typeof data === 'function' ? data(seq) : data, options),
      reaches: (spec) => !options || !options.users || options.users.includes(spec.user),
      event: { event: (options && options.event) || 'message', data: expected(seq), id: options && options.id }
    })
  }
  const send = (tag, data, options) => {
    k++
    steps.push({
      call: (hub, server) => hub.send(server.conn(tag).id, data, options),
      reaches: (spec) => spec.tag === tag,
      event: { event: (options && options.event) || 'message', data, id: options && options.id }
    })
  }
  const change = (tag, op, topics) => {
    steps.push({
      call: (hub, server) => hub[op](server.conn(tag).id, topics),
      change: (spec) => {
        if (spec.tag !== tag) return
        if (op === 'subscribe') {
          for (const t of topics) if (!spec.topics.includes(t)) spec.topics.push(t)
        } else {
          spec.topics = spec.topics.filter((t) => !topics.includes(t))
        }
      }
    })
  }

  const rounds = 4
  for (let r = 0; r < rounds; r++) {
    publish('a', (s) => ({ n: s, topic: 'a', nested: { list: [1, 'two', null], ok: true } }), undefined,
      (s) => JSON.stringify({ n: s, topic: 'a', nested: { list: [1, 'two', null], ok: true } }))
    publish('b', (s) => `b-${s}\nsecond line\r\nthird\rfourth`, { event: 'multi', id: `b-${r}` },
      (s) => `b-${s}\nsecond line\nthird\nfourth`)
    publish('room/1', (s) => Buffer.from(`room1 ${s} héllo 🌍`), { event: 'room' }, (s) => `room1 ${s} héllo 🌍`)
    publish('room/2/x', (s) => `r2x-${s}`, { id: `r2x-${r}` }, (s) => `r2x-${s}`)
    publish('nobody/listens', 'nobody', undefined, () => 'nobody')
    publish('room', 'bare room: no pattern matches it', undefined, () => 'bare room: no pattern matches it')
    broadcast((s) => `bc-${s}`, { event: 'bc' }, (s) => `bc-${s}`)
    publish('a', (s) => `a-for-u3-${s}`, { users: ['u3'] }, (s) => `a-for-u3-${s}`)
    broadcast((s) => `bc-for-u2-${s}`, { event: 'bcu', users: ['u2', 'ghost'] }, (s) => `bc-for-u2-${s}`)
    publish('a', 'for a ghost', { users: ['ghost'] }, () => 'for a ghost')
    send((r * 7 + 5) % n, `direct-${r}`, { event: 'direct', id: `d-${r}` })
    publish('room/2/x/deep', (s) => ` lead space ${s}`, undefined, (s) => ` lead space ${s}`)
    if (r === 0) {
      publish('b', '', { event: 'empty' }, () => '')
      publish('a', 'trailing\n', undefined, () => 'trailing\n')
      publish('room/1', 42, undefined, () => '42')
      publish('room/1', null, undefined, () => 'null')
      publish('room/1', ['x', { y: 'z\nw' }], undefined, () => JSON.stringify(['x', { y: 'z\nw' }]))
    }
    if (r === 1) {
      // Runtime subscription changes, ordered with the publishes around them.
      change(5 % n, 'subscribe', ['a', 'late/*'])
      change(0, 'unsubscribe', ['a'])
      change(1 % n, 'subscribe', ['room/2/x'])
      publish('late/1', (s) => `late-${s}`, undefined, (s) => `late-${s}`)
    }
  }
  broadcast('END', { event: 'end', id: 'end' }, () => 'END')
  return steps
}

/** The events each client must receive, by tag. */
function expectedEvents (n, steps) {
  const out = []
  for (let tag = 0; tag < n; tag++) {
    const spec = specFor(tag)
    let lastEventId = ''
    const events = []
    for (const step of steps) {
      if (step.change) {
        step.change(spec)
        continue
      }
      if (!step.reaches(spec)) continue
      if (step.event.id !== undefined) lastEventId = step.event.id
      events.push({ event: step.event.event, data: step.event.data, lastEventId })
    }
    out.push({ spec, events })
  }
  return out
}

/**
 * Runs the scenario against n clients with tags 0..n-1 that are connected
 * (client index === tag) and accepted by server.
 */
async function runScenario ({ hub, server, clients, n, transport }) {
  // Every client is accepted, with the right transport and subscriptions.
  assert.equal(server.errors.length, 0, `accept() failed: ${server.errors.map((e) => e.error.message).join('; ')}`)
  assert.equal(server.conns.size, n)
  assert.equal(hub.stats().connections, n)
  const ids = new Set()
  for (let tag = 0; tag < n; tag++) {
    const conn = server.conn(tag)
    const spec = specFor(tag)
    assert.equal(conn.transport, transport, `tag ${tag} transport`)
    assert.equal(conn.user, spec.user)
    assert.deepEqual(hub.subscriptions(conn.id), [...new Set(spec.topics)].sort(), `tag ${tag} subscriptions`)
    assert.equal(hub.has(conn.id), true)
    ids.add(conn.id)
  }
  assert.equal(ids.size, n, 'connection ids are unique')

  const steps = buildSteps(n)
  for (const step of steps) step.call(hub, server)
  const expected = expectedEvents(n, steps)

  // Wait until every client has the END broadcast, the last event.
  await clients.waitCounts(expected.map((e) => e.spec.tag), expected.map((e) => e.events.length), 30000)
  const report = await clients.report({ events: true, headers: false })
  let bad = 0
  let firstBad = null
  for (const { spec, events } of expected) {
    const got = report[spec.tag]
    try {
      assert.equal(got.framingError, null)
      assert.deepEqual(got.events, events)
    } catch (err) {
      bad++
      firstBad ??= `client ${spec.tag} (${JSON.stringify(spec)}): ${err.message}`
    }
  }
  assert.equal(bad, 0, `${bad} of ${n} clients got the wrong events; first: ${firstBad}`)

  // Sanity of the model itself: the scenario really tells groups apart.
  const lengths = new Set(expected.map((e) => e.events.length))
  assert.ok(lengths.size >= 5, 'the groups receive different event sets')
  for (const { spec } of expected) {
    assert.deepEqual(hub.subscriptions(server.conn(spec.tag).id), [...new Set(spec.topics)].sort())
  }
  return { expected, report }
}

module.exports = { GROUPS, specFor, matches, pathsFor, buildSteps, expectedEvents, runScenario }
