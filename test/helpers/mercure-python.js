'use strict'
// Publishing to a Mercure hub from Python: runs test/helpers/mercure_publish.py
// (standard library only: urllib, hmac, hashlib, base64, json) as its own
// process.
//   pythonMissing()                        why it cannot run here (a skip reason), or null
//   publishFromPython(hubUrl, key, update) -> { code, id, stderr }
//     update: { topic | topics, data, private, id, type, retry, publish }
//     id: what the script printed (the hub's answer), on code 0

const path = require('node:path')
const { execFile, spawnSync } = require('node:child_process')
const { SECRET } = require('./mercure')
const { unsanitizedEnv } = require('./sanitized')

const SCRIPT = path.join(__dirname, 'mercure_publish.py')
const PYTHON = process.env.PYTHON || 'python3'
const RUN_TIMEOUT_MS = 15000

function pythonMissing () {
  const r = spawnSync(PYTHON, ['--version'], { encoding: 'utf8', timeout: 10000 })
  if (r.error || r.status !== 0) return `no ${PYTHON} here (apt-get install python3, or set PYTHON)`
  return null
}

function publishFromPython (hubUrl, key, update) {
  const argv = [SCRIPT, '--url', hubUrl, '--key', key]
  for (const topic of update.topics || [update.topic]) argv.push('--topic', topic)
  if (update.data !== undefined) argv.push('--data', update.data)
  if (update.private) argv.push('--private')
  if (update.id !== undefined) argv.push('--id', update.id)
  if (update.type !== undefined) argv.push('--type', update.type)
  if (update.retry !== undefined) argv.push('--retry', String(update.retry))
  for (const selector of update.publish || []) argv.push('--publish', selector)
  // The script must not inherit what the test process carries (a sanitizer's
  // LD_PRELOAD), nor a key from the caller's environment: --key says which.
  const env = unsanitizedEnv()
  for (const name of Object.keys(env)) {
    if (name.startsWith('MERCURE_')) delete env[name]
  }
  return new Promise((resolve, reject) => {
    execFile(PYTHON, argv, { env, encoding: 'utf8', timeout: RUN_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err && typeof err.code !== 'number') {
        reject(new Error(`${PYTHON} ${path.basename(SCRIPT)} failed to run: ${err.message} ${stderr}`))
        return
      }
      resolve({ code: err ? err.code : 0, id: stdout.trim(), stderr: stderr.trim() })
    })
  })
}

// The environment the cross-language tests start examples/mercure-hub.js
// with: HS256 keys for both roles (test/helpers/mercure.js's SECRET),
// anonymous subscribers, no CORS.
const EXAMPLE_ENV = Object.freeze({
  MERCURE_PUBLISHER_JWT_KEY: SECRET,
  MERCURE_PUBLISHER_JWT_ALG: '',
  MERCURE_SUBSCRIBER_JWT_KEY: SECRET,
  MERCURE_SUBSCRIBER_JWT_ALG: '',
  MERCURE_ANONYMOUS: '1',
  MERCURE_CORS_ORIGINS: ''
})

module.exports = { pythonMissing, publishFromPython, EXAMPLE_ENV }
