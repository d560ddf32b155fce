'use strict'
// Discovery (the spec's "Discovery"): the `Link: <hub>; rel="mercure"` header
// an app adds to the responses of the resources a client may subscribe to.
const { invalid } = require('../errors')

/**
 * Adds `Link: <hubUrl>; rel="mercure"` to a response, beside any Link it
 * already has. Returns the response.
 * @param {import('node:http').ServerResponse | { header: Function, getHeader: Function }} res
 *   a node or Express response, or a Fastify reply
 * @param {string} hubUrl the hub's URL, absolute or relative to the resource
 */
function mercureLink (res, hubUrl) {
  if (typeof hubUrl !== 'string' || hubUrl === '' || /[<>\s]/.test(hubUrl)) {
    throw invalid('ERR_SSE_INVALID_ARGUMENT', 'a URL without "<", ">" or white space', 'hubUrl', hubUrl)
  }
  const node = res !== null && typeof res === 'object' && typeof res.setHeader === 'function'
  const fastify = !node && res !== null && typeof res === 'object' && typeof res.header === 'function' && typeof res.getHeader === 'function'
  if (!node && !fastify) throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an http.ServerResponse or a Fastify reply', 'res', res)
  const link = `<${hubUrl}>; rel="mercure"`
  const had = res.getHeader('link')
  const value = had === undefined ? link : [].concat(had, link)
  if (node) res.setHeader('link', value)
  else res.header('link', value)
  return res
}

module.exports = { mercureLink }
