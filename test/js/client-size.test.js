'use strict'
// The browser module's size budget (issue: ≤ 4 KB minified + gzipped).
// terser (the minifier webpack and Rollup users ship with) minifies
// lib/client/index.mjs as a bundler would, node:zlib gzips it at level 9,
// and the figures are printed as diagnostics: the budget is the assertion.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const zlib = require('node:zlib')
const { minify } = require('terser')

const FILE = path.join(__dirname, '../../lib/client/index.mjs')
const BUDGET = 4096

test('sse-fanout/client minified + gzipped fits in 4 KB, and the minified module still exports SseClient', async (t) => {
  const source = fs.readFileSync(FILE, 'utf8')
  const { code } = await minify(source, { module: true, compress: { passes: 2 }, mangle: true })
  const gz = (text) => zlib.gzipSync(text, { level: 9 }).length
  const figures = { source: Buffer.byteLength(source), sourceGzip: gz(source), min: Buffer.byteLength(code), minGzip: gz(code) }
  t.diagnostic(`client size: ${figures.source} B as written (${figures.sourceGzip} B gzipped), ${figures.min} B minified, ${figures.minGzip} B minified + gzipped (budget ${BUDGET})`)
  assert.ok(figures.minGzip <= BUDGET, `${figures.minGzip} B > ${BUDGET} B`)
  // The minified text is still the module: import it and check the exports work.
  const url = `data:text/javascript;base64,${Buffer.from(code).toString('base64')}`
  const mod = await import(url)
  assert.equal(typeof mod.SseClient, 'function')
  assert.equal(mod.backoff(3, { minRetryMs: 100, maxRetryMs: 1000, random: () => 0.5 }), 200)
})
