'use strict'
// Loads the compiled addon, or explains why it cannot.
//
// SSE_FANOUT_ADDON=/abs/path/sse_fanout.node loads that file instead of the
// one node-gyp-build finds in the package (build/Release, prebuilds/): the
// sanitizer run (scripts/sanitize-js.js) points it at an addon built with
// AddressSanitizer and UndefinedBehaviorSanitizer. The path must be absolute,
// so that a relative one cannot silently resolve against the wrong folder.
const path = require('node:path')
const { SseError } = require('./errors')

function loadExplicit (file) {
  if (!path.isAbsolute(file)) {
    throw new SseError('ERR_SSE_NATIVE_LOAD',
      `sse-fanout: SSE_FANOUT_ADDON must be an absolute path to a .node file, got "${file}".`)
  }
  try {
    return require(file)
  } catch (err) {
    throw new SseError('ERR_SSE_NATIVE_LOAD',
      `sse-fanout: the native addon named by SSE_FANOUT_ADDON (${file}) could not be loaded (${err.message}). ` +
      'Unset SSE_FANOUT_ADDON to use the addon built in the package folder' +
      (/asan|sanitizer/i.test(err.message)
        ? ', or preload the sanitizer runtime the addon was built with (LD_PRELOAD, as scripts/sanitize-js.js does).'
        : '.'))
  }
}

function load () {
  const explicit = process.env.SSE_FANOUT_ADDON
  if (explicit) return loadExplicit(explicit)
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
