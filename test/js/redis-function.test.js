'use strict'
// The Redis bus's publish function (lib/redis/function.lua) and entry format
// v1 (lib/redis/format.js, docs/redis.md) against a real redis-server: ids
// are dense and ordered under concurrent pipelined publishers, entries hold
// exactly the v1 fields (binary data intact), MAXLEN trims, a missing meta
// (FLUSHALL, a restart without persistence) starts a new epoch and a new
// stream while AOF persistence keeps both, bad arguments are refused with a
// clear error and write nothing, the loader is idempotent and never
// downgrades, and the documented redis-cli example publishes the same entry
// as node. The format's pure parts (keys, decoding) need no server.
// Redis tests are skipped (with the reason) only where redis-server is missing.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { execFile } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { createClient, RESP_TYPES } = require('@redis/client')
const format = require('../../lib/redis/format')
const { keysFor, fcallCommand, encodeArgs, decodeEntry, RejectedEntry, seqOf, loadFunction, FUNCTION_SOURCE, LIMITS } = format
const { MAX_TOPIC_BYTES } = require('../../lib/validate')
const { redisMissing, startRedis, ping, redisEnv } = require('../helpers/redis')
const { cleanup, within } = require('../helpers/wait')

const missing = redisMissing()
const OPTIONS = { skip: missing || false, timeout: 30000 }
const KEYS = keysFor('test:{hub}')
const MAXLEN = { maxLen: 10000 }
const DOC = path.join(__dirname, '..', '..', 'docs', 'redis.md')

/** A connected @redis/client client (binary: blob strings as Buffers), destroyed after the test. */
async function connect (t, redis, { binary = false } = {}) {
  const client = createClient({ socket: { host: redis.host, port: redis.port, reconnectStrategy: false } })
  client.on('error', () => {}) // a killed server: the pending commands reject
  await within(client.connect(), 5000, 'client.connect()')
  cleanup(t)(() => { if (client.isOpen) client.destroy() }, 'client.destroy()')
  return binary ? client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer }) : client
}

/** A server with the library loaded, and a client on it. */
async function setUp (t, options) {
  const redis = await startRedis(t, options)
  const client = await connect(t, redis)
  assert.equal(await loadFunction(client), 'loaded')
  return { redis, client }
}

const publish = (client, event, options = MAXLEN, keys = KEYS) => client.sendCommand(fcallCommand(keys, event, options))

/** The raw entries: [[id, [field, value, ...]], ...]. */
const range = (client, keys = KEYS) => client.sendCommand(['XRANGE', keys.stream, '-', '+'])

test('publishes from 4 pipelined clients take dense ids in one order, the stream holds them as <seq>-0', OPTIONS, async (t) => {
  const { redis } = await setUp(t)
  const clients = await Promise.all([0, 1, 2, 3].map(() => connect(t, redis)))
  const N = 500
  // Every command is sent before any reply arrives: each client pipelines 500.
  const replies = await Promise.all(clients.map((client, c) =>
    Promise.all(Array.from({ length: N }, (_, i) => publish(client, { topic: `c${c}`, data: `${c}:${i}` })))))
  const epoch = replies[0][0][0]
  assert.match(epoch, /^[A-Za-z0-9]{9}$/)
  const owner = new Map() // seq -> "c:i"
  replies.forEach((list, c) => {
    let last = 0
    list.forEach(([e, seq], i) => {
      assert.equal(e, epoch)
      assert.ok(Number.isInteger(seq) && seq > last, `client ${c}: seq ${seq} after ${last}: in its send order`)
      last = seq
      owner.set(seq, `${c}:${i}`)
    })
  })
  assert.equal(owner.size, 4 * N)
  assert.deepEqual([...owner.keys()].sort((a, b) => a - b), Array.from({ length: 4 * N }, (_, i) => i + 1))
  const entries = await range(clients[0])
  assert.equal(entries.length, 4 * N)
  entries.forEach(([id, fields], k) => {
    assert.equal(id, `${k + 1}-0`)
    assert.equal(seqOf(id), k + 1)
    const event = decodeEntry(fields)
    assert.equal(event.epoch, epoch)
    assert.equal(event.data, owner.get(k + 1), `entry ${id} is the publish that got seq ${k + 1}`)
  })
  assert.deepEqual(await clients[0].hGetAll(KEYS.meta), { epoch, seq: String(4 * N) })
})

