'use strict'
// A Mercure hub in a plain node:http server: any page at `/` (it subscribes
// to the topic in its query with EventSource and shows what arrives), the
// protocol at /.well-known/mercure. Publishers in any language POST a form
// with a JWT; subscribers use EventSource.
//
//   MERCURE_PUBLISHER_JWT_KEY='!ChangeThisMercureHubJWTSecretKey!' \
//   MERCURE_SUBSCRIBER_JWT_KEY='!ChangeThisMercureHubJWTSecretKey!' \
//   node examples/mercure-hub.js          (PORT default 3000, HOST 127.0.0.1)
//
//   open http://127.0.0.1:3000/?topic=https://example.com/books/1
//   curl -d topic=https://example.com/books/1 -d data=hello \
//        -H "Authorization: Bearer $PUBLISHER_JWT" http://127.0.0.1:3000/.well-known/mercure
//
// Keys: MERCURE_PUBLISHER_JWT_KEY and MERCURE_SUBSCRIBER_JWT_KEY, with
// MERCURE_PUBLISHER_JWT_ALG / MERCURE_SUBSCRIBER_JWT_ALG (HS256 unless set;
// RS*, ES*, EdDSA take a PEM public key). Without a subscriber key, or with
// MERCURE_ANONYMOUS=1, subscribers need no token (public updates only).
// MERCURE_CORS_ORIGINS: space-separated origins allowed cross-origin.
const http = require('node:http')
const { MercureHub, mercureLink } = require('../lib/mercure')

const HUB_PATH = '/.well-known/mercure'
const anonymous = process.env.MERCURE_ANONYMOUS === '1' || !process.env.MERCURE_SUBSCRIBER_JWT_KEY
const corsOrigins = (process.env.MERCURE_CORS_ORIGINS || '').split(/\s+/).filter((o) => o !== '')

const mercure = new MercureHub({
  anonymous,
  ...(process.env.MERCURE_SUBSCRIBER_JWT_KEY ? {} : { subscriberJwt: null }),
  ...(corsOrigins.length > 0 ? { cors: { origins: corsOrigins } } : {})
})

// The page: an EventSource on the topic of its own ?topic= (default the
// page's URL), each update appended as text (never as HTML).
function page (topic) {
  return `<!doctype html>
<meta charset="utf-8">
<title>Mercure hub (sse-fanout)</title>
<h1>Updates</h1>
<ul id="updates"></ul>
<script>
  const url = new URL(${JSON.stringify(HUB_PATH)}, location.href)
  url.searchParams.append('topic', ${JSON.stringify(topic)})
  const es = new EventSource(url)
  es.onmessage = (e) => {
    const li = document.createElement('li')
    li.textContent = e.data
    document.getElementById('updates').append(li)
  }
</script>
`
}

const server = http.createServer((req, res) => {
  if (mercure.handle(req, res)) return
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end()
    return
  }
  const url = new URL(req.url, 'http://localhost')
  const topic = url.searchParams.get('topic') || `http://${req.headers.host || 'localhost'}${url.pathname}`
  mercureLink(res, HUB_PATH)
  res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-security-policy': "default-src 'self'; script-src 'unsafe-inline'" })
  res.end(req.method === 'HEAD' ? undefined : page(topic))
})

server.listen(Number(process.env.PORT ?? 3000), process.env.HOST || '127.0.0.1', () => {
  const { address, port } = server.address()
  console.log(`mercure-hub example on http://${address}:${port} (hub at ${HUB_PATH}; ${anonymous ? 'anonymous subscribers allowed' : 'subscribers need a token'})`)
})

function shutdown () {
  server.close()
  server.closeAllConnections()
  mercure.close().then(() => process.exit(0))
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
