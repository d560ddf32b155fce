'use strict'
// Preloaded into every Node process of the sanitizer run (NODE_OPTIONS=--require,
// set by scripts/sanitize-js.js; child processes and workers inherit it).
//
// At exit it looks at /proc/self/maps and leaves a note in SSE_SANITIZE_LOG_DIR:
//   loaded.<pid>   this process mapped the sanitized addon (SSE_FANOUT_ADDON)
//   other.<pid>    this process mapped some other sse_fanout.node (an
//                  uninstrumented build: whatever ran through it went unchecked)
// Processes that never load the addon (test tools, `node -e ''`) leave nothing.
// It writes nothing to stdout or stderr, so tests that read a child's output
// are not disturbed.
const fs = require('node:fs')
const path = require('node:path')

const dir = process.env.SSE_SANITIZE_LOG_DIR
const addon = process.env.SSE_FANOUT_ADDON
const { isMainThread } = require('node:worker_threads')

if (dir && addon && isMainThread) {
  process.on('exit', () => {
    let maps
    try { maps = fs.readFileSync('/proc/self/maps', 'utf8') } catch { return }
    const mapped = new Set()
    for (const line of maps.split('\n')) {
      const file = line.slice(line.indexOf('/'))
      if (line.includes('/') && file.endsWith('.node') && path.basename(file).startsWith('sse_fanout')) mapped.add(file)
    }
    if (mapped.size === 0) return
    const who = `${process.pid} ${process.argv.slice(1).join(' ')}\n`
    try {
      if (mapped.has(addon)) fs.writeFileSync(path.join(dir, `loaded.${process.pid}`), who)
      const others = [...mapped].filter((f) => f !== addon)
      if (others.length) fs.writeFileSync(path.join(dir, `other.${process.pid}`), who + others.join('\n') + '\n')
    } catch {}
  })
}