test('ssefanout_epoch_v1: starts an epoch at seq 0 when meta is missing, and the publishes continue it; otherwise reads meta, writes nothing', OPTIONS, async (t) => {
  const { client } = await setUp(t)
  const [epoch, seq] = await client.sendCommand(format.epochCommand(KEYS))
  assert.match(epoch, /^[A-Za-z0-9]{9}$/)
  assert.equal(seq, 0)
  assert.deepEqual(await client.sendCommand(['HGETALL', KEYS.meta]), { epoch, seq: '0' })
  assert.deepEqual(await client.sendCommand(format.epochCommand(KEYS)), [epoch, 0], 'a second call starts nothing')
  assert.deepEqual(await publish(client, { topic: 'a', data: 'x' }), [epoch, 1], 'the first publish is seq 1 of that epoch')
  assert.deepEqual(await client.sendCommand(format.epochCommand(KEYS)), [epoch, 1])
  assert.equal((await range(client)).length, 1, 'the stream kept')
  // meta gone (FLUSHALL, an eviction): a new epoch, the stale stream deleted with it.
  await client.sendCommand(['DEL', KEYS.meta])
  const [next, zero] = await client.sendCommand(format.epochCommand(KEYS))
  assert.notEqual(next, epoch)
  assert.equal(zero, 0)
  assert.equal(await client.sendCommand(['EXISTS', KEYS.stream]), 0)
  await assert.rejects(client.sendCommand(['FCALL', format.EPOCH_FUNCTION, '2', KEYS.meta, 'other:{x}:stream']),
    /ERR ssefanout_epoch_v1: the keys must be <prefix>:meta and <prefix>:stream/)
  await assert.rejects(client.sendCommand([...format.epochCommand(KEYS), 'extra']), /ERR ssefanout_epoch_v1: expected no arguments/)
  assert.equal(format.refusedByFunction('ERR ssefanout_publish_v1: data is 9 bytes'), true)
  assert.equal(format.refusedByFunction('OOM command not allowed when used memory > \'maxmemory\'.'), false)
})

test('an entry holds exactly the v1 fields, binary data intact; decodeEntry gives the event back', OPTIONS, async (t) => {
  const { redis } = await setUp(t)
  const client = await connect(t, redis, { binary: true })
  const data = Buffer.from([0x00, 0x0a, 0x0d, 0xff, 0x66, 0x0a, 0x0a, 0x00]) // NUL, LF, CR, invalid UTF-8
  const [epoch, one] = await publish(client, {
    topic: 'orders/42', data, event: 'order-updated', id: 'ord-42', users: ['alice', 'bob'], origin: 'inst-a:7'
  })
  const [, two] = await publish(client, { data: new Uint8Array([1, 2, 3]) }) // a broadcast, a Uint8Array
  const [, three] = await publish(client, { topic: 't', data: '' })
  assert.deepEqual([one, two, three], [1, 2, 3])
  const e = epoch.toString()
  const entries = await range(client)
  assert.deepEqual(entries.map(([id, fields]) => [id.toString(), fields.map((f) => Buffer.isBuffer(f) ? f.toString('latin1') : f)]), [
    ['1-0', ['v', '1', 'e', e, 't', 'orders/42', 'd', data.toString('latin1'), 'n', 'order-updated', 'i', 'ord-42', 'u', '["alice","bob"]', 'o', 'inst-a:7']],
    ['2-0', ['v', '1', 'e', e, 'd', '\x01\x02\x03']],
    ['3-0', ['v', '1', 'e', e, 't', 't', 'd', '']]
  ])
  // @redis/client's own XRANGE reply (fields as an object) decodes the same.
  const [first, second] = await client.xRange(KEYS.stream, '-', '+')
  assert.deepEqual(decodeEntry(first.message), {
    epoch: e, topic: 'orders/42', data, event: 'order-updated', id: 'ord-42', users: ['alice', 'bob'], origin: 'inst-a:7'
  })
  assert.deepEqual(decodeEntry(second.message), { epoch: e, topic: null, data: Buffer.from([1, 2, 3]) })
  assert.equal(seqOf(second.id), 2)
})

