'use strict'
// The ErrorCode union of lib/index.d.ts lists exactly the codes the library
// can throw: every ERR_SSE_* string literal in lib/ and ERR_SSE_<name> for
// every native status but OK. Derived from the sources, so a new status or a
// new literal needs its line in the union (and in `codes`) to pass.

const { test } = require('node:test')
const assert = require('node:assert/strict')
const fs = require('node:fs')
const path = require('node:path')
const { codes } = require('../..')
const nativeAddon = require('../../lib/native')

const LIB = path.join(__dirname, '..', '..', 'lib')

function jsFiles (dir) {
  const out = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...jsFiles(file))
    else if (entry.name.endsWith('.js')) out.push(file)
  }
  return out
}

/** Every 'ERR_SSE_*' (or "..." or `...` without a substitution) string literal in lib/**.js. */
function literalCodes () {
  const found = new Set()
  for (const file of jsFiles(LIB)) {
    const text = fs.readFileSync(file, 'utf8')
    for (const m of text.matchAll(/(['"`])(ERR_SSE_[A-Z0-9_]+)\1/g)) found.add(m[2])
  }
  return found
}

/** The members of `export type ErrorCode = | '...' | ...` in lib/index.d.ts. */
function declaredCodes () {
  const text = fs.readFileSync(path.join(LIB, 'index.d.ts'), 'utf8')
  const m = /export type ErrorCode =((?:\s*\|\s*'[A-Z0-9_]+')+)/.exec(text)
  assert.ok(m, 'lib/index.d.ts declares `export type ErrorCode` as a union of string literals')
  const members = [...m[1].matchAll(/'([A-Z0-9_]+)'/g)].map((x) => x[1])
  assert.equal(new Set(members).size, members.length, 'no code is listed twice in ErrorCode')
  return new Set(members)
}

function thrownCodes () {
  const names = nativeAddon.statusNames
  assert.equal(names[0], 'OK')
  const thrown = literalCodes()
  for (const name of names.slice(1)) thrown.add(`ERR_SSE_${name}`)
  return thrown
}

const sorted = (set) => [...set].sort()

test('lib/index.d.ts ErrorCode lists exactly the codes lib/ and the native statuses can throw', () => {
  const thrown = thrownCodes()
  const declared = declaredCodes()
  assert.ok(thrown.has('ERR_SSE_INVALID_FILTER') && thrown.has('ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP'), 'the scan finds the JS-only codes')
  assert.ok(thrown.has('ERR_SSE_QUEUE_FULL'), 'the native statuses are included')
  assert.deepEqual(sorted([...thrown].filter((c) => !declared.has(c))), [], 'thrown but missing from ErrorCode')
  assert.deepEqual(sorted([...declared].filter((c) => !thrown.has(c))), [], 'in ErrorCode but never thrown')
})

test('the codes table (README "Error codes") documents exactly the same codes', () => {
  assert.deepEqual(sorted(Object.keys(codes)), sorted(thrownCodes()))
})
