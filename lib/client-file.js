'use strict'
// The browser module (lib/client/index.mjs, `sse-fanout/client`) served over
// HTTP, so a page without a bundler can `import { SseClient } from
// '/sse-fanout-client.js'`. Shared by serveClient() (node:http, exported from
// 'sse-fanout'), the Fastify plugin's `clientPath` option and client() of
// sse-fanout/express; each answers the same bytes with the same headers.
//
// The file is read once, on the first request (a failed read is not kept:
// the next request tries again), and hashed for a strong ETag; a request
// whose If-None-Match names it gets 304 with no body.
//
// Cache-Control is `no-cache`: the path is the app's choice and carries no
// version, so a max-age would keep a browser on the old module for that long
// after the package is upgraded, talking to a server that may have changed.
// With the ETag, revalidating costs a 304 per page load. An app that serves
// the module under a versioned path may want a long max-age: a cache-control
// it set on the response before (res.setHeader, reply.header, res.set) is kept.
//
// The handlers do not route: whatever reaches them is answered. GET and HEAD
// get the module; serveClient() answers any other method 405 (Allow: GET,
// HEAD); Fastify and Express answer those as they do for any GET route.
const crypto = require('node:crypto')
const fs = require('node:fs')
const path = require('node:path')
const { invalid } = require('./errors')

const CLIENT_PATH = path.join(__dirname, 'client', 'index.mjs')
const ALLOW = 'GET, HEAD'

/**
 * Headers of a 200 or 304 answer, but content-length; cache-control only
 * when the app has not set one (hasCacheControl).
 */
function headersOf (etag, hasCacheControl) {
  const headers = {
    'content-type': 'text/javascript; charset=utf-8',
    etag,
    'x-content-type-options': 'nosniff'
  }
  if (!hasCacheControl) headers['cache-control'] = 'no-cache'
  return headers
}

/**
 * Whether If-None-Match names etag (weak comparison, RFC 9110 13.1.2: a
 * W/ prefix is ignored; `*` matches any current representation).
 * @param {string | string[] | undefined} header
 * @param {string} etag
 */
function matches (header, etag) {
  if (header === undefined) return false
  const value = Array.isArray(header) ? header.join(',') : String(header)
  if (value.trim() === '*') return true
  // An entity tag is a quoted string without a comma inside: split on commas.
  for (const part of value.split(',')) {
    const tag = part.trim()
    if ((tag.startsWith('W/') ? tag.slice(2) : tag) === etag) return true
  }
  return false
}

/**
 * Writes a loaded file ({ body, etag }) as the answer to a GET or HEAD: 304
 * when If-None-Match names its ETag, else 200 (no body for HEAD). Headers the
 * app set before are kept (writeHead merges them), but those it replaces.
 */
function writeFile (req, res, { body, etag }) {
  if (res.headersSent || res.destroyed || res.writableEnded) return // the client went away
  const headers = headersOf(etag, res.hasHeader('cache-control'))
  if (matches(req.headers['if-none-match'], etag)) {
    res.writeHead(304, headers)
    res.end()
    return
  }
  res.writeHead(200, { ...headers, 'content-length': body.length })
  res.end(req.method === 'HEAD' ? undefined : body)
}

/** A short plain-text answer (405, 500), unless the response is gone. */
function writeText (res, statusCode, text, headers = {}) {
  if (res.headersSent || res.destroyed || res.writableEnded) return
  res.writeHead(statusCode, { ...headers, 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

/**
 * A served file: load() reads and hashes it once; answer(req, res) is the
 * node:http handler. One per file path (`client` below is the module's).
 * @param {string} file an absolute path
 */
function servedFile (file) {
  let loading = null

  /** @returns {Promise<{ body: Buffer, etag: string }>} */
  function load () {
    if (loading === null) {
      loading = fs.promises.readFile(file).then((body) => {
        return { body, etag: `"${crypto.createHash('sha256').update(body).digest('base64url')}"` }
      })
      loading.catch(() => { loading = null }) // the next request tries again
    }
    return loading
  }

  /**
   * The node:http handler: 200 (GET, HEAD), 304, 405 or, when the file cannot
   * be read, 500. Resolves once it has answered (never rejects).
   * @param {import('node:http').IncomingMessage} req
   * @param {import('node:http').ServerResponse} res
   */
  function answer (req, res) {
    if (req === null || typeof req !== 'object' || typeof req.method !== 'string') {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an http.IncomingMessage', 'req', req)
    }
    if (res === null || typeof res !== 'object' || typeof res.writeHead !== 'function') {
      throw invalid('ERR_SSE_INVALID_ARGUMENT', 'an http.ServerResponse', 'res', res)
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      req.resume() // a body nobody reads would stall the keep-alive connection
      writeText(res, 405, 'Method Not Allowed', { allow: ALLOW })
      return Promise.resolve()
    }
    return load().then((loaded) => writeFile(req, res, loaded), () => writeText(res, 500, 'Internal Server Error'))
  }

  return { load, answer }
}

const client = servedFile(CLIENT_PATH)

/**
 * Serves the browser module (sse-fanout/client) for node:http: mount it at a
 * path of the app's choosing. Resolves once it has answered.
 * @param {import('node:http').IncomingMessage} req
 * @param {import('node:http').ServerResponse} res
 * @returns {Promise<void>}
 */
function serveClient (req, res) {
  return client.answer(req, res)
}

module.exports = { serveClient, loadClient: client.load, servedFile, writeFile, headersOf, matches, CLIENT_PATH, ALLOW }