test('MAXLEN ~ trims the stream to about maxlen; the ids stay dense, meta keeps counting', OPTIONS, async (t) => {
  const { client } = await setUp(t)
  await Promise.all(Array.from({ length: 1000 }, (_, i) => publish(client, { topic: 'a', data: String(i + 1) }, { maxLen: 10 })))
  const entries = await range(client)
  // Approximate trimming removes whole stream nodes (stream-node-max-entries, 100).
  assert.ok(entries.length >= 10 && entries.length <= 110, `${entries.length} entries left`)
  const seqs = entries.map(([id]) => seqOf(id))
  assert.equal(seqs.at(-1), 1000)
  assert.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => 1001 - seqs.length + i))
  assert.equal(await client.hGet(KEYS.meta, 'seq'), '1000')
  // Any bound at all: maxlen 1 still keeps the newest entry.
  await publish(client, { topic: 'a', data: 'last' }, { maxLen: 1 })
  assert.equal((await range(client)).at(-1)[0], '1001-0')
})

test('FLUSHALL (meta gone) starts a new epoch at seq 1; a stale stream is deleted with it', OPTIONS, async (t) => {
  const { client } = await setUp(t)
  const [first] = await publish(client, { topic: 'a', data: '1' })
  await publish(client, { topic: 'a', data: '2' })
  await client.sendCommand(['FLUSHALL'])
  const [second, seq] = await publish(client, { topic: 'a', data: '3' }) // the function survives FLUSHALL
  assert.notEqual(second, first)
  assert.equal(seq, 1)
  assert.deepEqual((await range(client)).map(([id, f]) => [id, decodeEntry(f).epoch]), [['1-0', second]])
  // meta deleted alone (evicted): the old stream goes too, so no reader sees two epochs in it.
  await publish(client, { topic: 'a', data: '4' })
  await client.del(KEYS.meta)
  const [third, seq3] = await publish(client, { topic: 'a', data: '5' })
  assert.notEqual(third, second)
  assert.equal(seq3, 1)
  assert.deepEqual((await range(client)).map(([id, f]) => [id, decodeEntry(f).data]), [['1-0', '5']])
})

test('a meta that disagrees with the stream, or keys of the wrong type, start a new epoch instead of failing', OPTIONS, async (t) => {
  const { client } = await setUp(t)
  const [e1] = await publish(client, { topic: 'a', data: '1' })
  await publish(client, { topic: 'a', data: '2' })
  await client.hSet(KEYS.meta, 'seq', '1') // the next id, 2-0, is not above the stream's last
  const [e2, s2] = await publish(client, { topic: 'a', data: '3' })
  assert.notEqual(e2, e1)
  assert.equal(s2, 1)
  assert.deepEqual((await range(client)).map(([id, f]) => [id, decodeEntry(f).epoch, decodeEntry(f).data]), [['1-0', e2, '3']])
  await client.set(KEYS.stream, 'not a stream')
  const [e3, s3] = await publish(client, { topic: 'a', data: '4' })
  assert.notEqual(e3, e2)
  assert.equal(s3, 1)
  await client.set(KEYS.meta, 'not a hash')
  const [e4, s4] = await publish(client, { topic: 'a', data: '5' })
  assert.notEqual(e4, e3)
  assert.equal(s4, 1)
  await client.hSet(KEYS.meta, 'epoch', 'has-a-dash')
  const [e5] = await publish(client, { topic: 'a', data: '6' })
  assert.match(e5, /^[A-Za-z0-9]{9}$/)
  assert.deepEqual(await client.hGetAll(KEYS.meta), { epoch: e5, seq: '1' })
})

