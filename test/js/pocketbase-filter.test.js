'use strict'
// compileFilter: the native rule/filter engine as an app sees it from JS
// (the example server's list/view endpoints use it). The engine's semantics
// are tested in depth in C++ (test/cpp/pocketbase/pb_filter_test.cpp); this checks
// the JS surface: results, auth handling, errors and their codes.
const test = require('node:test')
const assert = require('node:assert/strict')
const { compileFilter } = require('../../lib/pocketbase')
const { SseError } = require('../../lib')

const user = { id: 'u1', collectionId: '_pb_users_auth_', collectionName: 'users' }

test('compileFilter evaluates records, with and without an auth record', () => {
  const f = compileFilter('status = "active" && views > 10')
  assert.equal(f.expression, 'status = "active" && views > 10')
  assert.equal(f.test({ status: 'active', views: 11 }), true)
  assert.equal(f.test({ status: 'active', views: 10 }), false)
  assert.equal(f.test({ status: 'draft', views: 99 }), false)
  assert.equal(f.test({}), false)

  const own = compileFilter('owner = @request.auth.id')
  assert.equal(own.test({ owner: 'u1' }, user), true)
  assert.equal(own.test({ owner: 'u2' }, user), false)
  assert.equal(own.test({ owner: 'u1' }), false, 'a guest')
  assert.equal(own.test({ owner: 'u1' }, null), false, 'null is a guest')
  assert.equal(own.test({ owner: '' }), true, "a guest's id is null, and null = '' (PocketBase's COALESCE)")

  const ctx = compileFilter('@request.context = "realtime"')
  assert.equal(ctx.test({}), true)
})

test('compileFilter: "" lets everything through; only whitespace or comments is refused, as PocketBase does', () => {
  assert.equal(compileFilter('').test({ anything: 1 }), true)
  for (const expr of [' ', '\t\n', '// just a comment', '  // one\n// two\n']) {
    assert.throws(() => compileFilter(expr), (err) => {
      assert.ok(err instanceof SseError)
      assert.equal(err.code, 'ERR_SSE_INVALID_FILTER')
      assert.match(err.message, /^empty expression: only whitespace or comments \(in /)
      return true
    }, JSON.stringify(expr))
  }
})

test('LIKE runs in linear time: the issue\'s pattern on a 10 KB body', () => {
  const f = compileFilter(`body ~ '%${'_'.repeat(2400)}~%'`)
  const record = { id: 'r', body: 'x'.repeat(10000) }
  assert.equal(f.test(record), false)
  // Timed loosely (the work bound itself is counted in pb_like_test and like_fuzz):
  // the backtracking matcher took 45-68 ms for one evaluation here.
  const started = process.hrtime.bigint()
  for (let i = 0; i < 20; i++) f.test(record)
  assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 200, 'twenty evaluations well under the old cost of one each')
})

test('compileFilter refuses what it cannot evaluate, with the reason and the offset', () => {
  const cases = [
    ['views >>> 1', /at 6/],
    ['tags ?= "a"', /any-of|\?=/],
    ['created > @now', /macros are not supported/],
    ['@collection.posts.id = id', /@collection/],
    ['(a = 1', /parenthes/],
    // A LIKE literal whose middle core with _ spans more than 64 characters (not linear to match).
    [`title ~ '%a${'_'.repeat(63)}b%'`, /too costly to match: .*65 characters .*\(limit 64\)/]
  ]
  for (const [expr, why] of cases) {
    assert.throws(() => compileFilter(expr), (err) => {
      assert.equal(err.code, 'ERR_SSE_INVALID_FILTER')
      assert.match(err.message, why)
      assert.ok(err.message.endsWith(`(in ${JSON.stringify(expr)})`), err.message)
      return true
    }, expr)
  }
})

test('compileFilter and test() check their arguments', () => {
  for (const bad of [undefined, null, 42, {}]) {
    assert.throws(() => compileFilter(bad), { code: 'ERR_SSE_INVALID_ARGUMENT' })
  }
  const f = compileFilter('a = 1')
  for (const bad of [undefined, null, 'a=1', 7]) {
    assert.throws(() => f.test(bad), { code: 'ERR_SSE_INVALID_ARGUMENT' }, String(bad))
  }
  assert.throws(() => f.test({ a: 1 }, { collectionId: 'x' }), { code: 'ERR_SSE_INVALID_ARGUMENT' }, 'auth without an id')
})
