'use strict'
const { Hub, DEFAULTS } = require('./hub')
const { SseError, codes } = require('./errors')

module.exports = { Hub, SseError, codes, defaults: DEFAULTS }
