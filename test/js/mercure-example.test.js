'use strict'
// examples/mercure-hub.js, the contract, as a real process on a free
// port with its keys in the Mercure environment variables: the page at `/`
// (and at any other path),
// the protocol at /.well-known/mercure (a subscriber with a token receives
// an update published with a form POST and a publisher token; 401 without a
// token), the anonymous switch, a refused start without a publisher key, and
// a clean exit on SIGTERM and SIGINT.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const { spawnSync } = require('node:child_process')
const path = require('node:path')
const { startExample } = require('../helpers/pb-example')
const { token, publisherToken, fullSubscriberToken, query, openStream, post, request, SECRET, PATH } = require('../helpers/mercure')
const { waitFor } = require('../helpers/wait')

const EXAMPLE = 'examples/mercure-hub.js'
const KEYS = { MERCURE_PUBLISHER_JWT_KEY: SECRET, MERCURE_SUBSCRIBER_JWT_KEY: SECRET }
// Nothing from the caller's environment decides how the example starts.
const CLEAN = { MERCURE_PUBLISHER_JWT_ALG: '', MERCURE_SUBSCRIBER_JWT_ALG: '', MERCURE_ANONYMOUS: '', MERCURE_CORS_ORIGINS: '' }
const OPTIONS = { timeout: 30000 }

async function startHub (t, env = {}) {
  const example = await startExample(t, EXAMPLE, { ...CLEAN, ...KEYS, ...env })
  const port = Number(new URL(example.url).port)
  const streams = []
  t.after(() => { for (const s of streams) s.close() })
  return {
    ...example,
    port,
    async subscribe (q, headers = {}) {
      const s = await openStream(port, `${PATH}?${q}`, { headers })
      streams.push(s)
      return s
    }
  }
}

test('/ and any other page are HTML that subscribes with EventSource, with the discovery link; the hub path is the protocol', OPTIONS, async (t) => {
  const hub = await startHub(t)
  const page = await request(hub.port, 'GET', '/?topic=https://example.com/books/{id}')
  assert.equal(page.status, 200)
  assert.match(page.headers['content-type'], /^text\/html/)
  assert.match(page.body, /<script src="\/mercure-page.js">/)
  assert.equal(page.headers.link, `<${PATH}>; rel="mercure"`)
  const script = await request(hub.port, 'GET', '/mercure-page.js')
  assert.equal(script.status, 200)
  assert.match(script.headers['content-type'], /^text\/javascript/)
  assert.match(script.body, /new EventSource\(url\)/)
  const other = await request(hub.port, 'GET', '/books/1')
  assert.equal(other.status, 200)
  assert.match(other.headers['content-type'], /^text\/html/)
  assert.equal(other.headers.link, `<${PATH}>; rel="mercure"`)
  assert.equal((await request(hub.port, 'POST', '/books/1')).status, 405)
  // The protocol, not the page: a subscription without a topic is refused.
  const noTopic = await request(hub.port, 'GET', PATH, { headers: { authorization: `Bearer ${await fullSubscriberToken()}` } })
  assert.equal(noTopic.status, 400)
  assert.equal(noTopic.body, 'Missing "topic" parameter.\n')
})

test('a subscriber with a token receives an update published with a form POST and a publisher token', OPTIONS, async (t) => {
  const hub = await startHub(t)
  const books = await hub.subscribe(query('https://example.com/books/{id}'), { authorization: `Bearer ${await fullSubscriberToken()}` })
  assert.equal(books.status, 200)
  assert.equal(books.headers['content-type'], 'text/event-stream')
  const onlyAuthors = await hub.subscribe(query('https://example.com/authors/{id}'), { cookie: `mercureAuthorization=${await fullSubscriberToken()}` })
  assert.equal(onlyAuthors.status, 200)

  const auth = await publisherToken()
  const published = await post(hub.port, PATH, { topic: 'https://example.com/books/1', data: '{"title":"Dune"}', id: 'book-1' }, { auth })
  assert.equal(published.status, 200)
  assert.match(published.headers['content-type'], /^text\/plain/)
  assert.equal(published.body, 'book-1')
  // An id the hub makes, and a private update (the subscriber's claims allow it).
  const second = await post(hub.port, PATH, { topic: ['https://example.com/authors/7', 'https://example.com/books/7'], data: 'private', private: 'on', type: 'changed' }, { auth })
  assert.equal(second.status, 200)
  assert.match(second.body, /^urn:uuid:[0-9a-f-]{36}$/)

  await books.wait(2)
  assert.deepEqual(books.updates(), [['message', '{"title":"Dune"}', 'book-1'], ['changed', 'private', second.body]])
  await onlyAuthors.wait(1)
  assert.deepEqual(onlyAuthors.updates(), [['changed', 'private', second.body]])
})

