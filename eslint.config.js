'use strict'
// JavaScript style: neostandard (the successor of standard, maintained by the
// Node.js community: no semicolons, two spaces, single quotes) over the
// library, its tests, scripts, benchmarks and examples. `npm run lint`.
const neostandard = require('neostandard')

// The flush obligation in one place (lib/native-calls.js): a mutating call on
// a native object made anywhere else would queue commands that no flush
// sends. By convention every name that holds a native object says so
// (`native`, `this._native`, `internals.native`, `nativeX`); on such a name,
// outside native-calls.js, only these read-only methods may be called.
const NATIVE_READ_ONLY = '^(has|subscriptions|stats|historyRead|lastVisibleId|resumes|replayStart|ref|unref|close|closeSync|error|test)$'
const NATIVE_CALL_MESSAGE = 'A mutating call on a native object goes through a NativeCalls (lib/native-calls.js: ' +
  'status/id/result), which schedules the flush; only read-only methods may be called directly.'
const nativeCallOutsideWrapper = (object) => ({
  selector: `CallExpression > MemberExpression.callee[property.name!=/${NATIVE_READ_ONLY}/]${object}`,
  message: NATIVE_CALL_MESSAGE
})

module.exports = [
  ...neostandard({
    ts: true,
    ignores: ['build*/**', 'bench/node_modules/**', 'bench/results/**', 'fuzz/**', 'coverage/**']
  }),
  {
    files: ['lib/**/*.js'],
    ignores: ['lib/native-calls.js'],
    rules: {
      'no-restricted-syntax': ['error',
        nativeCallOutsideWrapper('[object.name=/native/i]'), // native.x(), nativeIndex.x()
        nativeCallOutsideWrapper('[object.property.name=/native/i]')] // this._native.x(), internals.native.x()
    }
  },
  {
    // tsd files state types: `new X()` and `void promise` are the assertions.
    files: ['test/types/**/*.ts'],
    rules: { 'no-new': 'off', 'no-void': 'off', 'no-useless-return': 'off' }
  }
]
