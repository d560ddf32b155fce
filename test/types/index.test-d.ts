import { expectType, expectError, expectAssignable, expectNotAssignable } from 'tsd'
import http from 'node:http'
import http2 from 'node:http2'
import { EventEmitter, once } from 'node:events'
import {
  Hub, SseError, codes, defaults, serveClient,
  type Connection, type DisconnectInfo, type DisconnectReason, type ErrorCode,
  type HubOptions, type HubStats, type ThreadStats, type AcceptOptions,
  type HistoryOptions, type HistoryStats, type ResetInfo, type ResetReason,
  type CatchUpResult, type CatchUpEvent, type CompressionOptions,
  Listener, type ListenRequest
} from '../..'

// Construction and options.
expectType<Hub>(new Hub())
expectType<Hub>(new Hub({}))
const hub = new Hub({
  threads: 2,
  heartbeatMs: 0,
  maxQueueBytes: 1 << 20,
  maxSubscriptions: 100,
  maxConnections: 1000,
  sndbufBytes: 0,
  closeTimeoutMs: 1000,
  keepAliveMs: 30000,
  tcpUserTimeoutMs: 0,
  maxPendingCommands: 1000,
  maxPendingBytes: 1 << 20,
  transport: 'js'
})
expectError(new Hub({ keepAliveMs: '30s' }))
expectAssignable<ErrorCode>('ERR_SSE_QUEUE_FULL')
expectAssignable<ErrorCode>('ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP')
new Hub({ transport: 'auto' })
expectError(new Hub({ threads: 'two' }))
expectError(new Hub({ heartbeatMs: '15s' }))
expectError(new Hub({ transport: 'tcp' }))
expectError(new Hub({ thread: 2 }))
expectError(new Hub(4))
expectAssignable<HubOptions>({ threads: 1 })
expectNotAssignable<HubOptions>({ transport: 'native' })

// Properties.
expectType<boolean>(hub.closed)
expectType<number>(hub.options.threads)
expectType<'auto' | 'js'>(hub.options.transport)
expectError(hub.closed = true)
expectError(hub.options.threads = 3)
expectType<number>(defaults.maxQueueBytes)
expectError(defaults.threads = 1)

// accept(): node:http and HTTP/2 compatibility requests.
http.createServer((req, res) => {
  const conn = hub.accept(req, res, { topics: ['news', 'chat/*'], user: 'u1', retry: 2000 })
  expectType<Connection>(conn)
  expectType<number>(conn.id)
  expectType<'native' | 'js'>(conn.transport)
  expectType<string | undefined>(conn.user)
  expectError(conn.id = 2)
  hub.accept(req, res)
  hub.accept(req, res, { topics: 'news', user: null })
  hub.accept(req, res, { topics: 'news', compress: false })
  expectError(hub.accept(req, res, { compress: 'gzip' }))
  expectError(hub.accept(req, res, { topics: 5 }))
  hub.accept(req, res, { streamId: 'cid', idleTimeoutMs: 300000, maxLifetimeMs: 1800000 })
  expectError(hub.accept(req, res, { streamId: 5 }))
  expectError(hub.accept(req, res, { idleTimeoutMs: '1' }))
  expectError(hub.accept(req, res, { topics: [1, 2] }))
  expectError(hub.accept(req, res, { retry: '1' }))
  expectError(hub.accept(req, res, { user: 7 }))
  expectError(hub.accept(req, res, { topic: 'news' }))
  expectError(hub.accept(req))
})
http2.createSecureServer({}, (req, res) => {
  expectType<Connection>(hub.accept(req, res))
})
expectNotAssignable<AcceptOptions>({ topics: 5 })

// Subscriptions.
expectType<void>(hub.subscribe(1, 'news'))
expectType<void>(hub.subscribe(1, ['a', 'b/*']))
expectType<void>(hub.unsubscribe(1, ['a']))
expectType<string[] | undefined>(hub.subscriptions(1))
expectType<boolean>(hub.has(1))
expectError(hub.subscribe('1', 'news'))
expectError(hub.subscribe(1, 5))

