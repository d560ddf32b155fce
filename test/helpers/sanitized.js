'use strict'
// True when the suite runs against the ASan+UBSan addon (scripts/sanitize-js.js
// sets SSE_FANOUT_SANITIZED=1). Times and RSS measured there are the
// sanitizer's (shadow memory, a 256 MiB quarantine of freed blocks, several
// times slower code), so tests assert them only on the normal build; every
// other check of those tests still runs under the sanitizers.
const sanitized = process.env.SSE_FANOUT_SANITIZED === '1'

module.exports = { sanitized }
