// The demo's live dashboard (served by examples/demo-server.js at /): no
// dependencies, no build step. Two SseClients:
// - /events?topics=demo (catch-up at /poll): this tab's connection state, its
//   cursor and the events it receives;
// - /dashboard/stats: a sample of the main hub's cumulative counters every
//   second (the last 120 s of them first); rates are computed here from
//   successive samples and drawn on <canvas> by drawChart() below.
// Everything from the network reaches the page through textContent.

/* global requestAnimationFrame, ResizeObserver */
import { SseClient, consoleLogger } from '/sse-fanout-client.js'

const WINDOW_MS = 120 * 1000
const MAX_EVENTS = 50
const MAX_LOG = 200
const MAX_SEEN = 1000
const TOPIC = 'demo'
// The client's own event names: an event published under one of them is
// shown when found, never listened for (the client means something else by it).
const CLIENT_NAMES = new Set(['open', 'error', 'reset', 'statechange', 'sse-position'])

const COLORS = {
  connections: '#2563eb',
  publishes: '#7c3aed',
  deliveries: '#0891b2',
  queue: '#d97706'
}
const REASON_COLORS = {
  client: '#64748b',
  slow: '#ea580c',
  kicked: '#9333ea',
  error: '#dc2626',
  timeout: '#ca8a04',
  shutdown: '#0f766e'
}
const MORE_COLORS = ['#be185d', '#4d7c0f', '#1e40af', '#78350f']

const $ = (id) => document.getElementById(id)

// ---- formatting ------------------------------------------------------------

function formatCount (v) {
  if (!Number.isFinite(v)) return '–'
  if (v === 0) return '0'
  if (Math.abs(v) < 10) return v.toFixed(1).replace(/\.0$/, '')
  return Math.round(v).toLocaleString('en-US')
}

/** Short form for axis labels: 950, 1.2k, 34k, 5.6M. */
function formatShort (v) {
  const abs = Math.abs(v)
  if (abs >= 1e9) return `${+(v / 1e9).toPrecision(2)}G`
  if (abs >= 1e6) return `${+(v / 1e6).toPrecision(2)}M`
  if (abs >= 1e4) return `${Math.round(v / 1e3)}k`
  if (abs >= 1e3) return `${+(v / 1e3).toPrecision(2)}k`
  return `${+v.toPrecision(3)}`
}

