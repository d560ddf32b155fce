'use strict'
// The options of a Realtime: their defaults, the subscription budgets, and the
// checks that turn what the app passed into the frozen `realtime.options` and
// the callbacks (README.md and docs, "PocketBase realtime").
const { Hub } = require('../hub')
const { SseError, invalid } = require('../errors')

const DEFAULTS = Object.freeze({
  idleTimeoutMs: 5 * 60 * 1000,
  maxLifetimeMs: 30 * 60 * 1000,
  checkIp: true,
  allowFormBodies: false,
  maxBodyBytes: 1024 * 1024,
  // Subscription budgets (src/pocketbase/pb_index.hpp, PbLimits): SDK apps hold
  // fewer than 20 subscriptions; plain keys stay under PocketBase's 1000.
  maxOptionSubscriptionsPerClient: 100,
  maxFilterNodesPerClient: 200,
  maxCompiledBytesPerClient: 1024 * 1024,
  // Hub-wide: 1,000,000 / maxSubscriptionsPerIp = 200 addresses to fill it
  // (memory stays capped by maxCompiledBytes: 256 MiB / 4 MiB = 64 addresses).
  maxDistinctSubscriptions: 1000000,
  maxCompiledBytes: 256 * 1024 * 1024,
  // The same sums over every stream of one client address (clientIp): one
  // address may open maxConnectionsPerIp (256) streams. A few clients' worth,
  // so a NAT'd office fits; behind a proxy clientIp must give the real address.
  maxOptionSubscriptionsPerIp: 200,
  maxFilterNodesPerIp: 400,
  maxCompiledBytesPerIp: 4 * 1024 * 1024,
  maxSubscriptionsPerIp: 5000
})

// Status name -> [option, what it counts] for a refused set.
const BUDGETS = {
  TOO_MANY_OPTION_SUBSCRIPTIONS: ['maxOptionSubscriptionsPerClient', 'subscriptions with options per client'],
  CLIENT_FILTER_BUDGET: ['maxFilterNodesPerClient', 'filter nodes per client'],
  CLIENT_MEMORY_BUDGET: ['maxCompiledBytesPerClient', 'compiled bytes per client'],
  TOO_MANY_DISTINCT_SUBSCRIPTIONS: ['maxDistinctSubscriptions', 'distinct subscriptions on this server'],
  SUBSCRIPTION_MEMORY_BUDGET: ['maxCompiledBytes', 'compiled subscription bytes on this server'],
  TOO_MANY_IP_OPTION_SUBSCRIPTIONS: ['maxOptionSubscriptionsPerIp', 'subscriptions with options per client address'],
  IP_FILTER_BUDGET: ['maxFilterNodesPerIp', 'filter nodes per client address'],
  IP_MEMORY_BUDGET: ['maxCompiledBytesPerIp', 'compiled bytes per client address'],
  TOO_MANY_IP_SUBSCRIPTIONS: ['maxSubscriptionsPerIp', 'subscriptions per client address']
}
// The budget options, in the order the native index reads them (native-index.js).
const BUDGET_OPTIONS = ['maxOptionSubscriptionsPerClient', 'maxFilterNodesPerClient', 'maxCompiledBytesPerClient',
  'maxDistinctSubscriptions', 'maxCompiledBytes', 'maxOptionSubscriptionsPerIp', 'maxFilterNodesPerIp',
  'maxCompiledBytesPerIp', 'maxSubscriptionsPerIp']

function intOption (options, name) {
  const value = options[name] === undefined ? DEFAULTS[name] : options[name]
  if (!Number.isInteger(value) || value < 0 || value > 2 ** 31 - 1) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `an integer between 0 and ${2 ** 31 - 1}`, `options.${name}`, value)
  }
  return value
}

/**
 * The default options.clientIp: the framework request's ip (Fastify's
 * request.ip, Express's req.ip: both follow their trust-proxy setting), else
 * the socket's remote address.
 */
function defaultClientIp (request) {
  if (typeof request.ip === 'string' && request.ip !== '') return request.ip
  return (request.raw || request).socket?.remoteAddress || ''
}

/**
 * Checks the options given to `new Realtime(options)`. Returns the frozen
 * `options` (defaults filled in), the callbacks (defaults filled in), and the
 * hub given or the options of the hub to make (undefined: the Hub's own).
 */
function readOptions (options) {
  if (options === null || typeof options !== 'object') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an options object', 'options', options)
  const { hub, hubOptions, authenticate, clientIp, checkIp, allowFormBodies, authorizeTopic } = options
  if (hub !== undefined && !(hub instanceof Hub)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a Hub', 'options.hub', hub)
  if (hub !== undefined && hubOptions !== undefined) {
    throw new SseError('ERR_SSE_INVALID_ARGUMENT', 'Expected either options.hub or options.hubOptions but received both')
  }
  if (authenticate !== undefined && typeof authenticate !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a function (request) => auth record | null', 'options.authenticate', authenticate)
  }
  if (authorizeTopic !== undefined && typeof authorizeTopic !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a function (topic, { auth, clientId, request }) => boolean | Promise<boolean>', 'options.authorizeTopic', authorizeTopic)
  }
  if (clientIp !== undefined && typeof clientIp !== 'function') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a function (request) => string', 'options.clientIp', clientIp)
  }
  if (checkIp !== undefined && typeof checkIp !== 'boolean') throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', 'options.checkIp', checkIp)
  if (allowFormBodies !== undefined && typeof allowFormBodies !== 'boolean') {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a boolean', 'options.allowFormBodies', allowFormBodies)
  }
  return {
    options: Object.freeze({
      idleTimeoutMs: intOption(options, 'idleTimeoutMs'),
      maxLifetimeMs: intOption(options, 'maxLifetimeMs'),
      maxBodyBytes: Math.max(1, intOption(options, 'maxBodyBytes')),
      checkIp: checkIp === undefined ? DEFAULTS.checkIp : checkIp,
      allowFormBodies: allowFormBodies === undefined ? DEFAULTS.allowFormBodies : allowFormBodies,
      ...Object.fromEntries(BUDGET_OPTIONS.map((name) => [name, intOption(options, name)]))
    }),
    authenticate: authenticate || (() => null),
    authorizeTopic: authorizeTopic || null,
    clientIp: clientIp || defaultClientIp,
    hub,
    hubOptions
  }
}

module.exports = { DEFAULTS, BUDGETS, BUDGET_OPTIONS, readOptions }