test('SIGKILL and a restart without persistence: the function is gone, loaded again, a new epoch from 1', OPTIONS, async (t) => {
  const { redis, client } = await setUp(t)
  const [before] = await publish(client, { topic: 'a', data: '1' })
  await publish(client, { topic: 'a', data: '2' })
  await redis.restart() // SIGKILL, same port
  const again = await connect(t, redis)
  await assert.rejects(publish(again, { topic: 'a', data: '3' }), /Function not found/)
  assert.equal(await loadFunction(again), 'loaded')
  assert.equal(await loadFunction(again), 'present')
  const [after, seq] = await publish(again, { topic: 'a', data: '3' })
  assert.notEqual(after, before)
  assert.equal(seq, 1)
  assert.deepEqual((await range(again)).map(([id]) => id), ['1-0'])
})

test('with appendonly (fsync always) a SIGKILL loses nothing: the function, the epoch and the stream continue', OPTIONS, async (t) => {
  const { redis, client } = await setUp(t, { persistence: true })
  let epoch
  for (let i = 1; i <= 5; i++) [epoch] = await publish(client, { topic: 'a', data: String(i) })
  await redis.restart() // SIGKILL
  const again = await connect(t, redis)
  assert.equal(await loadFunction(again), 'present')
  assert.deepEqual(await publish(again, { topic: 'a', data: '6' }), [epoch, 6])
  assert.deepEqual((await range(again)).map(([id, f]) => [id, decodeEntry(f).data]),
    Array.from({ length: 6 }, (_, i) => [`${i + 1}-0`, String(i + 1)]))
})