// Publishing: strings, bytes, JSON-serialisable values.
expectType<string | null | undefined>(hub.publish('news', 'hello'))
hub.publish('news', Buffer.from('hi'))
hub.publish('news', new Uint8Array(2))
hub.publish('chat/42', { text: 'hi' }, { event: 'message', id: '17' })
hub.publish('news', [1, 2, 3], { users: ['u1'] })
hub.publish('news', 42)
hub.publish('news', false)
hub.publish('news', null)
expectError(hub.publish('news'))
expectError(hub.publish('news', undefined))
expectError(hub.publish(5, 'x'))
expectError(hub.publish('news', 'x', { event: 5 }))
expectError(hub.publish('news', 'x', { id: 17 }))
expectError(hub.publish('news', 'x', { users: 'u1' }))
expectType<string | null | undefined>(hub.broadcast('to everyone'))
hub.broadcast({ a: 1 }, { event: 'e', users: ['u1', 'u2'] })
expectError(hub.broadcast())
expectType<void>(hub.send(1, 'only you', { event: 'dm' }))
expectError(hub.send(1, 'x', { users: ['u1'] }))
expectError(hub.send('1', 'x'))
expectType<void>(hub.kick(1))
expectError(hub.kick('1'))

// stats() and close().
const stats = hub.stats()
expectType<HubStats>(stats)
expectType<number>(stats.native)
expectType<number>(stats.js)
expectType<number>(stats.frames)
expectType<ThreadStats[]>(stats.threads)
expectType<number>(stats.threads[0].queueBytes)
expectType<number>(stats.queueFull)
expectType<number>(stats.outOfFds)
expectType<number>(stats.pendingBytes)
expectType<number>(stats.threads[0].pendingCommands)
expectType<Promise<void>>(hub.close())

// Events: the two names, with their argument types.
expectType<Hub>(hub.on('connect', (conn) => { expectType<Connection>(conn) }))
hub.on('disconnect', (info) => {
  expectType<DisconnectInfo>(info)
  expectType<number>(info.id)
  expectType<DisconnectReason>(info.reason)
  expectType<'client' | 'slow' | 'kicked' | 'error' | 'shutdown' | 'timeout'>(info.reason)
})
hub.on('disconnect', ({ reason }) => {
  if (reason === 'slow') return
  if (reason === 'timeout') return
  // @ts-expect-error 'idle' is not a reason
  if (reason === 'idle') return
})
hub.once('connect', (conn: Connection) => {})
hub.off('disconnect', (info: DisconnectInfo) => {})
hub.addListener('connect', () => {})
hub.prependListener('disconnect', () => {})
hub.removeListener('connect', () => {})
expectType<boolean>(hub.emit('disconnect', { id: 1, reason: 'kicked' }))

// Unknown event names, and listeners of the wrong shape, do not compile.
expectError(hub.on('nonsense', () => {}))
expectError(hub.on('connection', (conn: Connection) => {}))
expectError(hub.on('close', () => {}))
expectError(hub.once('nonsense', () => {}))
expectError(hub.off('nonsense', () => {}))
expectError(hub.addListener('nonsense', () => {}))
expectError(hub.prependListener('nonsense', () => {}))
expectError(hub.prependOnceListener('nonsense', () => {}))
expectError(hub.removeListener('nonsense', () => {}))
expectError(hub.emit('nonsense'))
expectError(hub.emit('connect', 5))
expectError(hub.emit('disconnect', { id: 1, reason: 'idle' }))
expectError(hub.on('connect', (conn: string) => {}))
expectError(hub.on('disconnect', (info: { id: string }) => {}))

// Still a plain EventEmitter for code that takes one.
expectAssignable<EventEmitter>(hub)
expectAssignable<NodeJS.EventEmitter>(hub)
void once(hub, 'disconnect')

// Errors.
const err = new SseError('ERR_SSE_CLOSED', 'the hub is closed')
expectAssignable<Error>(err)
expectType<ErrorCode>(err.code)
expectType<'SseError'>(err.name)
expectError(new SseError('ERR_NOPE', 'x'))
expectType<string>(codes.ERR_SSE_INVALID_TOPIC)
expectType<string>(codes.ERR_SSE_MISSING_DEPENDENCY)
expectError(codes.ERR_NOPE)
expectError(codes.ERR_SSE_CLOSED = 'x')
try {
  hub.kick(1)
} catch (e) {
  if (e instanceof SseError && e.code === 'ERR_SSE_UNKNOWN_CONNECTION') expectType<SseError>(e)
}

