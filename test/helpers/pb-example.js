'use strict'
// Starts an example server as a child process on a free port (PORT=0) and
// waits for the line that names its address:
//   startExample(t, 'examples/demo-server.js', { PUBLISH_TOKEN: 'x' })
//     -> { url, output(), child }   output(): what it printed so far; child: the process
// The process is killed (SIGTERM, then SIGKILL) after the test.

const path = require('node:path')
const { spawn } = require('node:child_process')
const { waitFor } = require('./wait')

const ROOT = path.join(__dirname, '..', '..')

async function startExample (t, script, env = {}) {
  const child = spawn(process.execPath, [path.join(ROOT, script)], {
    cwd: ROOT,
    // No Redis bus unless the test asks (REDIS_URL in the caller's environment would put the demo on it).
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', REDIS_URL: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (c) => { out += c })
  child.stderr.setEncoding('utf8').on('data', (c) => { out += c })
  let exited = false
  child.once('exit', () => { exited = true })
  t.after(async () => {
    if (exited) return
    child.kill('SIGTERM')
    try {
      await waitFor(() => exited, 5000, `${script} exits`)
    } catch {
      child.kill('SIGKILL')
    }
  })
  const match = await waitFor(() => {
    if (exited) throw new Error(`${script} exited: ${out}`)
    return out.match(/ on (http:\/\/127\.0\.0\.1:\d+)/)
  }, 10000, () => `${script} prints its address (output: ${out})`)
  return { url: match[1], output: () => out, child }
}

module.exports = { startExample }
