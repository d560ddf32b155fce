import { expectType, expectError, expectAssignable } from 'tsd'
import http from 'node:http'
import https from 'node:https'
import express, { type Request, type RequestHandler } from 'express'
import { Hub, type Connection } from '../..'
import sse from '../../lib/express'
import { sse as namedSse, closeWithServer, client } from '../../lib/express'
import sseRequired = require('../../lib/express')

const hub = new Hub()

// Both shapes of the module: the function itself, and its properties.
expectType<typeof sse>(namedSse)
expectType<typeof sse>(sseRequired.sse)
expectType<typeof closeWithServer>(sseRequired.closeWithServer)
expectType<typeof closeWithServer>(sse.closeWithServer)
const { sse: destructured, closeWithServer: destructuredClose } = sseRequired
expectType<RequestHandler>(destructured(hub))
expectType<() => void>(destructuredClose(hub, http.createServer()))

// The middleware is a RequestHandler and fits an Express route.
expectType<RequestHandler>(sse(hub))
expectAssignable<RequestHandler>(sse(hub, { topics: 'news' }))
const app = express()
app.get('/events', sse(hub, { topics: ['news', 'chat/*'], user: 'u1', retry: 2000 }))
app.use('/sse', namedSse(hub))

// topics and user: static values, or (async) functions of the request.
sse(hub, {
  topics: (req) => {
    expectType<Request>(req)
    return String(req.query.topic)
  }
})
sse(hub, { topics: (req: Request) => [String(req.params.room), 'news'] })
sse(hub, { topics: async () => ['a', 'b'] })
sse(hub, { topics: () => Promise.resolve('a') })
sse(hub, { user: (req) => req.get('x-user') })
sse(hub, { user: async () => undefined })
sse(hub, { user: async (req) => req.ip })

// Wrong option types.
expectError(sse(hub, { retry: '1' }))
expectError(sse(hub, { topics: 5 }))
expectError(sse(hub, { topics: [5] }))
expectError(sse(hub, { topics: () => 5 }))
expectError(sse(hub, { topics: async () => 5 }))
expectError(sse(hub, { user: 42 }))
expectError(sse(hub, { user: () => 42 }))
expectError(sse(hub, { users: ['u1'] }))
expectError(sse(hub, { transport: 'js' }))
expectError(sse({}))
expectError(sse())

// res.locals.sse, typed through SseLocals.
declare const res: express.Response<unknown, sse.SseLocals>
expectType<Connection>(res.locals.sse)

// closeWithServer: an http or https server; returns the undo function.
const undo = closeWithServer(hub, http.createServer(app))
expectType<() => void>(undo)
expectType<void>(undo())
expectType<() => void>(closeWithServer(hub, https.createServer({}, app)))
expectType<() => void>(closeWithServer(hub, app.listen(0)))
expectError(closeWithServer(hub, {}))
expectError(closeWithServer(http.createServer()))

// poll(): a catch-up poll middleware, options as sse() takes them (no retry).
expectType<RequestHandler>(sseRequired.poll(hub))
app.get('/poll', sse.poll(hub, { topics: (req) => String(req.query.topics).split(','), user: async (req) => req.get('x-user') }))
app.get('/poll2', sseRequired.poll(hub, { topics: ['news', 'chat/*'], user: 'u1' }))
expectError(sse.poll(hub, { retry: 1000 }))
expectError(sse.poll(hub, { topics: 5 }))
expectError(sse.poll(hub, { user: () => 42 }))
expectError(sse.poll({}))

// client(): a handler serving the browser module at the app's path.
expectType<RequestHandler>(client())
expectType<typeof client>(sse.client)
expectType<typeof client>(sseRequired.client)
app.get('/sse-fanout-client.js', client())
app.use('/assets/sse-client.js', sseRequired.client())
expectError(client(hub))