// Catch-up (history): catchUp() and the node:http poll handler.
{
  const result = hub.catchUp({ topics: ['news', 'chat/*'], user: 'u1', since: 'k3J9aQ2x-42', waitMs: 5000, signal: new AbortController().signal })
  expectType<Promise<CatchUpResult | null>>(result)
  expectType<Promise<CatchUpResult | null>>(hub.catchUp())
  expectType<Promise<CatchUpResult | null>>(hub.catchUp({ topics: 'news', since: null, user: null }))
  expectError(hub.catchUp({ wait: 5 }))
  expectError(hub.catchUp({ waitMs: '5' }))
  expectError(hub.catchUp({ since: 42 }))
  expectError(hub.catchUp({ signal: {} }))
  void result.then((r) => {
    if (r === null) return
    expectType<CatchUpEvent[]>(r.events)
    expectType<string>(r.cursor)
    expectType<ResetInfo | undefined>(r.reset)
    expectType<ResetReason | undefined>(r.reset?.reason)
    expectType<string | null | undefined>(r.reset?.requested)
    const e = r.events[0]
    expectType<string>(e.id)
    expectType<string>(e.event)
    expectType<string>(e.data)
    expectType<string | null>(e.topic)
  })
  expectAssignable<ResetReason>('expired')
  expectNotAssignable<ResetReason>('gone')
  http.createServer((req, res) => {
    expectType<Promise<void>>(hub.poll(req, res, { topics: ['news'], user: 'u1' }))
    expectType<Promise<void>>(hub.poll(req, res))
    expectError(hub.poll(req, res, { topics: 5 }))
    expectError(hub.poll(req, res, { since: 'x' }))
  })
}

// History and resume
const withHistory = new Hub({ history: { maxEvents: 100, maxAgeMs: 60000, resetEvent: 'resync', positionEvent: true } })
expectType<string | null | undefined>(withHistory.publish('news', 'x', { id: 'mine' }))
expectType<Readonly<Required<HistoryOptions>> | null>(withHistory.options.history)
expectType<HistoryStats | null>(withHistory.stats().history)
new Hub({ history: true })
// Compression: the hub's option, per accept, per event, and its figures.
const compressed = new Hub({ compression: { level: 1, minBytes: 64 } })
new Hub({ compression: true })
expectType<Readonly<Required<CompressionOptions>> | null>(compressed.options.compression)
expectType<{ connections: number, bytesIn: number, bytesOut: number }>(compressed.stats().compression)
compressed.publish('t', 'secret', { compress: false })
compressed.broadcast('x', { compress: true })
expectError(new Hub({ compression: { level: 'max' } }))
expectError(compressed.publish('t', 'x', { compress: 'no' }))
expectError(new Hub({ history: { maxEvents: '10' } }))
declare const req2: http.IncomingMessage
declare const res2: http.ServerResponse
withHistory.accept(req2, res2, { lastEventId: 'abc-1', retry: { min: 1000, max: 3000 }, history: false })
expectError(withHistory.accept(req2, res2, { retry: { min: 1000 } }))
const info: ResetInfo = { reason: 'expired', requested: 'abc-1', oldest: null, latest: 'abc-9' }
expectType<ResetReason>(info.reason)

// serveClient: a node:http handler for the browser module.
expectType<Promise<void>>(serveClient(req2, res2))
http.createServer((req, res) => { void serveClient(req, res) })
http.createServer(serveClient)
expectError(serveClient(req2))
expectError(serveClient({}, res2))

// The native listener (hub.listen, docs/listener.md).
{
  const hub = new Hub()
  const listening = hub.listen({ port: 0, path: '/events', cors: { origin: ['https://a.example'] }, retry: { min: 1000, max: 3000 }, acceptRate: 1000 })
  expectType<Promise<Listener>>(listening)
  void listening.then((l) => {
    expectType<number>(l.port)
    expectType<number>(l.stats().streams)
    expectType<Promise<void>>(l.close())
  })
  void hub.listen({
    authorize: async (req: ListenRequest) => req.headers.authorization === 'Bearer x' ? { topics: ['a'], user: 'u' } : { status: 401 }
  })
  void hub.listen({ token: { algorithm: 'HS256', key: 'secret', userClaim: null, query: null } })
  void hub.listen({ token: { keys: [{ algorithm: 'RS256', key: '-----BEGIN PUBLIC KEY-----', kid: 'k1' }, { algorithm: 'ES256', key: Buffer.from('') }], claim: 'app.topics', clockToleranceSec: 5 } })
  void hub.listen({ port: 0 }).then((l) => expectType<number>(l.stats().tokenRefused))
  void hub.listen({ token: { algorithm: 'HS256', key: 'secret', cache: 0 } }).then((l) => expectType<number>(l.stats().tokenCacheHits))
  expectError(hub.listen({ token: { algorithm: 'HS256', key: 'secret', cache: '1024' } }))
  expectError(hub.listen({ token: { algorithm: 'HS384', key: 'secret' } }))
  expectError(hub.listen({ token: { algorithm: 'HS256', key: 'secret' }, authorize: () => null }))
  expectError(hub.listen({ authorize: () => 'yes' }))
  expectError(hub.listen({ port: '80' }))
}
