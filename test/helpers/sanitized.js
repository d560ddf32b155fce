'use strict'
// True when the suite runs against the ASan+UBSan addon (scripts/sanitize-js.js
// sets SSE_FANOUT_SANITIZED=1). Times and RSS measured there are the
// sanitizer's (shadow memory, a 256 MiB quarantine of freed blocks, several
// times slower code), so tests assert them only on the normal build; every
// other check of those tests still runs under the sanitizers.
const sanitized = process.env.SSE_FANOUT_SANITIZED === '1'

// What the test process may carry that a program it starts (chromium,
// redis-server, python3, curl) must not inherit: under scripts/sanitize-js.js,
// LD_PRELOAD maps libasan into every process, and such a program then fails
// to start or aborts.
const SANITIZER_VARIABLES = ['LD_PRELOAD', 'ASAN_OPTIONS', 'UBSAN_OPTIONS', 'NODE_OPTIONS']

/** process.env (plus extra) without the sanitizer's variables, for a program the tests start. */
function unsanitizedEnv (extra = {}) {
  const env = { ...process.env, ...extra }
  for (const name of SANITIZER_VARIABLES) delete env[name]
  return env
}

module.exports = { sanitized, unsanitizedEnv }