test('bad arguments: a Redis error that says what is wrong, and nothing written', OPTIONS, async (t) => {
  const { client } = await setUp(t)
  const call = (keys, args) => client.sendCommand(['FCALL', format.FUNCTION_NAME, String(keys.length), ...keys, ...args])
  const both = [KEYS.meta, KEYS.stream]
  const long = (n) => 'x'.repeat(n)
  const cases = [
    [[KEYS.meta], ['10', 'a', 'd'], /expected 2 keys/],
    [[KEYS.stream, KEYS.meta], ['10', 'a', 'd'], /keys must be <prefix>:meta and <prefix>:stream/],
    [['a{x}:meta', 'b{x}:stream'], ['10', 'a', 'd'], /keys must be <prefix>:meta and <prefix>:stream/],
    [both, ['10', 'a'], /expected <maxlen> <topic> <data> \[name value\]\.\.\., got 2 arguments/],
    [both, ['10', 'a', 'd', 'event'], /got 4 arguments/],
    [both, ['0', 'a', 'd'], /maxlen must be an integer from 1 to 1000000000, got '0'/],
    [both, ['-1', 'a', 'd'], /maxlen must be an integer/],
    [both, ['1.5', 'a', 'd'], /maxlen must be an integer/],
    [both, ['010', 'a', 'd'], /maxlen must be an integer/],
    [both, ['1000000001', 'a', 'd'], /maxlen must be an integer/],
    [both, ['abc\r\nSET x', 'a', 'd'], /got 'abc\?\?SET x'$/], // control bytes never break the reply
    [both, ['10', 'a\nb', 'd'], /topic must be 1 to 1024 bytes without CR, LF or NUL \(got 3 bytes\); "" is a broadcast/],
    [both, ['10', long(1025), 'd'], /topic must be 1 to 1024 bytes/],
    [both, ['10', 'a', 'd', 'colour', 'red'], /unknown option 'colour' \(expected event, id, users, origin or maxdata\)/],
    [both, ['10', 'a', 'd', 'n', 'x'], /unknown option 'n'/],
    [both, ['10', 'a', 'd', 'event', 'x', 'event', 'y'], /option event given twice/],
    [both, ['10', 'a', 'd', 'event', ''], /event must be 1 to 1024 bytes without CR, LF or NUL \(got 0 bytes\)/],
    [both, ['10', 'a', 'd', 'event', 'a\rb'], /event must be/],
    [both, ['10', 'a', 'd', 'event', long(1025)], /event must be/],
    [both, ['10', 'a', 'd', 'id', 'a\0b'], /id must be 1 to 1024 bytes/],
    [both, ['10', 'a', 'd', 'id', long(1025)], /id must be/],
    [both, ['10', 'a', 'd', 'origin', long(257)], /origin must be 1 to 256 bytes/],
    [both, ['10', 'a', 'd', 'users', '{}'], /users must be a JSON array of strings, got '\{\}'/],
    [both, ['10', 'a', 'd', 'users', '[1]'], /users must be a JSON array of strings/],
    [both, ['10', 'a', 'd', 'users', '["a",null]'], /users must be a JSON array of strings/],
    [both, ['10', 'a', 'd', 'users', '["a"'], /users must be a JSON array of strings/],
    [both, ['10', 'a', 'd', 'users', '"alice"'], /users must be a JSON array of strings/],
    [both, ['10', 'a', long(LIMITS.maxDataBytes + 1)], /data is 1048577 bytes, more than maxdata \(1048576\)/],
    [both, ['10', 'a', 'hello', 'maxdata', '4'], /data is 5 bytes, more than maxdata \(4\)/],
    [both, ['10', 'a', 'hi', 'maxdata', '2', 'users', '["alice"]'], /users must be at most 2 bytes of JSON/],
    [both, ['10', 'a', 'd', 'maxdata', '0'], /maxdata must be an integer from 1 to 536870912, got '0'/],
    [both, ['10', 'a', 'd', 'maxdata', 'lots'], /maxdata must be an integer/]
  ]
  for (const [keys, args, expected] of cases) {
    const shown = JSON.stringify(args).slice(0, 80)
    await assert.rejects(call(keys, args), (err) => {
      assert.match(err.message, /^ERR ssefanout_publish_v1: /, shown)
      assert.match(err.message, expected, shown)
      return true
    })
  }
  assert.equal(await client.sendCommand(['DBSIZE']), 0, 'no refused call wrote a key')
  // The limits themselves pass: the same as the Hub's (lib/validate.js).
  assert.equal(LIMITS.topicBytes, MAX_TOPIC_BYTES)
  assert.deepEqual(await call(both, ['10', long(1024), long(LIMITS.maxDataBytes), 'event', long(1024), 'id', long(1024), 'origin', long(256), 'users', '[]']).then(([, s]) => s), 1)
  assert.deepEqual(await call(both, ['10', '', 'abcd', 'maxdata', '4']).then(([, s]) => s), 2)
})

test('loadFunction is idempotent, safe when instances race, replaces an older library and never a newer one', OPTIONS, async (t) => {
  const redis = await startRedis(t)
  const clients = await Promise.all([0, 1, 2, 3].map(() => connect(t, redis)))
  const results = await Promise.all(clients.map((c) => loadFunction(c)))
  assert.deepEqual(results.sort(), ['loaded', 'present', 'present', 'present'])
  const client = clients[0]
  assert.equal(await client.sendCommand(['FCALL_RO', format.VERSION_FUNCTION, '0']), format.LIBRARY_VERSION)
  const withVersion = (v) => FUNCTION_SOURCE.replace(/^local LIBRARY_VERSION = \d+$/m, `local LIBRARY_VERSION = ${v}`)
  await client.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', withVersion(format.LIBRARY_VERSION - 1)])
  assert.equal(await loadFunction(client), 'replaced')
  assert.equal(await client.sendCommand(['FCALL_RO', format.VERSION_FUNCTION, '0']), format.LIBRARY_VERSION)
  await client.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', withVersion(format.LIBRARY_VERSION + 1)])
  assert.equal(await loadFunction(client), 'newer')
  assert.equal(await client.sendCommand(['FCALL_RO', format.VERSION_FUNCTION, '0']), format.LIBRARY_VERSION + 1)
  // A library of our name without the version function is replaced.
  const foreign = "#!lua name=ssefanout\nredis.register_function('ssefanout_other', function () return 1 end)"
  await client.sendCommand(['FUNCTION', 'LOAD', 'REPLACE', foreign])
  assert.equal(await loadFunction(client), 'replaced')
  assert.equal(await loadFunction(client), 'present')
  await client.sendCommand(['FUNCTION', 'FLUSH'])
  assert.equal(await loadFunction(client), 'loaded')
  // A server that answers something else than "not found" is an error, not a load.
  await redis.kill()
  await assert.rejects(loadFunction(client))
})

