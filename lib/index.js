'use strict'
const { Hub, DEFAULTS } = require('./hub')
const { SseError, codes } = require('./errors')
const { serveClient } = require('./client-file')
const { Listener } = require('./listener')

module.exports = { Hub, SseError, codes, defaults: DEFAULTS, serveClient, Listener }
