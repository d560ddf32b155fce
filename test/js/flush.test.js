'use strict'
// The flush obligation (lib/native-calls.js): every public mutating method of
// the Hub and of the PocketBase Realtime gets what it queued to the I/O
// threads by itself. Each case makes one call and then no other hub call: the
// command is seen waiting in the native batch right after the call, and then
// drained (stats().pendingCommands back to 0) with its effect visible to the
// client. A call that forgot the flush would leave its command waiting for
// the next unrelated call, and the case would time out.
// Also: the lint rule that keeps mutating native calls inside the wrapper
// fires.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const http = require('node:http')
const path = require('node:path')
const { Hub } = require('../..')
const { Realtime } = require('../../lib/pocketbase')

async function until (predicate, label, ms = 5000) {
  const deadline = Date.now() + ms
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${label}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

/** A stream client in this process: its status and the raw text received. */
function openStream (port, urlPath) {
  const stream = { status: 0, text: '', ended: false }
  stream.ready = new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false }, (res) => {
      stream.status = res.statusCode
      res.setEncoding('utf8')
      res.on('data', (chunk) => { stream.text += chunk })
      res.on('end', () => { stream.ended = true })
      res.on('error', () => { stream.ended = true })
      resolve()
    })
    req.on('error', reject)
    stream.destroy = () => req.destroy()
  })
  return stream
}