test('cross-language: the redis-cli example of docs/redis.md publishes the same entry as node', OPTIONS, async (t) => {
  const doc = fs.readFileSync(DOC, 'utf8')
  const m = /<!-- example: cross-language publish[^>]*-->\n```sh\n([\s\S]*?)```/.exec(doc)
  assert.ok(m, 'docs/redis.md holds the marked sh example')
  const script = m[1]
  const keys = keysFor() // the example uses the default prefix
  const { redis, client } = await setUp(t)
  const out = await new Promise((resolve, reject) => {
    execFile('bash', ['-euo', 'pipefail', '-c', script], { env: redisEnv({ REDIS_URL: redis.url }), timeout: 10000 },
      (err, stdout, stderr) => err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))
  })
  const [epoch, seq] = out.trim().split('\n')
  assert.match(epoch, /^[A-Za-z0-9]{9}$/)
  assert.equal(seq, '1')
  // The same event from node: same fields in the same order, the next id.
  const [nodeEpoch, nodeSeq] = await publish(client, {
    topic: 'orders/42', data: '{"status":"shipped"}', event: 'order-updated', users: ['alice']
  }, MAXLEN, keys)
  assert.deepEqual([nodeEpoch, nodeSeq], [epoch, 2])
  const [[id1, fromCli], [id2, fromNode]] = await range(client, keys)
  assert.deepEqual([id1, id2], ['1-0', '2-0'])
  assert.deepEqual(fromCli, fromNode)
  assert.deepEqual(fromCli, ['v', '1', 'e', epoch, 't', 'orders/42', 'd', '{"status":"shipped"}', 'n', 'order-updated', 'u', '["alice"]'])
})

test('the harness: CLIENT PAUSE and SIGSTOP hold replies while connections stay open; close leaves nothing', OPTIONS, async (t) => {
  const redis = await startRedis(null)
  const pid = redis.pid
  try {
    const client = await connect(t, redis)
    await redis.pause(400)
    let t0 = Date.now()
    assert.equal(await client.ping(), 'PONG')
    assert.ok(Date.now() - t0 >= 300, `PING answered after ${Date.now() - t0} ms of a 400 ms pause`)
    redis.freeze()
    t0 = Date.now()
    assert.equal(await ping(redis.port, 300), false, 'a frozen server answers nothing')
    const late = client.ping()
    redis.thaw()
    assert.equal(await within(late, 5000, 'PING after thaw'), 'PONG')
  } finally {
    await redis.close()
  }
  assert.equal(redis.running, false)
  assert.equal(fs.existsSync(redis.dir), false, 'its directory is removed')
  assert.ok(pid > 0)
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, 'its process is gone')
})

