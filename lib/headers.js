'use strict'
// The response headers the hub decides for itself, in one place. Two lists,
// because two questions are asked:
//  - HUB_HEAD_HEADERS: written by the hub in the head of a taken-over stream
//    (takeover.js, buildHead); a value the app set is dropped. The SSE
//    essentials and the framing. (cache-control is the hub's default too, but
//    the app's own value is kept.)
//  - NOT_COPIED_FROM_REPLY: left out when a framework reply's headers
//    (Fastify's reply.getHeaders()) are copied onto the raw response before
//    hub.accept(): the framing and type the framework worked out for a
//    payload of its own, wrong for a stream. The other hub headers are
//    copied: buildHead drops them on a taken-over socket, and on the JS
//    transport writeJsHead sets what the stream needs.
const NOT_COPIED_FROM_REPLY = new Set(['content-length', 'transfer-encoding', 'content-type'])
const HUB_HEAD_HEADERS = new Set([...NOT_COPIED_FROM_REPLY, 'connection', 'keep-alive', 'x-accel-buffering'])

module.exports = { HUB_HEAD_HEADERS, NOT_COPIED_FROM_REPLY }
