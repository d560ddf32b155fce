'use strict'
// examples/demo-server.js in a child process on 127.0.0.1 and a free port
// (PORT=0): startDemo() resolves once its first stdout line names the URL;
// stop() ends it with SIGTERM (its shutdown closes both hubs), SIGKILL when
// it does not exit in time. Used by the dashboard tests and by
// scripts/dashboard-screenshot.js.

const path = require('node:path')
const { spawn } = require('node:child_process')
const { once } = require('node:events')
const { within } = require('./wait')

const DEMO = path.join(__dirname, '..', '..', 'examples', 'demo-server.js')
const START_TIMEOUT_MS = 10000
const STOP_TIMEOUT_MS = 5000

/**
 * @param {{ env?: Record<string, string> }} [options] more environment
 * @returns {Promise<{ url: string, child: import('node:child_process').ChildProcess, output: () => string, stop: () => Promise<number | string | null> }>}
 */
async function startDemo ({ env = {} } = {}) {
  const child = spawn(process.execPath, [DEMO], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (chunk) => { stderr += chunk })
  const exited = once(child, 'exit').then(([code, signal]) => code ?? signal)
  const started = new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      stdout += chunk
      const eol = stdout.indexOf('\n')
      if (eol === -1) return
      const match = /^sse-fanout demo on (http:\/\/[0-9.]+:[0-9]+) \(/.exec(stdout.slice(0, eol))
      if (match) resolve(match[1])
      else reject(new Error(`unexpected first line from the demo: ${stdout.slice(0, eol)}`))
    })
    exited.then((status) => reject(new Error(`the demo exited (${status}) before listening: ${stderr}`)))
  })
  let url
  try {
    url = await within(started, START_TIMEOUT_MS, 'the demo to listen')
  } catch (err) {
    child.kill('SIGKILL')
    throw err
  }
  let stopping = null
  const stop = () => {
    if (stopping) return stopping
    stopping = (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return exited
      child.kill('SIGTERM')
      try {
        return await within(exited, STOP_TIMEOUT_MS, 'the demo to exit on SIGTERM')
      } catch (err) {
        child.kill('SIGKILL')
        await exited
        throw err
      }
    })()
    return stopping
  }
  return { url, child, output: () => stdout + stderr, stop }
}

module.exports = { startDemo }
