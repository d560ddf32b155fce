'use strict'
// A small chat on Fastify with sse-fanout: each room is a topic 'room/<name>',
// private messages go to one user's connections with publish(..., { users }).
//
//   GET  /                                 the page (index.html)
//   GET  /events?room=lobby&user=ann       SSE: the room's messages and ann's private ones
//   POST /rooms/:room/messages   { from, text }   to everyone in the room
//   POST /users/:user/messages   { from, text }   to that user only, whatever the room
//
//   node examples/fastify-chat/server.js     (PORT default 3000, HOST 127.0.0.1,
//                                             LOG_LEVEL=debug shows connections)
//   curl -N 'http://127.0.0.1:3000/events?room=lobby&user=ann'
//   curl -H 'content-type: application/json' -d '{"from":"bob","text":"hi"}' http://127.0.0.1:3000/rooms/lobby/messages
//   curl -H 'content-type: application/json' -d '{"from":"bob","text":"psst"}' http://127.0.0.1:3000/users/ann/messages
//
// There is no authentication here: the user is whatever the query string
// says. A real app would set request.user in its own auth hook and pass that.
const fs = require('node:fs')
const path = require('node:path')
const Fastify = require('fastify')
// The package's "./fastify" entry (package.json exports), as an app would write it.
const sseFanout = require('sse-fanout/fastify')

const port = Number(process.env.PORT || 3000)
const host = process.env.HOST || '127.0.0.1'
const page = fs.readFileSync(path.join(__dirname, 'index.html'))

const name = { type: 'string', pattern: '^[A-Za-z0-9_-]{1,32}$' }
const message = {
  type: 'object',
  required: ['from', 'text'],
  additionalProperties: false,
  properties: { from: name, text: { type: 'string', minLength: 1, maxLength: 2000 } }
}

const app = Fastify({ logger: { level: process.env.LOG_LEVEL || 'info' } })
app.register(sseFanout, { threads: 1 }) // Hub options; app.sse is the Hub

app.get('/', (request, reply) => {
  reply.type('text/html; charset=utf-8').send(page)
})

// Who is where, for the leave notices.
const members = new Map() // connection id -> { room, user }

app.get('/events', {
  schema: { querystring: { type: 'object', required: ['room', 'user'], properties: { room: name, user: name } } }
}, (request, reply) => {
  const { room, user } = request.query
  const conn = reply.sse({ topics: `room/${room}`, user, retry: 2000 })
  members.set(conn.id, { room, user })
  app.sse.publish(`room/${room}`, { room, user }, { event: 'join' })
})

app.post('/rooms/:room/messages', {
  schema: { params: { type: 'object', properties: { room: name } }, body: message }
}, async (request, reply) => {
  const { room } = request.params
  const { from, text } = request.body
  app.sse.publish(`room/${room}`, { room, from, text, at: Date.now() }, { event: 'message' })
  reply.code(202)
  return { ok: true }
})

app.post('/users/:user/messages', {
  schema: { params: { type: 'object', properties: { user: name } }, body: message }
}, async (request, reply) => {
  const { user } = request.params
  const { from, text } = request.body
  const data = { from, to: user, text, at: Date.now() }
  // To the recipient's connections in any room, and a copy to the sender's.
  app.sse.broadcast(data, { event: 'private', users: from === user ? [user] : [user, from] })
  reply.code(202)
  return { ok: true }
})

app.after(() => {
  app.sse.on('disconnect', ({ id }) => {
    const member = members.get(id)
    members.delete(id)
    if (member && !app.sse.closed) { // no notices once app.close() has begun
      app.sse.publish(`room/${member.room}`, member, { event: 'leave' })
    }
  })
})

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await app.close() // the plugin closes the hub: every stream ends properly
    process.exit(0)
  })
}

app.listen({ port, host }).catch((err) => {
  app.log.error(err)
  process.exit(1)
})
