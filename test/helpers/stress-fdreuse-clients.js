'use strict'
// Client process for the fd-reuse fault test: rapid connect / receive /
// disconnect cycles as two users, each subscribed to a private topic, while
// the server publishes to both. Every byte a connection receives is checked
// against its owner: an event of the other user (or the other user's marker
// anywhere in the body) counts as leaked bytes.
//
// runFdReuseClients(options) forks this file and resolves with its report.
// options: { port, cycles, concurrency, users: [a, b], holdMsMax, kickEvery,
//            http10Every, timeoutMs }
// Each cycle k: user users[k % 2] opens
//   GET /sse?u=<user>&t=private/<user>&t=shared&tag=<k>&welcome=1[&kick=<ms>]
// (HTTP/1.1, chunked; every http10Every-th cycle HTTP/1.0, raw body), waits for
// its welcome event (which must name its own tag and user, and comes first),
// reads for a random 0..holdMsMax ms, then destroys the socket; every
// kickEvery-th cycle the server kicks it instead and the body must end
// properly. Server-side data is "owner=<user> <seq> ...".

const net = require('node:net')
const { fork } = require('node:child_process')
const { SseParser } = require('./sse-parser')
const { Dechunker } = require('./stress-common')

function runFdReuseClients (options, timeoutMs = 10 * 60 * 1000) {
  return new Promise((resolve, reject) => {
    const child = fork(__filename, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] })
    let report = null
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`fd-reuse clients did not finish within ${timeoutMs} ms`)) }, timeoutMs)
    child.on('message', (msg) => {
      if (msg.ready) child.send(options)
      else report = msg
    })
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      if (report && report.error) reject(new Error(`fd-reuse clients: ${report.error}`))
      else if (report) resolve(report)
      else reject(new Error(`fd-reuse clients exited (code ${code}, signal ${signal}) without a report`))
    })
  })
}

// ---- child ------------------------------------------------------------------

function childMain () {
  process.on('disconnect', () => process.exit(0))
  process.on('message', (o) => {
    run(o).then((report) => process.send(report, () => process.exit(0)),
      (err) => process.send({ error: String(err && err.stack) }, () => process.exit(1)))
  })
  process.send({ ready: true })
}