test('format: keysFor needs a hash tag; encodeArgs lays out the call; decodeEntry rejects with a reason', () => {
  assert.deepEqual(keysFor(), { meta: 'sse-fanout:{default}:meta', stream: 'sse-fanout:{default}:stream' })
  assert.deepEqual(keysFor('app:{orders}:x'), { meta: 'app:{orders}:x:meta', stream: 'app:{orders}:x:stream' })
  for (const bad of ['app', 'app:{}', 'app}{x', '', 'a\nb{x}', 42, null]) {
    assert.throws(() => keysFor(bad), { code: 'ERR_SSE_INVALID_ARGUMENT' }, String(bad))
  }
  assert.deepEqual(encodeArgs({ topic: 'a', data: 'x', event: 'e', id: 'i', users: ['u'], origin: 'o:1' }, { maxLen: 5, maxData: 10 }),
    ['5', 'a', 'x', 'event', 'e', 'id', 'i', 'users', '["u"]', 'origin', 'o:1', 'maxdata', '10'])
  assert.deepEqual(encodeArgs({ topic: null, data: 'x' }, { maxLen: 5, maxData: LIMITS.maxDataBytes }), ['5', '', 'x'])
  assert.deepEqual(fcallCommand(KEYS, { data: 'x' }, { maxLen: 1 }), ['FCALL', 'ssefanout_publish_v1', '2', KEYS.meta, KEYS.stream, '1', '', 'x'])
  assert.throws(() => encodeArgs({ topic: 'a', data: 'x' }, { maxLen: 0 }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  assert.throws(() => encodeArgs({ topic: 'a', data: 'x' }, { maxLen: 1, maxData: 0 }), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  assert.throws(() => encodeArgs({ topic: 'a', data: 42 }, { maxLen: 1 }), { code: 'ERR_SSE_INVALID_DATA' })

  const good = ['v', '1', 'e', 'abc', 't', 'a', 'd', 'x']
  assert.deepEqual(decodeEntry(good), { epoch: 'abc', topic: 'a', data: 'x' })
  assert.deepEqual(decodeEntry(new Map([['v', '1'], ['e', 'abc'], ['d', 'x'], ['future', 'ignored']])), { epoch: 'abc', topic: null, data: 'x' })
  const rejected = (fields, reason, version) => {
    const r = decodeEntry(fields)
    assert.ok(r instanceof RejectedEntry, JSON.stringify(fields))
    assert.match(r.reason, reason)
    assert.equal(r.version, version)
  }
  rejected(['v', '2', 'e', 'abc', 'd', 'x'], /format version "2" is not 1/, '2')
  rejected(['e', 'abc', 'd', 'x'], /no format version/, undefined)
  rejected(['v', '1', 'd', 'x'], /e \(epoch\)/, '1')
  rejected(['v', '1', 'e', 'a-b', 'd', 'x'], /e \(epoch\)/, '1')
  rejected(['v', '1', 'e', 'abc'], /d \(data\) is missing/, '1')
  rejected(['v', '1', 'e', 'abc', 't', '', 'd', 'x'], /t \(topic\)/, '1')
  rejected(['v', '1', 'e', 'abc', 'd', 'x', 'n', 'a\nb'], /n \(event\)/, '1')
  rejected(['v', '1', 'e', 'abc', 'd', 'x', 'u', '{"a":1}'], /u \(users\)/, '1')
  rejected(['v', '1', 'e', 'abc', 'd', 'x', 'u', '[1]'], /u \(users\)/, '1')
  rejected(['v', '1', 'e'], /not a list of fields/, undefined)
  assert.ok(decodeEntry(['v', '1', 'e', 'abc', 'd', 'xxxxx'], { maxData: 4 }) instanceof RejectedEntry)
  assert.deepEqual([seqOf('12-0'), seqOf(Buffer.from('3-0')), seqOf('12-1'), seqOf('0-0'), seqOf('x')], [12, 3, 0, 0, 0])
})

test('lib/redis/format.js loads without @redis/client', async () => {
  const script = "require('./lib/redis/format'); console.log(Object.keys(require.cache).filter((k) => k.includes('@redis')).length)"
  const out = await new Promise((resolve, reject) => {
    execFile(process.execPath, ['-e', script], { cwd: path.join(__dirname, '..', '..'), timeout: 10000 },
      (err, stdout) => err ? reject(err) : resolve(stdout))
  })
  assert.equal(out.trim(), '0')
})