// A hub (threads: 1, no heartbeats), a server accepting /sse?t=<topic> and
// serving realtime.handler on /api/realtime, and cleanup on t.
async function setup (t, hubOptions = {}) {
  const hub = new Hub({ threads: 1, heartbeatMs: 0, ...hubOptions })
  const realtime = new Realtime({ hub, checkIp: false })
  const accepted = [] // { id, pendingAfter }
  const server = http.createServer((req, res) => {
    if (req.url.startsWith('/api/realtime')) return realtime.handler(req, res)
    const topics = new URL(req.url, 'http://x').searchParams.getAll('t')
    const conn = hub.accept(req, res, { topics })
    accepted.push({ id: conn.id, pendingAfter: hub.stats().pendingCommands })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const streams = []
  t.after(async () => {
    for (const s of streams) s.destroy?.()
    await realtime.close()
    await hub.close()
    await new Promise((resolve) => server.close(resolve))
  })
  const open = async (urlPath) => {
    const stream = openStream(server.address().port, urlPath)
    streams.push(stream)
    await stream.ready
    return stream
  }
  return { hub, realtime, accepted, open }
}

/** Runs call() (no other hub call follows), checks it queued (unless told it queues nothing), then that the queue drains. */
async function flushed (hub, label, call, queues = true) {
  const result = call()
  if (queues) assert.ok(hub.stats().pendingCommands > 0, `${label}: the call queued a command`)
  await until(() => hub.stats().pendingCommands === 0, `${label}: the flush`)
  return result
}

const threadStat = (hub, name) => hub.stats().threads[0][name]

for (const transport of ['auto', 'js']) {
  test(`[${transport}] accept, subscribe, unsubscribe, publish, broadcast, send and kick each flush what they queued`, { timeout: 30000 }, async (t) => {
    const { hub, accepted, open } = await setup(t, { transport })

    // accept(): the stream reaches its I/O thread (native: the thread writes the head).
    const stream = await open('/sse?t=a')
    assert.equal(stream.status, 200)
    assert.equal(accepted.length, 1)
    assert.ok(accepted[0].pendingAfter > 0, 'accept() queued a command')
    await until(() => threadStat(hub, 'connections') === 1 && hub.stats().pendingCommands === 0, 'accept: the flush')
    const { id } = accepted[0]

    await flushed(hub, 'subscribe', () => hub.subscribe(id, ['b', 'c']))
    await until(() => threadStat(hub, 'subscriptions') === 3, 'subscribe: the thread holds 3 subscriptions')
    await flushed(hub, 'unsubscribe', () => hub.unsubscribe(id, 'c'))
    await until(() => threadStat(hub, 'subscriptions') === 2, 'unsubscribe: the thread holds 2 subscriptions')

    await flushed(hub, 'publish', () => hub.publish('b', 'published'))
    await until(() => stream.text.includes('data: published\n'), 'publish: the event')
    await flushed(hub, 'broadcast', () => hub.broadcast('broadcast'))
    await until(() => stream.text.includes('data: broadcast\n'), 'broadcast: the event')
    await flushed(hub, 'send', () => hub.send(id, 'sent'))
    await until(() => stream.text.includes('data: sent\n'), 'send: the event')

    const disconnect = new Promise((resolve) => hub.once('disconnect', resolve))
    await flushed(hub, 'kick', () => hub.kick(id))
    assert.deepEqual(await disconnect, { id, reason: 'kicked' })
    await until(() => stream.ended, 'kick: the stream ends')
  })
}

test('[js] a client that goes away: its detach is flushed, the disconnect comes back', { timeout: 30000 }, async (t) => {
  const { hub, accepted, open } = await setup(t, { transport: 'js' })
  const stream = await open('/sse?t=a')
  await until(() => threadStat(hub, 'connections') === 1 && hub.stats().pendingCommands === 0, 'accept: the flush')
  const disconnect = new Promise((resolve) => hub.once('disconnect', resolve))
  stream.destroy()
  assert.deepEqual(await disconnect, { id: accepted[0].id, reason: 'client' })
})

test('Realtime: connect, setSubscriptions, broadcastRecord, publish, sendToClient, updateAuth and revokeAuth each flush', { timeout: 30000 }, async (t) => {
  const { hub, realtime, open } = await setup(t)
  const connected = new Promise((resolve) => realtime.once('connect', resolve))
  const stream = await open('/api/realtime')
  const { clientId } = await connected
  // connect(): the stream and its PB_CONNECT message.
  await until(() => stream.text.includes('event:PB_CONNECT\n'), 'connect: PB_CONNECT')
  await until(() => hub.stats().pendingCommands === 0, 'connect: the flush')

  const auth = { id: 'u1', collectionId: 'users', collectionName: 'users', role: 'reader' }
  await flushed(hub, 'setSubscriptions', () => realtime.setSubscriptions(clientId, ['posts/*', 'notes/*', 'custom'], auth))
  const subscribed = threadStat(hub, 'subscriptions')
  assert.ok(subscribed > 0, 'the thread holds the internal subscriptions')

  const posts = { name: 'posts', id: 'pbc_posts', listRule: '', viewRule: '' }
  await flushed(hub, 'broadcastRecord', () => realtime.broadcastRecord(posts, 'create', { id: 'r1', title: 'recorded' }))
  await until(() => stream.text.includes('"title":"recorded"'), 'broadcastRecord: the record')
  await flushed(hub, 'publish', () => realtime.publish('custom', 'custom message'))
  await until(() => stream.text.includes('data:custom message\n'), 'publish: the message')
  const sent = await flushed(hub, 'sendToClient', () => realtime.sendToClient(clientId, 'to one', { event: 'direct' }))
  assert.equal(sent, true)
  await until(() => stream.text.includes('event:direct\ndata:to one\n'), 'sendToClient: the message')

  // updateAuth and revokeAuth re-apply the subscriptions under another auth
  // record. The same subscriptions of the same identity keep their internal
  // topics (the index evaluates rules with the auth record it holds on the
  // JS thread), so nothing is queued; no command may be left waiting either.
  const notes = { name: 'notes', id: 'pbc_notes', listRule: '@request.auth.role = "editor"', viewRule: null }
  assert.equal(await flushed(hub, 'updateAuth', () => realtime.updateAuth({ ...auth, role: 'editor' }), false), 1)
  await flushed(hub, 'broadcastRecord', () => realtime.broadcastRecord(notes, 'create', { id: 'n1', body: 'for editors' }))
  await until(() => stream.text.includes('"body":"for editors"'), 'updateAuth: the record its new auth may see')
  assert.equal(await flushed(hub, 'revokeAuth', () => realtime.revokeAuth('users', 'u1'), false), 1)
  realtime.broadcastRecord(notes, 'create', { id: 'n2', body: 'not for guests' }) // reaches nobody: queues nothing
  await flushed(hub, 'publish', () => realtime.publish('custom', 'after revoke'))
  await until(() => stream.text.includes('data:after revoke\n'), 'the message after revokeAuth')
  assert.ok(!stream.text.includes('not for guests'), 'revokeAuth: a guest does not see the editors\' record')
})

test('eslint refuses a mutating call on a native object outside lib/native-calls.js', async () => {
  const { ESLint } = require('eslint')
  const root = path.join(__dirname, '..', '..')
  const eslint = new ESLint({ cwd: root })
  const probe = [
    "'use strict'",
    'function f (hub, internals) {',
    "  hub._native.publish('t', 'x')",
    '  internals.native.pbSend(1)',
    "  hub._native[hub.method]('t')",
    '  return hub._native.has(1) && internals.native.stats()',
    '}',
    'module.exports = f',
    ''
  ].join('\n')
  const [inLib] = await eslint.lintText(probe, { filePath: path.join(root, 'lib', 'probe.js') })
  const lines = inLib.messages.filter((m) => m.ruleId === 'no-restricted-syntax').map((m) => m.line)
  assert.deepEqual(lines, [3, 4, 5], 'the three mutating calls, not the read-only ones')
  const [inWrapper] = await eslint.lintText(probe, { filePath: path.join(root, 'lib', 'native-calls.js') })
  assert.deepEqual(inWrapper.messages.filter((m) => m.ruleId === 'no-restricted-syntax'), [])
})
