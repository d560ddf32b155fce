'use strict'
// A Mercure hub (sse-fanout/mercure, docs/mercure.md) in a plain node:http
// server: publishers in any language POST a form with a JWT, any EventSource
// subscribes.
//
//   GET  /                     a page that subscribes with EventSource and shows
//                              the updates: /?topic=<selector> (repeatable;
//                              default `*`, every topic)
//   GET  /<any other path>     the same page; its default selector is its own
//                              URL (a resource's page follows that resource)
//   GET  /mercure-page.js      the page's script (the page runs no inline script)
//   GET|POST|OPTIONS /.well-known/mercure
//                              the protocol: subscribe, publish, CORS preflight
//   other methods              405
// Every answer but the protocol's carries the discovery header
// `Link: </.well-known/mercure>; rel="mercure"`.
//
// PORT (default 3000; 0 picks a free one), HOST (default 127.0.0.1).
//
// Keys, as the Mercure hub (Caddy) reads them:
//   MERCURE_PUBLISHER_JWT_KEY   required: the publishers' HMAC secret or public key
//   MERCURE_PUBLISHER_JWT_ALG   HS256 unless set (RS*, PS*, ES*, EdDSA take a PEM)
//   MERCURE_SUBSCRIBER_JWT_KEY  the subscribers' key; required unless MERCURE_ANONYMOUS=1
//   MERCURE_SUBSCRIBER_JWT_ALG  HS256 unless set
// MERCURE_ANONYMOUS=1 lets subscribers without a token in (the layer's
// `anonymous` option; they get public updates only). A subscriber's token
// comes from `Authorization: Bearer`, the `authorization` query parameter or
// the `mercureAuthorization` cookie, so the page receives private updates when
// the browser holds that cookie for this host.
// MERCURE_CORS_ORIGINS: space-separated origins allowed to subscribe and
// publish cross-origin (with credentials); none by default.
//
//   MERCURE_PUBLISHER_JWT_KEY='!ChangeThisMercureHubJWTSecretKey!' MERCURE_ANONYMOUS=1 \
//     node examples/mercure-hub.js
//   open http://127.0.0.1:3000/?topic=https://example.com/books/{id}
//   python3 test/helpers/mercure_publish.py --url http://127.0.0.1:3000/.well-known/mercure \
//     --key '!ChangeThisMercureHubJWTSecretKey!' --topic https://example.com/books/1 --data hello
const http = require('node:http')
const { MercureHub, mercureLink } = require('../lib/mercure')

const port = Number(process.env.PORT || 3000)
const host = process.env.HOST || '127.0.0.1'
const HUB_PATH = '/.well-known/mercure'
const anonymous = ['1', 'true', 'yes'].includes(String(process.env.MERCURE_ANONYMOUS || '').toLowerCase())
const corsOrigins = (process.env.MERCURE_CORS_ORIGINS || '').split(/\s+/).filter((origin) => origin !== '')

// The keys are read from the MERCURE_* variables by the layer (lib/mercure/keys.js),
// which checks each against its algorithm: a missing or unusable key stops
// the example here, with a message naming the variable.
let mercure
try {
  mercure = new MercureHub({
    path: HUB_PATH,
    anonymous,
    ...(corsOrigins.length > 0 ? { cors: { origins: corsOrigins } } : {})
    // The hub's defaults otherwise: history on (Last-Event-ID resumes), at
    // most 256 streams per client address (maxConnectionsPerIp; behind a
    // proxy, every client has the proxy's address: raise it there).
  })
} catch (err) {
  console.error(`mercure-hub: ${err.message}`)
  process.exit(1)
}

