'use strict'
// sse-fanout/redis: the Redis bus (docs/redis.md). Many hubs, one stream of
// events with global ids, through one Redis.
//
//   const { Hub } = require('sse-fanout')
//   const { RedisBus } = require('sse-fanout/redis')
//   const bus = new RedisBus({ url: process.env.REDIS_URL })
//   const hub = new Hub({ history: true, bus })
//   await bus.ready() // optional: the hub works locally until Redis answers
//   hub.publish('orders', { id: 1 }) // null: the id comes back from Redis
//
// @redis/client is an optional peer dependency, required when a RedisBus is
// made. The format's helpers (keys, FCALL arguments, decoding, the function
// loader) are exported for cross-language tooling and tests.
const { RedisBus, DEFAULTS } = require('./bus')
const format = require('./format')

module.exports = {
  RedisBus,
  DEFAULTS,
  DEFAULT_PREFIX: format.DEFAULT_PREFIX,
  FORMAT_VERSION: format.FORMAT_VERSION,
  FUNCTION_NAME: format.FUNCTION_NAME,
  LIMITS: format.LIMITS,
  keysFor: format.keysFor,
  fcallCommand: format.fcallCommand,
  decodeEntry: format.decodeEntry,
  RejectedEntry: format.RejectedEntry,
  loadFunction: format.loadFunction
}
