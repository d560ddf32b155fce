'use strict'
// JavaScript style: neostandard (the successor of standard, maintained by the
// Node.js community: no semicolons, two spaces, single quotes) over the
// library, its tests, scripts, benchmarks and examples. `npm run lint`.
const neostandard = require('neostandard')

module.exports = [
  ...neostandard({
    ts: true,
    ignores: ['build*/**', 'bench/node_modules/**', 'bench/results/**', 'fuzz/**', 'coverage/**']
  }),
  {
    // tsd files state types: `new X()` and `void promise` are the assertions.
    files: ['test/types/**/*.ts'],
    rules: { 'no-new': 'off', 'no-void': 'off', 'no-useless-return': 'off' }
  }
]
