import { expectType, expectError } from 'tsd'
import http from 'node:http'
import Fastify from 'fastify'
import express from 'express'
import { Hub } from '../..'
import { MercureHub, fastifyMercure, expressMercure, mercureLink, DEFAULTS, type MercureUpdate } from '../../lib/mercure'

const mercure = new MercureHub({
  publisherJwt: { key: '!ChangeThisMercureHubJWTSecretKey!' },
  subscriberJwt: { key: 'PEM', alg: 'RS256' },
  anonymous: true,
  cors: { origins: ['https://app.example.com'] },
  maxBodyBytes: 65536,
  hubOptions: { heartbeatMs: 15000 }
})
expectType<Hub>(mercure.hub)
expectType<number>(mercure.size)
expectType<string>(mercure.options.path)
new MercureHub({ hub: new Hub({ history: true }), publisherJwt: null, subscriberJwt: null, anonymous: true })
expectError(new MercureHub({ publisherJwt: { key: 'k', alg: 'HS999' } }))
expectError(new MercureHub({ cors: ['https://a.example'] }))
expectError(new MercureHub({ maxBodyBytes: '1mb' }))

expectType<string>(mercure.publish({ topic: 'https://example.com/books/1', data: { title: 'x' } }))
mercure.publish({ topics: ['a', 'b'], data: 'x', private: true, id: 'urn:x', type: 'book', retry: 1000 })
expectError(mercure.publish({ data: 'no topic' }))
expectError(mercure.publish({ topic: 'a', topics: ['b'] }))
expectError(mercure.publish({ topic: 'a', private: 'yes' }))
const update: MercureUpdate = { topic: 'a' }
mercure.publish(update)

http.createServer((req, res) => {
  if (!mercure.handle(req, res)) mercureLink(res, '/.well-known/mercure').end('page')
})
expectType<{ profiles: number, selectors: number, templates: number }>(mercure.stats())
expectType<Promise<void>>(mercure.close())

const app = Fastify()
app.register(fastifyMercure, { anonymous: true, path: '/hub' })
app.register(fastifyMercure, { mercure })
app.get('/', (request, reply) => { mercureLink(reply, '/hub').send('ok') })
expectType<MercureHub>(app.mercure)

const eapp = express()
eapp.use(expressMercure(mercure))
expectError(expressMercure({}))
expectType<string>(DEFAULTS.path)
