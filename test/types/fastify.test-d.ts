import { expectType, expectError, expectAssignable } from 'tsd'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyReply } from 'fastify'
import { Hub, type Connection } from '../..'
import sseFanout from '../../lib/fastify'
import { sseFanout as named, default as defaultExport, type SseFanoutOptions } from '../../lib/fastify'
import sseRequired = require('../../lib/fastify')
import { RedisBus } from '../../lib/redis'

// The three ways to reach the plugin.
expectAssignable<FastifyPluginAsync<SseFanoutOptions>>(sseFanout)
expectAssignable<FastifyPluginAsync<SseFanoutOptions>>(named)
expectAssignable<FastifyPluginAsync<SseFanoutOptions>>(defaultExport)
expectAssignable<FastifyPluginAsync<SseFanoutOptions>>(sseRequired.default)
expectAssignable<FastifyPluginAsync<SseFanoutOptions>>(sseRequired.sseFanout)

const app = Fastify()

// Registering: no options, Hub options, or an existing hub.
app.register(sseFanout)
app.register(sseFanout, {})
app.register(sseFanout, { threads: 1, heartbeatMs: 5000, transport: 'js', decorator: 'events' })
app.register(named, { maxConnections: 10, prefix: '/sse' })
const hub = new Hub()
app.register(sseFanout, { hub })
app.register(sseFanout, { hub, decorator: 'chat' })
app.register(sseFanout, () => ({ threads: 2 }))
// clientPath: the browser module served at a path, with either kind of options.
app.register(sseFanout, { clientPath: '/sse-fanout-client.js' })
app.register(sseFanout, { hub, clientPath: '/assets/sse-client.js', decorator: 'sse2' })

// A Redis bus: a Hub option that needs history.
const bus = new RedisBus({ url: 'redis://127.0.0.1:6379' })
app.register(sseFanout, { history: true, bus })
app.register(sseFanout, { history: { maxEvents: 500 }, bus, threads: 1, decorator: 'shared' })
expectError(app.register(sseFanout, { bus }))
expectError(app.register(sseFanout, { history: false, bus }))
expectError(app.register(sseFanout, { hub, bus }))
expectError(app.register(sseFanout, { history: true, bus: {} }))

// Wrong option types, unknown options, and a hub together with Hub options.
expectError(app.register(sseFanout, { threads: 'two' }))
expectError(app.register(sseFanout, { transport: 'tcp' }))
expectError(app.register(sseFanout, { decorator: 5 }))
expectError(app.register(sseFanout, { hub: {} }))
expectError(app.register(sseFanout, { hub, threads: 2 }))
expectError(app.register(sseFanout, { hub, transport: 'js' }))
expectError(app.register(sseFanout, { topics: ['news'] }))
expectError(app.register(sseFanout, { clientPath: 5 }))
expectError(app.register(sseFanout, { clientPath: true }))

// The decorators.
expectType<Hub>(app.sse)
expectType<string | null | undefined>(app.sse.publish('news', { text: 'hi' }))
app.get('/events', (request, reply) => {
  const conn = reply.sse({ topics: ['news', 'chat/*'], user: 'u1', retry: 2000 })
  expectType<Connection>(conn)
  expectType<Connection>(reply.sse())
  expectType<Connection>(reply.sse({ topics: 'news' }))
  expectError(reply.sse({ topics: 5 }))
  expectError(reply.sse({ retry: '1' }))
  expectError(reply.sse({ users: ['u1'] }))
})
app.post('/news', async function (request) {
  expectType<FastifyInstance>(this)
  this.sse.publish('news', String(request.body))
  return { ok: true }
})
declare const reply: FastifyReply
expectType<Connection>(reply.sse())
expectType<(options?: import('../..').AcceptOptions) => Connection>(reply.sse)

// In a plugin of one's own (encapsulated or not), the decorators are typed too.
const plugin: FastifyPluginAsync = async (instance) => {
  expectType<Hub>(instance.sse)
  instance.sse.on('disconnect', ({ reason }) => { expectType<'client' | 'slow' | 'kicked' | 'error' | 'shutdown' | 'timeout'>(reason) })
  expectError(instance.sse.on('nonsense', () => {}))
}
app.register(plugin)

// reply.ssePoll(): a catch-up poll answered through the reply.
app.get('/poll', async (request, reply) => {
  expectType<Promise<FastifyReply>>(reply.ssePoll({ topics: ['news', 'chat/*'], user: 'u1' }))
  expectType<Promise<FastifyReply>>(reply.ssePoll())
  expectError(reply.ssePoll({ topics: 5 }))
  expectError(reply.ssePoll({ retry: 1000 }))
  return reply.ssePoll({ topics: 'news' })
})