test('401 without a token or with a bad one: subscribe and publish; nothing published', OPTIONS, async (t) => {
  const hub = await startHub(t)
  const watcher = await hub.subscribe(query('*'), { authorization: `Bearer ${await fullSubscriberToken()}` })
  const anonymous = await hub.subscribe(query('*'))
  assert.equal(anonymous.status, 401)
  assert.match(anonymous.headers['www-authenticate'] || '', /^Bearer/)
  const forged = await hub.subscribe(query('*'), { authorization: `Bearer ${await token({ mercure: { subscribe: ['*'] } }, { key: 'not the key' })}` })
  assert.equal(forged.status, 401)

  const noToken = await post(hub.port, PATH, { topic: 'https://example.com/books/1', data: 'x' })
  assert.equal(noToken.status, 401)
  const expired = await post(hub.port, PATH, { topic: 'https://example.com/books/1', data: 'x' }, { auth: await token({ mercure: { publish: ['*'] } }, { expiresInS: -60 }) })
  assert.equal(expired.status, 401)
  // A subscriber token is no publisher token: no mercure.publish claim.
  const wrongRole = await post(hub.port, PATH, { topic: 'https://example.com/books/1', data: 'x' }, { auth: await fullSubscriberToken() })
  assert.equal(wrongRole.status, 403)

  const after = await post(hub.port, PATH, { topic: 'https://example.com/books/1', data: 'after' }, { auth: await publisherToken() })
  assert.equal(after.status, 200)
  await watcher.wait(1)
  assert.deepEqual(watcher.updates().map(([, data]) => data), ['after'])
})

test('MERCURE_ANONYMOUS=1: subscribers without a token get public updates only', OPTIONS, async (t) => {
  const hub = await startHub(t, { MERCURE_SUBSCRIBER_JWT_KEY: '', MERCURE_ANONYMOUS: '1' })
  // The startup lines may come in more than one chunk after the address.
  await waitFor(() => /anonymous allowed/.test(hub.output()), 5000, () => `the example says anonymous subscribers are allowed (output: ${hub.output()})`)
  const anonymous = await hub.subscribe(query('https://example.com/books/{id}'))
  assert.equal(anonymous.status, 200)
  const auth = await publisherToken()
  assert.equal((await post(hub.port, PATH, { topic: 'https://example.com/books/1', data: 'secret', private: 'on' }, { auth })).status, 200)
  assert.equal((await post(hub.port, PATH, { topic: 'https://example.com/books/2', data: 'public' }, { auth })).status, 200)
  await anonymous.wait(1)
  assert.deepEqual(anonymous.updates().map(([, data]) => data), ['public'])
})

test('without a publisher key the example does not start, and says which variable', OPTIONS, () => {
  const r = spawnSync(process.execPath, [path.join(__dirname, '..', '..', EXAMPLE)], {
    env: { ...process.env, ...CLEAN, PORT: '0', HOST: '127.0.0.1', MERCURE_PUBLISHER_JWT_KEY: '', MERCURE_SUBSCRIBER_JWT_KEY: SECRET },
    encoding: 'utf8',
    timeout: 15000
  })
  assert.equal(r.status, 1)
  assert.match(r.stderr, /MERCURE_PUBLISHER_JWT_KEY/)
  assert.doesNotMatch(r.stderr, new RegExp(SECRET.replace(/[!]/g, '\\!')))
})

for (const signal of ['SIGTERM', 'SIGINT']) {
  test(`${signal} ends the streams and the process exits 0`, OPTIONS, async (t) => {
    const hub = await startHub(t)
    const s = await hub.subscribe(query('*'), { authorization: `Bearer ${await fullSubscriberToken()}` })
    assert.equal(s.status, 200)
    const exited = new Promise((resolve) => hub.child.once('exit', (code, sig) => resolve({ code, signal: sig })))
    hub.child.kill(signal)
    assert.deepEqual(await exited, { code: 0, signal: null })
    await waitFor(() => s.ended, 5000, 'the stream ends')
    // 'exit' may come before the last of its stdout.
    const stopped = new RegExp(`stopped \\(${signal}\\)`)
    await waitFor(() => stopped.test(hub.output()), 5000, () => `the example says it stopped (output: ${hub.output()})`)
  })
}
