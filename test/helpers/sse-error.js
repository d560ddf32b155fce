'use strict'
// throwsSse(fn, code, names, label): asserts fn throws an SseError with code
// (one of the documented codes), whose message matches every regex in names;
// returns the error.

const assert = require('node:assert/strict')
const { SseError, codes } = require('../..')

function throwsSse (fn, code, names = [], label = '') {
  let error
  try {
    fn()
  } catch (err) {
    error = err
  }
  assert.ok(error, `${label}: expected ${code}, nothing was thrown`)
  assert.ok(error instanceof SseError, `${label}: expected an SseError, got ${error && error.stack}`)
  assert.equal(error.name, 'SseError')
  assert.equal(error.code, code, `${label}: ${error.message}`)
  assert.ok(code in codes, `${code} is documented in codes`)
  for (const re of [].concat(names)) assert.match(error.message, re, `${label}: message names the argument`)
  return error
}

module.exports = { throwsSse }
