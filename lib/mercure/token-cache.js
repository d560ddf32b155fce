'use strict'
// Verified Mercure tokens, so that a connect storm carrying one token (every
// tab of an app, a reconnect wave after a deploy) verifies its signature once:
// a bounded LRU of results, and the verifications under way, which every
// request with the same token awaits instead of starting its own.
//
// Only successes are kept: a failure costs the next request a verification
// again, but an attacker cannot fill the cache, since only tokens signed with
// the hub's key get in. An entry leaves at the token's `exp` (plus the clock
// tolerance), when it is the least recently used one past maxEntries, or past
// maxBytes.

// The claims are parsed from the token, so they are smaller than it; a string
// of the token's length for the key, plus the claims' strings (up to twice as
// many bytes in a two-byte string), plus the objects around them.
const ENTRY_OVERHEAD_BYTES = 256
const costOf = (key) => 3 * key.length + ENTRY_OVERHEAD_BYTES

class VerifiedTokenCache {
  /**
   * @param {{ maxEntries?: number, maxBytes?: number, now?: () => number }} [limits]
   *   maxEntries 0 keeps nothing (verifications under way are still shared)
   */
  constructor ({ maxEntries = 10000, maxBytes = 32 * 1024 * 1024, now = Date.now } = {}) {
    this.maxEntries = maxEntries
    this.maxBytes = maxBytes
    this.now = now
    this.bytes = 0
    this.entries = new Map() // key -> { value, expiresAtMs, cost }, oldest use first
    this.pending = new Map() // key -> Promise of { value, expiresAtMs }
  }

  get size () { return this.entries.size }

  /** The cached value, or undefined (absent or expired). A hit becomes the most recently used. */
  get (key) {
    const entry = this.entries.get(key)
    if (entry === undefined) return undefined
    this.entries.delete(key)
    if (entry.expiresAtMs <= this.now()) {
      this.bytes -= entry.cost
      return undefined
    }
    this.entries.set(key, entry)
    return entry.value
  }

  set (key, value, expiresAtMs) {
    const old = this.entries.get(key)
    if (old !== undefined) {
      this.entries.delete(key)
      this.bytes -= old.cost
    }
    const cost = costOf(key)
    if (this.maxEntries === 0 || cost > this.maxBytes || expiresAtMs <= this.now()) return
    this.entries.set(key, { value, expiresAtMs, cost })
    this.bytes += cost
    this._evict()
  }

  // Drops the least recently used entries until both bounds hold.
  _evict () {
    for (const [key, entry] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.bytes <= this.maxBytes) return
      this.entries.delete(key)
      this.bytes -= entry.cost
    }
  }

  /**
   * The value for key: cached, or the verification under way for the same
   * key, or `verify()` started now (resolving to { value, expiresAtMs }). A
   * rejection reaches every waiter and is not cached.
   */
  async getOrVerify (key, verify) {
    const cached = this.get(key)
    if (cached !== undefined) return cached
    let pending = this.pending.get(key)
    if (pending === undefined) {
      pending = this._verify(key, verify)
      this.pending.set(key, pending)
    }
    return (await pending).value
  }

  async _verify (key, verify) {
    try {
      const result = await verify()
      this.set(key, result.value, result.expiresAtMs)
      return result
    } finally {
      this.pending.delete(key)
    }
  }
}

module.exports = { VerifiedTokenCache }