function formatBytes (v) {
  if (!Number.isFinite(v)) return '–'
  const units = ['B', 'KB', 'MB', 'GB']
  let i = 0
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${i === 0 || v >= 100 ? Math.round(v) : +v.toFixed(1)} ${units[i]}`
}

function clockTime (date) {
  return date.toTimeString().slice(0, 8) + '.' + String(date.getMilliseconds()).padStart(3, '0')
}

/** The smallest 1, 2 or 5 times a power of `base` (10, or 1024 for bytes) at or above v. */
function niceCeil (v, base = 10) {
  if (!(v > 0)) return 1
  if (base === 1024) {
    let unit = 1
    while (v / unit >= 1024) unit *= 1024
    const top = niceCeil(v / unit)
    return (top === 1000 ? 1024 : top) * unit // 1 MB, not 1000 KB
  }
  const power = 10 ** Math.floor(Math.log10(v))
  for (const step of [1, 2, 5, 10]) {
    if (v <= step * power * (1 + 1e-9)) return step * power
  }
  return 10 * power
}

// ---- the line chart --------------------------------------------------------

/** The runs of points between nulls. */
function segments (points) {
  const runs = [[]]
  for (const p of points) {
    if (p === null) {
      if (runs.at(-1).length > 0) runs.push([])
    } else {
      runs.at(-1).push(p)
    }
  }
  return runs.filter((run) => run.length > 0)
}

/**
 * Draws series ([{ color, points: [[t, value] or null, ...] }], null: a gap)
 * on a canvas: the last windowMs up to `now`, y from 0 to a rounded max (labelled), light
 * grid, device-pixel-ratio aware (the backing store follows the element's
 * CSS size). Sets data-points (the most points of a series drawn),
 * data-segments (the most pieces of a series drawn: more than one after a
 * gap) and data-max on the canvas; returns the number of points drawn.
 */
function drawChart (canvas, series, { now, windowMs = WINDOW_MS, format = formatShort, bytes = false, fill = series.length === 1 } = {}) {
  const cssWidth = canvas.clientWidth
  const cssHeight = canvas.clientHeight
  if (cssWidth === 0 || cssHeight === 0) return 0
  const dpr = window.devicePixelRatio || 1
  const width = Math.round(cssWidth * dpr)
  const height = Math.round(cssHeight * dpr)
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width
    canvas.height = height
  }
  const ctx = canvas.getContext('2d')
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0)
  ctx.clearRect(0, 0, cssWidth, cssHeight)

  const from = now - windowMs
  const left = 6
  const right = cssWidth - 6
  const top = 18
  const bottom = cssHeight - 18
  let max = 0
  for (const s of series) {
    for (const p of s.points) if (p !== null && p[0] >= from && p[1] > max) max = p[1]
  }
  const yMax = niceCeil(max, bytes ? 1024 : 10)
  const x = (t) => left + (right - left) * (t - from) / windowMs
  const y = (v) => bottom - (bottom - top) * Math.min(v, yMax) / yMax

  // Grid: the max, the middle and the baseline; the time axis below.
  ctx.lineWidth = 1
  ctx.strokeStyle = '#e5e9ef'
  for (const v of [yMax, yMax / 2]) {
    ctx.beginPath()
    ctx.moveTo(left, Math.round(y(v)) + 0.5)
    ctx.lineTo(right, Math.round(y(v)) + 0.5)
    ctx.stroke()
  }
  ctx.strokeStyle = '#aab4c0'
  ctx.beginPath()
  ctx.moveTo(left, Math.round(bottom) + 0.5)
  ctx.lineTo(right, Math.round(bottom) + 0.5)
  ctx.stroke()

  ctx.font = '11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif'
  ctx.fillStyle = '#5f6b7a'
  ctx.textBaseline = 'alphabetic'
  ctx.textAlign = 'left'
  ctx.fillText(`max ${bytes ? formatBytes(yMax) : format(yMax)}`, left, top - 5)
  ctx.textBaseline = 'top'
  ctx.fillText(`-${Math.round(windowMs / 1000)} s`, left, bottom + 4)
  ctx.textAlign = 'center'
  ctx.fillText(`-${Math.round(windowMs / 2000)} s`, (left + right) / 2, bottom + 4)
  ctx.textAlign = 'right'
  ctx.fillText('now', right, bottom + 4)

  // The lines, clipped to the plot (a point just before the window keeps a
  // line from starting mid-air).
  let drawn = 0
  let pieces = 0
  ctx.save()
  ctx.beginPath()
  ctx.rect(left, top - 2, right - left, bottom - top + 3)
  ctx.clip()
  const trace = (points) => {
    ctx.beginPath()
    points.forEach(([t, v], i) => (i === 0 ? ctx.moveTo(x(t), y(v)) : ctx.lineTo(x(t), y(v))))
  }
  for (const s of series) {
    let count = 0
    let drawnSegments = 0
    for (const segment of segments(s.points)) {
      const firstIn = segment.findIndex(([t]) => t >= from)
      if (firstIn === -1) continue
      const points = segment.slice(Math.max(firstIn - 1, 0))
      count += points.length
      drawnSegments++
      if (fill && points.length > 1) {
        trace(points)
        ctx.lineTo(x(points.at(-1)[0]), bottom)
        ctx.lineTo(x(points[0][0]), bottom)
        ctx.closePath()
        ctx.globalAlpha = 0.12
        ctx.fillStyle = s.color
        ctx.fill()
        ctx.globalAlpha = 1
      }
      trace(points) // one point alone: a dot (round caps)
      ctx.strokeStyle = s.color
      ctx.lineWidth = s.width || 2
      ctx.lineJoin = 'round'
      ctx.lineCap = 'round'
      if (points.length === 1) ctx.lineTo(x(points[0][0]) + 0.01, y(points[0][1]))
      ctx.stroke()
    }
    drawn = Math.max(drawn, count)
    pieces = Math.max(pieces, drawnSegments)
  }
  ctx.restore()
  canvas.dataset.points = String(drawn)
  canvas.dataset.segments = String(pieces)
  canvas.dataset.max = String(yMax)
  return drawn
}

// ---- the log ---------------------------------------------------------------

function appendLog (level, line) {
  const list = $('log')
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 4
  const item = document.createElement('li')
  item.className = level
  item.textContent = line
  list.append(item)
  while (list.children.length > MAX_LOG) list.firstElementChild.remove()
  if (atBottom) list.scrollTop = list.scrollHeight
}

/** The client's logger: its `[SSE] <time> message` lines to the console and to #log. */
function pageLogger (prefix = '') {
  const out = {}
  for (const level of ['info', 'warn', 'error']) {
    out[level] = (line, ...rest) => {
      console[level](line, ...rest)
      appendLog(level, line)
    }
  }
  const logger = consoleLogger(out)
  if (prefix === '') return logger
  return {
    info: (message, ...rest) => logger.info(prefix + message, ...rest),
    warn: (message, ...rest) => logger.warn(prefix + message, ...rest),
    error: (message, ...rest) => logger.error(prefix + message, ...rest)
  }
}

function showState (element, state) {
  element.textContent = state
  element.dataset.state = state
}

// ---- this tab's stream -----------------------------------------------------

const events = new SseClient(`/events?topics=${TOPIC}`, { poll: `/poll?topics=${TOPIC}`, logger: pageLogger() })
const listening = new Set()
const seen = new Set() // ids shown, so an event found twice is shown once

function showCursor () {
  $('cursor').textContent = events.lastEventId
}

function showEvent ({ id, name, data }) {
  if (id) {
    if (seen.has(id)) return
    seen.add(id)
    if (seen.size > MAX_SEEN) seen.delete(seen.values().next().value)
  }
  const item = document.createElement('li')
  item.className = 'fresh'
  if (id) item.dataset.id = id
  const parts = [
    ['time', clockTime(new Date())],
    ['name', name],
    ['data', data],
    ['id', id || '']
  ]
  for (const [className, text] of parts) {
    const span = document.createElement('span')
    span.className = className
    span.textContent = text
    if (className === 'data') span.title = text // the whole of it, when cut short
    item.append(span)
  }
  const list = $('events')
  list.prepend(item)
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove()
  $('events-empty').hidden = true
}

function onEvent (e) {
  showEvent({ id: e.lastEventId, name: e.type, data: e.data })
  showCursor()
}

/** Listens for events of this name on the stream (from now on). */
function listenTo (name) {
  if (listening.has(name) || CLIENT_NAMES.has(name)) return
  listening.add(name)
  events.addEventListener(name, onEvent)
}

listenTo('message')
events.addEventListener('statechange', (e) => {
  showState($('state'), e.state)
  showCursor()
})
events.addEventListener('reset', (e) => {
  const reason = e.data && typeof e.data === 'object' ? e.data.reason : String(e.data)
  appendLog('warn', `reset (${reason}): events before ${e.lastEventId || 'now'} may be missing here`)
  showCursor()
})
showState($('state'), events.state)

// EventSource dispatches only the event names it listens for. So that this
// tab shows events of any name on the topic, a catch-up read finds the ones
// it did not listen for whenever the hub's latest id moves (the figures say
// so every second): each is shown, and its name listened for from then on.
const finder = { cursor: null, busy: false, again: false, latest: null }

async function findNames () {
  if (finder.busy) {
    finder.again = true
    return
  }
  finder.busy = true
  try {
    const query = new URLSearchParams({ topics: TOPIC })
    if (finder.cursor) query.set('since', finder.cursor)
    const res = await fetch(`/poll?${query}`, { headers: { accept: 'application/json' }, cache: 'no-store' })
    if (res.status === 200) {
      const body = await res.json()
      const first = finder.cursor === null
      if (body.cursor) finder.cursor = body.cursor
      if (!first) {
        for (const e of body.events) {
          const name = e.event || 'message'
          if (listening.has(name)) continue // the stream delivers it
          showEvent({ id: e.id, name, data: e.data })
          listenTo(name)
        }
      }
    }
  } catch (err) {
    console.warn('finding event names:', err.message)
  } finally {
    finder.busy = false
    if (finder.again) {
      finder.again = false
      findNames()
    }
  }
}
findNames() // from the latest position

// ---- the publish box -------------------------------------------------------

$('publish').addEventListener('submit', async (e) => {
  e.preventDefault()
  const result = $('publish-result')
  const topic = $('publish-topic').value.trim()
  const name = $('publish-event').value.trim()
  const data = $('publish-data').value || `hello at ${clockTime(new Date())}`
  if (topic === TOPIC && name !== '') listenTo(name)
  const query = new URLSearchParams({ topic })
  if (name !== '') query.set('event', name)
  const headers = { 'content-type': 'text/plain; charset=utf-8' }
  const token = $('publish-token').value
  if (token !== '') headers.authorization = `Bearer ${token}`
  result.classList.remove('error')
  delete result.dataset.id
  result.textContent = 'publishing…'
  try {
    const res = await fetch(`/publish?${query}`, { method: 'POST', body: data, headers })
    const body = await res.json().catch(() => null)
    if (res.ok && body && body.id) {
      result.dataset.id = body.id
      result.textContent = `published: ${body.id}`
    } else {
      result.classList.add('error')
      result.textContent = `refused: ${res.status} ${(body && (body.message || body.error)) || res.statusText}`
      if (res.status === 401) { // the server wants PUBLISH_TOKEN: show where it goes
        $('publish-token').closest('details').open = true
        $('publish-token').focus()
      }
    }
  } catch (err) {
    result.classList.add('error')
    result.textContent = `failed: ${err.message}`
  }
})

// ---- the figures -----------------------------------------------------------

const stats = new SseClient('/dashboard/stats', { logger: pageLogger('figures: ') })
const samples = [] // parsed `stats` events, oldest first (across restarts)

stats.addEventListener('statechange', (e) => showState($('stats-state'), e.state))
showState($('stats-state'), stats.state)
stats.addEventListener('stats', (e) => {
  let sample
  try {
    sample = JSON.parse(e.data)
  } catch {
    return
  }
  const last = samples.at(-1)
  if (last && sample.t <= last.t) return // sent again after a reconnect
  samples.push(sample)
  while (samples.length > 2 && samples[1].t < sample.t - WINDOW_MS - 2000) samples.shift()
  const latest = sample.history && sample.history.latest
  if (latest && latest !== finder.latest) {
    finder.latest = latest
    if (latest !== events.lastEventId) findNames() // (the first read, if it failed, again)
  }
  scheduleDraw()
})

const GAP_MS = 3500 // samples further apart: the figures were cut off

function epochOf (sample) {
  const latest = sample.history && sample.history.latest
  return typeof latest === 'string' ? latest.slice(0, latest.lastIndexOf('-')) : ''
}

/** Whether b follows a without a gap, on the same server run (no restart: same epoch, counters not back). */
function follows (a, b) {
  return b.t - a.t <= GAP_MS && epochOf(a) === epochOf(b) && b.published >= a.published && b.delivered >= a.delivered
}

/** [[t, value(sample)]], null at each gap or restart. */
function gauge (value) {
  return samples.map((s, i) => (i > 0 && !follows(samples[i - 1], s) ? [null, [s.t, value(s)]] : [[s.t, value(s)]])).flat()
}

/** [[t, per second]] from a cumulative counter read by value(sample); null at each gap or restart. */
function rates (value) {
  const points = []
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1]
    const b = samples[i]
    if (follows(a, b) && b.t > a.t) points.push([b.t, Math.max(0, value(b) - value(a)) / ((b.t - a.t) / 1000)])
    else points.push(null)
  }
  return points
}

function reasonColor (reason, index) {
  return REASON_COLORS[reason] || MORE_COLORS[index % MORE_COLORS.length]
}

function showLegend (reasons, totals) {
  const legend = $('legend-disconnects')
  legend.replaceChildren(...reasons.map((reason, i) => {
    const item = document.createElement('li')
    if (totals[reason] === 0) item.className = 'zero'
    const swatch = document.createElement('span')
    swatch.className = 'swatch'
    swatch.style.background = reasonColor(reason, i)
    const name = document.createElement('span')
    name.textContent = reason
    const count = document.createElement('span')
    count.className = 'count'
    count.textContent = formatCount(totals[reason])
    item.append(swatch, name, count)
    return item
  }))
}

let drawPending = false
function scheduleDraw () {
  if (drawPending) return
  drawPending = true
  requestAnimationFrame(() => {
    drawPending = false
    draw()
  })
}

function draw () {
  showCursor()
  const last = samples.at(-1)
  if (!last) return
  const now = last.t
  // The last 120 s; a server up for less shows what there is, full width.
  const windowMs = Math.min(WINDOW_MS, Math.max(10000, Math.ceil((now - samples[0].t) / 5000) * 5000))
  const publishes = rates((s) => s.published)
  const deliveries = rates((s) => s.delivered)
  const lastRate = (points) => (points.length > 0 && points.at(-1) !== null ? points.at(-1)[1] : NaN)

  $('now-connections').textContent = formatCount(last.connections)
  $('now-publishes').textContent = formatCount(lastRate(publishes))
  $('now-deliveries').textContent = formatCount(lastRate(deliveries))
  $('now-queue').textContent = formatBytes(last.queueBytes)
  $('now-memory').textContent = `${formatBytes(last.rss)} rss, ${formatBytes(last.heapUsed)} heap`
  $('now-history').textContent = last.history ? `${formatCount(last.history.events)} events, ${formatBytes(last.history.bytes)}` : 'off'

  drawChart($('chart-connections'), [{ color: COLORS.connections, points: gauge((s) => s.connections) }], { now, windowMs })
  drawChart($('chart-publishes'), [{ color: COLORS.publishes, points: publishes }], { now, windowMs })
  drawChart($('chart-deliveries'), [{ color: COLORS.deliveries, points: deliveries }], { now, windowMs })
  drawChart($('chart-queue'), [{ color: COLORS.queue, points: gauge((s) => s.queueBytes) }], { now, windowMs, bytes: true })

  // Disconnects: one line per reason (per second), those with any in the
  // window drawn over a grey baseline; the legend has every reason's total.
  const totals = last.disconnects || {}
  const reasons = Object.keys(totals)
  const perReason = reasons.map((reason, i) => ({
    reason,
    color: reasonColor(reason, i),
    points: rates((s) => (s.disconnects && s.disconnects[reason]) || 0)
  }))
  const active = perReason.filter((s) => s.points.some((p) => p !== null && p[0] >= now - windowMs && p[1] > 0))
  const baseline = { color: '#cbd5e1', width: 1.5, points: rates(() => 0) }
  drawChart($('chart-disconnects'), [baseline, ...active], { now, windowMs, fill: false })
  $('now-disconnects').textContent = formatCount(perReason.reduce((sum, s) => sum + lastRate(s.points), 0))
  showLegend(reasons, totals)
}

// Charts follow their element's size (and the device pixel ratio with it).
const resized = new ResizeObserver(() => scheduleDraw())
for (const canvas of document.querySelectorAll('canvas')) resized.observe(canvas)
window.addEventListener('resize', scheduleDraw)

window.addEventListener('pagehide', () => {
  events.close()
  stats.close()
})
// Back from the back-forward cache with both clients closed: start afresh.
window.addEventListener('pageshow', (e) => { if (e.persisted) window.location.reload() })

// For the console (and the tests): the two clients and the samples.
window.dashboard = { events, stats, get samples () { return samples } }
