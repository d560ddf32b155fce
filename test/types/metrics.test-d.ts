import { expectType, expectError, expectAssignable } from 'tsd'
import http, { type IncomingMessage, type ServerResponse } from 'node:http'
import express, { type RequestHandler } from 'express'
import Fastify, { type FastifyReply, type FastifyRequest } from 'fastify'
import { Registry, register, type OpenMetricsContentType, type PrometheusContentType } from 'prom-client'
import { Hub } from '../..'
import metrics from '../../lib/metrics'
import { metrics as namedMetrics } from '../../lib/metrics'
import metricsRequired = require('../../lib/metrics')

const hub = new Hub()

// Both shapes of the module.
expectType<typeof metrics>(namedMetrics)
expectType<typeof metrics>(metricsRequired.metrics)
expectType<typeof metrics>(metrics.metrics)

// The returned shape.
const m = metrics(hub)
expectType<metrics.HubMetrics>(m)
expectType<Registry>(m.registry)
expectType<Registry<PrometheusContentType>>(m.registry)
expectType<typeof register>(m.registry)
expectType<void | Promise<void>>(m.handler({} as IncomingMessage, {} as ServerResponse))
expectType<Promise<string>>(m.fastifyHandler({} as FastifyRequest, {} as FastifyReply))
expectType<void>(m.unregister())
expectError(m.registry = new Registry())

// Options.
const registry = new Registry()
expectType<Registry>(metrics(hub, { registry }).registry)
metrics(hub, { registry, prefix: 'chat_', labels: { hub: 'chat', region: 'eu' } })
metrics(hub, { prefix: '' })
metrics(hub, {})
const openMetrics = new Registry<OpenMetricsContentType>()
openMetrics.setContentType(Registry.OPENMETRICS_CONTENT_TYPE)
expectError(metrics<PrometheusContentType>(hub, { registry: openMetrics }))
expectType<Registry<OpenMetricsContentType>>(metrics(hub, { registry: openMetrics }).registry)

expectError(metrics(hub, { registry: {} }))
expectError(metrics(hub, { register: registry }))
expectError(metrics(hub, { prefix: 5 }))
expectError(metrics(hub, { labels: { hub: 1 } }))
expectError(metrics(hub, { labels: 'hub=chat' }))
expectError(metrics(hub, { retry: '1' }))
expectError(metrics({}))
expectError(metrics())

// The handlers fit node:http, Express and Fastify.
http.createServer(m.handler)
http.createServer((req, res) => { void m.handler(req, res) })
expectAssignable<RequestHandler>(m.handler)
express().get('/metrics', m.handler)
const app = Fastify()
app.get('/metrics', m.fastifyHandler)
app.route({ method: 'GET', url: '/m', handler: m.fastifyHandler })