async function run (o) {
  const users = o.users
  const r = {
    cycles: 0,
    ok: 0,
    failures: [], // first few
    failed: 0,
    events: 0, // events other than the welcome
    eventsByUser: Object.fromEntries(users.map((u) => [u, 0])),
    leakedBytes: 0, // bytes of the other user's events, or of its marker, on a connection
    leakedEvents: 0,
    wrongWelcome: 0,
    welcomeNotFirst: 0,
    kicked: 0,
    kickedEndedProperly: 0,
    http10: 0,
    connectionsWithEvents: 0,
    serverFds: new Set(),
    fdReuses: 0, // cycles whose server-side fd number had been used by an earlier cycle
    crossUserFdReuses: 0, // ... by an earlier cycle of the other user
    ms: 0
  }
  const lastUserOfFd = new Map()
  const t0 = Date.now()
  let next = 0
  const fail = (k, what) => {
    r.failed++
    if (r.failures.length < 5) r.failures.push(`cycle ${k}: ${what}`)
  }

  function cycle (k) {
    const user = users[k % users.length]
    const others = users.filter((u) => u !== user)
    const kick = o.kickEvery > 0 && k % o.kickEvery === o.kickEvery - 1
    const http10 = o.http10Every > 0 && k % o.http10Every === 0
    const holdMs = Math.floor(Math.random() * (o.holdMsMax + 1))
    const p = `/sse?u=${user}&t=private/${user}&t=shared&tag=${k}&welcome=1${kick ? '&kick=' + holdMs : ''}`
    return new Promise((resolve) => {
      const socket = net.connect({ host: '127.0.0.1', port: o.port })
      let head = Buffer.alloc(0)
      let gotHead = false
      let body = '' // decoded body text (latin1: a byte per char, for marker search)
      let welcome = null
      let events = 0
      let ended = false
      let finished = false
      let holdTimer = null
      const deadline = setTimeout(() => finish(`no end within ${o.timeoutMs} ms (head ${gotHead}, welcome ${!!welcome})`), o.timeoutMs)
      const parser = new SseParser((ev) => {
        if (ev.event === 'welcome') {
          if (welcome !== null || events > 0) r.welcomeNotFirst++
          welcome = ev.data
          const m = /^welcome tag=(\d+) owner=(\S+) fd=(-?\d+) id=(\d+)$/.exec(ev.data)
          if (!m || Number(m[1]) !== k || m[2] !== user) {
            r.wrongWelcome++
            fail(k, `welcome ${JSON.stringify(ev.data)} on a connection of ${user} (tag ${k})`)
          } else {
            const fd = Number(m[3])
            if (fd >= 0) {
              if (lastUserOfFd.has(fd)) {
                r.fdReuses++
                if (lastUserOfFd.get(fd) !== user) r.crossUserFdReuses++
              }
              lastUserOfFd.set(fd, user)
              r.serverFds.add(fd)
            }
          }
          if (!kick) holdTimer = setTimeout(() => finish(null), holdMs)
          return
        }
        events++
        const owner = /^owner=(\S+) /.exec(ev.data)
        if (!owner || owner[1] !== user) {
          r.leakedEvents++
          r.leakedBytes += Buffer.byteLength(ev.data)
          fail(k, `event ${JSON.stringify(ev.data.slice(0, 40))} on a connection of ${user}`)
        } else {
          r.eventsByUser[user]++
        }
      })
      const onBody = (buf) => {
        body += buf.toString('latin1')
        parser.push(buf)
      }
      let dechunk = null
      function finish (error) {
        if (finished) return
        finished = true
        clearTimeout(deadline)
        clearTimeout(holdTimer)
        socket.destroy()
        // The other user's marker anywhere in the bytes (not only in parsed events).
        for (const other of others) {
          let at = body.indexOf(`owner=${other}`)
          while (at >= 0) {
            r.leakedBytes += `owner=${other}`.length
            at = body.indexOf(`owner=${other}`, at + 1)
          }
        }
        r.cycles++
        r.events += events
        if (events > 0) r.connectionsWithEvents++
        if (http10) r.http10++
        if (kick) {
          r.kicked++
          if (ended) r.kickedEndedProperly++
        }
        if (error) fail(k, error)
        else if (!welcome) fail(k, 'no welcome')
        else r.ok++
        resolve()
      }
      socket.on('connect', () => {
        socket.write(`GET ${p} HTTP/1.${http10 ? 0 : 1}\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`)
      })
      socket.on('data', (buf) => {
        try {
          if (!gotHead) {
            head = Buffer.concat([head, buf])
            const at = head.indexOf('\r\n\r\n')
            if (at < 0) return
            const text = head.toString('latin1', 0, at)
            if (!/^HTTP\/1\.1 200 /.test(text)) return finish(`status line ${JSON.stringify(text.split('\r\n')[0])}`)
            gotHead = true
            if (/\r\ntransfer-encoding: chunked/i.test(text)) {
              // A kicked chunked stream is over at its last chunk (the JS
              // transport may keep the connection for keep-alive after it).
              dechunk = new Dechunker(onBody, () => { ended = true; parser.end(); if (kick) finish(null) })
            }
            buf = head.subarray(at + 4)
            head = null
            if (buf.length === 0) return
          }
          if (dechunk) dechunk.push(buf)
          else onBody(buf)
        } catch (err) {
          finish(`framing: ${err.message}`)
        }
      })
      socket.on('end', () => {
        if (!dechunk && gotHead) ended = true // HTTP/1.0: the body ends with the connection
        if (kick) finish(ended ? null : 'kicked stream did not end properly')
        else if (!finished && welcome) finish(null) // the server closed first: fine for a plain cycle
      })
      socket.on('error', (err) => { if (!finished) finish(`socket error ${err.code || err.message}`) })
      socket.on('close', () => { if (!finished) finish(gotHead ? (welcome ? null : 'closed before the welcome') : 'closed before the head') })
    })
  }

  async function worker () {
    while (next < o.cycles) {
      const k = next++
      await cycle(k)
    }
  }
  await Promise.all(Array.from({ length: o.concurrency }, worker))
  r.ms = Date.now() - t0
  r.distinctServerFds = r.serverFds.size
  delete r.serverFds
  return r
}

if (require.main === module) childMain()

module.exports = { runFdReuseClients }