// The page: it reads its selectors from its own query string and subscribes
// to the hub with them. Same origin, so the browser sends the
// mercureAuthorization cookie with the EventSource request.
const PAGE = `<!doctype html>
<html lang="en">
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>sse-fanout Mercure hub</title>
<style>
  body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; max-width: 60rem }
  code, pre { font: 13px ui-monospace, monospace }
  #state { font-weight: bold }
  #updates li { border-bottom: 1px solid #ddd; padding: .3rem 0; list-style: none }
</style>
<h1>sse-fanout Mercure hub</h1>
<p>Subscribed to <code id="selectors"></code> at <code>${HUB_PATH}</code>: <span id="state">connecting</span></p>
<p>Add <code>?topic=&lt;selector&gt;</code> to this page's address to choose (exact topics, <code>*</code>, URI templates).</p>
<ol id="updates"></ol>
<script src="/mercure-page.js"></script>
`

const PAGE_SCRIPT = `'use strict'
/* global EventSource, document, location */
const selectors = new URLSearchParams(location.search).getAll('topic')
if (selectors.length === 0) selectors.push(location.pathname === '/' ? '*' : location.origin + location.pathname)
document.getElementById('selectors').textContent = selectors.join(' ')
const url = new URL(${JSON.stringify(HUB_PATH)}, location.href)
for (const s of selectors) url.searchParams.append('topic', s)
const state = document.getElementById('state')
const list = document.getElementById('updates')
const es = new EventSource(url)
es.onopen = () => { state.textContent = 'open' }
es.onerror = () => { state.textContent = es.readyState === EventSource.CLOSED ? 'refused (a token is needed?)' : 'reconnecting' }
es.onmessage = (e) => {
  const li = document.createElement('li')
  li.dataset.id = e.lastEventId
  const id = document.createElement('code')
  id.textContent = e.lastEventId
  const data = document.createElement('pre')
  data.textContent = e.data
  li.append(id, data)
  list.prepend(li)
}
`

// The page runs only its own script, talks only to its own origin.
const PAGE_CSP = [
  "default-src 'none'", "script-src 'self'", "style-src 'unsafe-inline'", "connect-src 'self'",
  "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'"
].join('; ')

const PAGE_FILE = { type: 'text/html; charset=utf-8', body: Buffer.from(PAGE) }
const SCRIPT_FILE = { type: 'text/javascript; charset=utf-8', body: Buffer.from(PAGE_SCRIPT) }

const server = http.createServer((req, res) => {
  if (mercure.handle(req, res)) return
  mercureLink(res, HUB_PATH)
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
    res.end('Method Not Allowed\n')
    return
  }
  const q = req.url.indexOf('?')
  const file = (q === -1 ? req.url : req.url.slice(0, q)) === '/mercure-page.js' ? SCRIPT_FILE : PAGE_FILE
  res.writeHead(200, {
    'content-type': file.type,
    'content-length': file.body.length,
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'content-security-policy': PAGE_CSP,
    'referrer-policy': 'no-referrer'
  })
  res.end(req.method === 'HEAD' ? undefined : file.body)
})

mercure.on('requestError', (err) => console.error('mercure-hub: request failed:', err))

server.listen(port, host, () => {
  const base = `http://${host}:${server.address().port}`
  console.log(`sse-fanout mercure hub on ${base} (protocol at ${base}${HUB_PATH})`)
  console.log(anonymous
    ? '  subscribers: anonymous allowed (public updates), a token for private ones'
    : '  subscribers: a token signed with MERCURE_SUBSCRIBER_JWT_KEY (header, query or mercureAuthorization cookie)')
  console.log('  publishers: a token signed with MERCURE_PUBLISHER_JWT_KEY, claim {"mercure":{"publish":["*"]}}')
  console.log(`  page: ${base}/?topic=*`)
  console.log(`  curl -N '${base}${HUB_PATH}?topic=*'`)
})

// SIGTERM/SIGINT: stop accepting, end every stream, then exit.
let stopping = false
async function shutdown (signal) {
  if (stopping) return
  stopping = true
  server.close()
  server.closeIdleConnections()
  await mercure.close()
  console.log(`mercure-hub: stopped (${signal})`)
  process.exit(0)
}
process.once('SIGINT', () => shutdown('SIGINT'))
process.once('SIGTERM', () => shutdown('SIGTERM'))
