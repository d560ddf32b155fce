'use strict'
// Argument checks shared by the Hub and the framework integrations, so every
// entry point applies the same rules with the same wording.
const native = require('./native')
const { invalid } = require('./errors')

const MAX_TOPIC_BYTES = native.maxTopicBytes
const MAX_USER_BYTES = 1024
const LINE_BREAK_OR_NUL = /[\r\n\0]/

function checkTopic (topic, name) {
  if (typeof topic !== 'string') throw invalid('ERR_SSE_INVALID_TOPIC', 'a string', name, topic)
  if (topic.length === 0 || (topic.length * 3 > MAX_TOPIC_BYTES && Buffer.byteLength(topic) > MAX_TOPIC_BYTES) ||
      LINE_BREAK_OR_NUL.test(topic)) {
    throw invalid('ERR_SSE_INVALID_TOPIC', `a non-empty string of at most ${MAX_TOPIC_BYTES} bytes without CR, LF or NUL`, name, topic)
  }
  return topic
}

function checkTopics (topics, name) {
  if (typeof topics === 'string') return [checkTopic(topics, name)]
  if (!Array.isArray(topics)) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a topic string or an array of them', name, topics)
  for (let i = 0; i < topics.length; i++) checkTopic(topics[i], `${name}[${i}]`)
  return topics
}

function checkUser (user, name) {
  if (user === undefined || user === null) return undefined
  if (typeof user !== 'string' || user.length === 0 || Buffer.byteLength(user) > MAX_USER_BYTES) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', `a non-empty string of at most ${MAX_USER_BYTES} bytes`, name, user)
  }
  return user
}

// A reconnection delay: a number of ms, or a range { min, max } from which
// each connection draws its own (pickRetry), so a reconnect storm spreads out.
function checkRetry (retry, name) {
  if (retry === undefined) return -1
  if (retry !== null && typeof retry === 'object') {
    const { min, max } = retry
    if (!Number.isSafeInteger(min) || min < 0 || !Number.isSafeInteger(max) || max < min) {
      throw invalid('ERR_SSE_INVALID_RETRY', 'a non-negative integer (milliseconds) or { min, max } with integers 0 <= min <= max', name, retry)
    }
    return retry
  }
  if (!Number.isSafeInteger(retry) || retry < 0) {
    throw invalid('ERR_SSE_INVALID_RETRY', 'a non-negative integer (milliseconds) or { min, max } with integers 0 <= min <= max', name, retry)
  }
  return retry
}

/** The delay of one connection: checkRetry's value, a range drawn uniformly. */
function pickRetry (retry) {
  if (typeof retry === 'number') return retry
  return retry.min + Math.floor(Math.random() * (retry.max - retry.min + 1))
}

module.exports = { checkTopic, checkTopics, checkUser, checkRetry, pickRetry, MAX_TOPIC_BYTES, MAX_USER_BYTES, LINE_BREAK_OR_NUL }
