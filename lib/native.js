'use strict'
// Loads the compiled addon, or explains why it cannot.
const path = require('node:path')
const { SseError } = require('./errors')

function load () {
  try {
    return require('node-gyp-build')(path.join(__dirname, '..'))
  } catch (err) {
    throw new SseError('ERR_SSE_NATIVE_LOAD',
      `sse-fanout: the native addon could not be loaded (${err.message}). ` +
      'It is built by `npm install` (node-gyp, a C++20 compiler and the Node headers are needed); ' +
      'run `npm run build` in the package folder to rebuild it and see the compiler output.')
  }
}

module.exports = load()
