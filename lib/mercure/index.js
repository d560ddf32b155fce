'use strict'
// sse-fanout/mercure: the Mercure protocol (draft-dunglas-mercure-07, as the
// reference hub v0.24.2 serves it) on a Hub, so any language publishes with
// one form POST and a JWT, and any EventSource subscribes (docs/mercure.md).
// Selectors (exact, `*`, URI templates), private updates and replay run
// natively (src/mercure): a template is matched once per update, not once per
// subscriber.
//
// The layer, one concern per file:
//   mercure-hub.js     the MercureHub: subscribe, publish, close
//   native-mercure.js  the native selector index, reached through the hub's
//                      internal API (hubInternals, lib/hub.js)
//   auth.js            tokens: where they come from, jose verification, 401/403
//   keys.js            verification keys from options or MERCURE_* variables
//   token-cache.js     verified tokens, once each
//   update.js          what makes an update valid (POST and publish())
//   form.js            the POST body: media type, bounded read, Go's form parsing
//   cors.js            CORS and preflights
//   http.js            the plain-text answers and the stream's headers
//   routes.js          the Fastify plugin and the Express middleware
//   discovery.js       mercureLink(): the Link header for app responses
//   options.js         defaults, budgets, option checks
const { MercureHub } = require('./mercure-hub')
const { fastifyMercure, expressMercure } = require('./routes')
const { mercureLink } = require('./discovery')
const { DEFAULTS } = require('./options')

module.exports = { MercureHub, fastifyMercure, expressMercure, mercureLink, DEFAULTS }
