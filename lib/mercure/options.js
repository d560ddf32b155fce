'use strict'
// The options of a MercureHub: their defaults, the budgets, and the checks
// that turn what the app passed into the frozen `mercure.options`. The
// authorization options (publisherJwt, subscriberJwt, anonymous, cookieName,
// allowQueryToken, publishOrigins, clockToleranceSec, maxCachedTokens) are
// auth.js's: read there, from the same object.
const { Hub } = require('../hub')
const { SseError, invalid } = require('../errors')
const { readCorsOptions } = require('./cors')

const DEFAULTS = Object.freeze({
  path: '/.well-known/mercure',
  // A form body: Caddy's Mercure module has no limit of its own (request_body
  // sets one); 1 MiB holds any update a hub should carry.
  maxBodyBytes: 1024 * 1024,
  // The native index's (src/mercure/mercure_index.hpp, MercureLimits): an
  // update is routed once per topic, a subscriber's selectors are held per
  // profile. The reference hub allows 1000 of each (publish.go
  // maxPublishTopics, subscribe.go maxQueryTopics); real clients send a few.
  maxTopicsPerUpdate: 32,
  maxSelectorsPerSubscriber: 32,
  // Hub-wide: distinct selectors held by the native index (templates are
  // compiled once each, and matched once each per update).
  maxDistinctSelectors: 100000,
  // Of those, URI templates, each counted once per expression: an update
  // tries every template whose literal prefix and suffix it has (about 70 ns
  // each, and a pass over the topic per expression), so this bounds what
  // subscribers can make each update cost (10000 alike: about 0.7 ms; 16
  // expressions each, counted once, made it 36 ms).
  maxDistinctTemplates: 10000,
  // One subscriber's topic selectors, their template expressions together:
  // a resume examines each update after its cursor with every one of them.
  maxExpressionsPerSubscriber: 64
})

const INT_LIMITS = {
  maxBodyBytes: [1, 2 ** 31 - 1],
  maxTopicsPerUpdate: [1, 100000],
  maxSelectorsPerSubscriber: [1, 100000],
  maxDistinctSelectors: [1, 1e7],
  maxDistinctTemplates: [1, 1e7],
  maxExpressionsPerSubscriber: [1, 100000]
}
const PATH = /^\/[^?#\s]*$/

function intOption (options, name) {
  const [min, max] = INT_LIMITS[name]
  const value = options[name] === undefined ? DEFAULTS[name] : options[name]
  if (!Number.isInteger(value) || value < min || value > max) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between ${min} and ${max}`, `options.${name}`, value)
  }
  return value
}

/** The path the protocol is served at: absolute, no query, no fragment, no space. */
function readPath (value, name = 'options.path') {
  const path = value === undefined ? DEFAULTS.path : value
  if (typeof path !== 'string' || !PATH.test(path)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an absolute path ("/.well-known/mercure")', name, path)
  return path
}

/**
 * A given hub: a Hub without a Redis bus. Mercure updates carry topics,
 * privacy and their own ids, which the bus does not carry (not in v1).
 */
function checkHub (hub) {
  if (!(hub instanceof Hub)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Hub', 'options.hub', hub)
  if (hub.stats().bus !== undefined) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT',
      'Expected a Hub without options.bus for options.hub: Mercure updates are not carried over the Redis bus (not implemented yet)')
  }
  return hub
}

/**
 * Checks the options given to `new MercureHub(options)`. Returns the frozen
 * `options` (defaults filled in), the CORS settings, and the hub given or the
 * options of the hub to make (history on unless hubOptions says otherwise).
 */
function readOptions (options) {
  if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
  const { hub, hubOptions } = options
  if (hub !== undefined && hubOptions !== undefined) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'Expected either options.hub or options.hubOptions but received both')
  }
  if (hubOptions !== undefined && (hubOptions === null || typeof hubOptions !== 'object')) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options.hubOptions', hubOptions)
  }
  return {
    options: Object.freeze({
      path: readPath(options.path),
      ...Object.fromEntries(Object.keys(INT_LIMITS).map((name) => [name, intOption(options, name)]))
    }),
    cors: readCorsOptions(options.cors),
    hub: hub === undefined ? undefined : checkHub(hub),
    hubOptions: { history: true, ...hubOptions }
  }
}

module.exports = { DEFAULTS, readOptions, readPath }
