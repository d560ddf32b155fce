'use strict'
// A small parser for the text/event-stream format, following the WHATWG HTML
// standard, section "Server-sent events" (9.2.6 "Interpreting an event
// stream"). Test-only: it turns the bytes a client received into the events an
// EventSource would dispatch, so tests compare what a browser would see.
//
// Events are reported as { event, data, lastEventId }:
//   event        the event type ("message" when no event field was given)
//   data         the data buffer with its last LF removed
//   lastEventId  the last event ID buffer when the event was dispatched
//                (it persists across events, as in the standard)
// Comments (lines starting with ':') are counted, not reported as events.

const { StringDecoder } = require('node:string_decoder')

class SseParser {
  /** @param {(ev: {event: string, data: string, lastEventId: string}) => void} onEvent */
  constructor (onEvent) {
    this.onEvent = onEvent
    this.decoder = new StringDecoder('utf8')
    this.buffer = '' // an incomplete line
    this.firstChunk = true
    this.pendingCR = false // the last chunk ended in CR: a following LF belongs to it
    this.data = ''
    this.eventType = ''
    this.lastEventId = ''
    this.sourceLastEventId = '' // set at each dispatch (see _dispatch)
    this.retry = null // the last valid retry value, in ms
    this.comments = 0
    this.fields = 0 // every field line seen, known or not
  }

  /** Feeds bytes (Buffer) or text. */
  push (chunk) {
    let text = typeof chunk === 'string' ? chunk : this.decoder.write(chunk)
    if (this.firstChunk && text.length > 0) {
      this.firstChunk = false
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1) // one leading BOM is ignored
    }
    if (this.pendingCR && text.length > 0) {
      this.pendingCR = false
      if (text[0] === '\n') text = text.slice(1)
    }
    let start = 0
    const s = this.buffer + text
    this.buffer = ''
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i)
      if (c === 10 /* LF */ || c === 13 /* CR */) {
        this._line(s.slice(start, i))
        if (c === 13) {
          if (i + 1 < s.length) {
            if (s.charCodeAt(i + 1) === 10) i++
          } else {
            this.pendingCR = true
          }
        }
        start = i + 1
      }
    }
    this.buffer = s.slice(start)
  }

  /** End of stream: an incomplete event is discarded (as the standard says). */
  end () {
    this.buffer += this.decoder.end()
    this.buffer = ''
    this.data = ''
    this.eventType = ''
  }

  _line (line) {
    if (line.length === 0) return this._dispatch()
    if (line[0] === ':') {
      this.comments++
      return
    }
    this.fields++
    const colon = line.indexOf(':')
    let field = line
    let value = ''
    if (colon >= 0) {
      field = line.slice(0, colon)
      value = line.slice(colon + 1)
      if (value[0] === ' ') value = value.slice(1)
    }
    switch (field) {
      case 'event':
        this.eventType = value
        break
      case 'data':
        this.data += value + '\n'
        break
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value
        break
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.retry = Number(value)
        break
      default:
        break // ignored, as the standard says
    }
  }

  _dispatch () {
    // The standard's step 1: the source's last event ID (what EventSource
    // sends as Last-Event-ID on reconnect) is set even when no event follows.
    this.sourceLastEventId = this.lastEventId
    if (this.data === '') {
      this.eventType = ''
      return
    }
    const data = this.data.endsWith('\n') ? this.data.slice(0, -1) : this.data
    const ev = { event: this.eventType || 'message', data, lastEventId: this.lastEventId }
    this.data = ''
    this.eventType = ''
    this.onEvent(ev)
  }
}

module.exports = { SseParser }
