'use strict'
// The deterministic event sequence of the resume tests: event k (k = 1, 2, ...)
// is published on topicOf(k) (null: a broadcast) for usersOf(k) (undefined:
// everyone), with data String(k); with a fresh history its wire id is
// `<epoch>-<k>`. Both the publishing process and the checking test use it.

const TOPICS = ['a', 'b', 'c/x', 'c/y/z', 'd']

function topicOf (k) { return k % 11 === 0 ? null : TOPICS[k % 5] }
function usersOf (k) { return k % 7 === 0 ? ['u1'] : undefined }

// What a stream of `topics` (exact or "prefix/*") and `user` gets live.
function matches (k, topics, user) {
  const users = usersOf(k)
  if (users !== undefined && !users.includes(user)) return false
  const topic = topicOf(k)
  if (topic === null) return true
  return topics.some((t) => t === topic || (t.endsWith('/*') && topic.length > t.length - 1 && topic.startsWith(t.slice(0, -1))))
}

// The subscription profiles of the resume clients: exact topics, patterns,
// private events for u1 only.
const PROFILES = [
  { topics: ['a', 'c/*'], user: 'u1' },
  { topics: ['b'], user: 'u2' },
  { topics: ['c/y/*', 'd'] },
  { topics: ['a', 'b', 'c/x', 'd'], user: 'u1' }
]

module.exports = { topicOf, usersOf, matches, PROFILES }
