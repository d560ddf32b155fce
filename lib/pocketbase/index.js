'use strict'
// sse-fanout/pocketbase: the PocketBase realtime protocol (GET and POST
// /api/realtime) on a Hub, so the official `pocketbase` JS SDK works unchanged.
// The wire format and the status codes follow PocketBase (README.md,
// "PocketBase realtime"). Rules, filters and field lists run natively
// (src/pocketbase/pb_index.hpp): a record event is parsed once and encoded
// once per distinct subscription string; the client id goes out as each
// connection's own `id:` line in front of the shared frame.
//
// The layer, one concern per file:
//   realtime.js      the Realtime: clients, subscriptions, auth updates
//   native-index.js  the native subscription index, reached through the
//                    hub's internal API (hubInternals, lib/hub.js)
//   http.js          POST body reading and binding, PocketBase's error answers
//   routes.js        the Fastify plugin and the Express middleware
//   filter.js        compileFilter() for an app's own API
//   options.js       defaults, budgets, option checks
//   records.js       checks of auth records, collections, record events
const { Realtime, newClientId } = require('./realtime')
const { fastifyRealtime, expressRealtime } = require('./routes')
const { compileFilter } = require('./filter')
const { DEFAULTS } = require('./options')

module.exports = { Realtime, fastifyRealtime, expressRealtime, compileFilter, newClientId, DEFAULTS }
