import { expectType, expectError, expectAssignable } from 'tsd'
import http from 'node:http'
import Fastify from 'fastify'
import express from 'express'
import { Hub } from '../..'
import {
  Realtime, compileFilter, fastifyRealtime, expressRealtime, newClientId,
  type Filter, type ClientInfo, type AuthRecord
} from '../../lib/pocketbase'

const realtime = new Realtime({
  authenticate: async (req) => (req.headers.authorization ? { id: 'u1', collectionId: 'pbc_1', role: 'admin' } : null),
  idleTimeoutMs: 60_000,
  maxLifetimeMs: 0,
  checkIp: false,
  hubOptions: { threads: 1, heartbeatMs: 15000 }
})
expectType<Hub>(realtime.hub)
expectType<number>(realtime.size)
new Realtime({ hub: new Hub() })
expectError(new Realtime({ idleTimeoutMs: '5' }))
expectError(new Realtime({ authenticate: 'yes' }))

http.createServer(realtime.handler)
realtime.broadcastRecord({ name: 'posts', id: 'pbc_1', listRule: '', viewRule: null }, 'create', { id: 'r1', title: 'x' })
expectError(realtime.broadcastRecord({ name: 'posts' }, 'upsert', { id: 'r1' }))
expectError(realtime.broadcastRecord({ name: 'posts' }, 'create', { title: 'no id' }))
realtime.publish('custom', { a: 1 })
realtime.publish('custom', 'text', { event: 'named' })
expectType<boolean>(realtime.sendToClient('cid', { url: '/' }, { event: '@oauth2' }))
realtime.setSubscriptions('cid', ['posts/*'], { id: 'u', collectionId: 'c' })
expectError(realtime.setSubscriptions('cid', 'posts/*'))
expectType<ClientInfo | undefined>(realtime.client('cid'))
expectType<{ clients: number, keys: number, groups: number, identities: number, compiledBytes: number }>(realtime.stats())
expectType<number>(realtime.options.maxFilterNodesPerClient)
expectType<number>(realtime.options.maxSubscriptionsPerIp)
expectError(new Realtime({ maxFilterNodesPerIp: '400' }))
expectError(new Realtime({ maxCompiledBytes: 'big' }))
expectType<Promise<void>>(realtime.close())

realtime.on('disconnect', ({ clientId, reason }) => {
  expectType<string>(clientId)
  expectAssignable<string>(reason)
})
realtime.on('invalidSubscription', ({ subscription, message }) => {
  expectType<string>(subscription)
  expectType<string>(message)
})
expectError(realtime.on('nope', () => {}))

const filter = compileFilter('owner = @request.auth.id')
expectType<Filter>(filter)
expectType<boolean>(filter.test({ owner: 'u1' }, { id: 'u1', collectionId: 'c' }))
expectType<boolean>(filter.test({ owner: 'u1' }))
expectError(filter.test({ owner: 'u1' }, { id: 'u1' }))
expectType<string>(newClientId())
expectAssignable<AuthRecord>({ id: 'x', collectionId: 'y', collectionName: '_superusers' })

const app = Fastify()
app.register(fastifyRealtime, { authenticate: () => null, path: '/api/realtime' })
app.register(fastifyRealtime, { realtime })
expectType<Realtime>(app.pocketbase)

express().use(expressRealtime(realtime))
express().use(expressRealtime(realtime, { path: '/rt' }))

expectType<string[]>(realtime.clientsOf('pbc_1', 'u1'))
expectType<number>(realtime.updateAuth({ id: 'u1', collectionId: 'pbc_1', role: 'admin' }))
expectError(realtime.updateAuth({ id: 'u1' }))
expectType<number>(realtime.revokeAuth('pbc_1', 'u1'))
expectError(realtime.revokeAuth('pbc_1'))
realtime.connect({} as http.IncomingMessage, {} as http.ServerResponse, { ip: '127.0.0.1' })
new Realtime({ allowFormBodies: true, clientIp: (request) => request.ip })
expectError(new Realtime({ allowFormBodies: 'yes' }))
new Realtime({ authorizeTopic: (topic, { auth, clientId }) => topic === clientId || auth?.role === 'admin' })
new Realtime({ authorizeTopic: async (topic, context) => context.request !== undefined })
expectError(new Realtime({ authorizeTopic: true }))
expectAssignable<void | Promise<void>>(realtime.setSubscriptions('cid', ['a']))
realtime.on('invalidSubscription', ({ clientId }) => expectType<string>(clientId))
expectType<boolean>(realtime.closed)
