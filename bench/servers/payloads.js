'use strict'
// The event data the benchmark servers publish, shared by servers/node-server.js
// and servers/express-compression-server.js so that every server sends the same
// bytes:
//   text(size)          "<CLOCK_MONOTONIC ns> " padded with 'x' to size bytes (the
//                        scenarios that measure the fan-out, not the bytes)
//   json(size, seq)     a JSON object of exactly size bytes of UTF-8 (when size >= about 250)
//                        that starts {"ts":<CLOCK_MONOTONIC ns>, (the load generator
//                        reads it with --data-prefix '{"ts":'): an order event of a
//                        shop with ids, names, amounts, dates and, from 600 bytes, line
//                        items, a shipping address and a note, drawn from seq by a
//                        small PRNG, so events differ as real ones do (what the
//                        compression scenario measures; repeated characters would
//                        compress unrealistically well)
//   pbRecord(seq)       the pocketbase scenario's record, about 280 bytes of JSON,
//                        "ts" first
//   make(kind, size, seq) text or json by name (the servers' `kind` query parameter)

function text (size) {
  const head = `${process.hrtime.bigint()} `
  return size > head.length ? head + 'x'.repeat(size - head.length) : head
}

// mulberry32: a tiny PRNG, so the same seq gives the same event on every server.
function prng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const FIRST = ['Maria', 'Jonas', 'Aiko', 'Lena', 'Omar', 'Chloé', 'Mateo', 'Priya', 'Noah', 'Fatima', 'Lucas', 'Ingrid', 'Kenji', 'Sofia', 'David', 'Amara', 'Felix', 'Yara', 'Tomás', 'Hannah']
const LAST = ['García', 'Müller', 'Tanaka', 'Schmidt', 'Haddad', 'Dubois', 'Rossi', 'Sharma', 'Johnson', 'Okafor', 'Silva', 'Larsen', 'Sato', 'Novak', 'Brown', 'Mensah', 'Weber', 'Costa', 'Fernández', 'Kowalski']
const TYPES = ['order.created', 'order.paid', 'order.shipped', 'order.updated', 'order.delivered']
const STATUS = ['pending', 'paid', 'packing', 'shipped', 'delivered']
const PRODUCTS = ['Wireless Mouse', 'USB-C Hub 7-in-1', 'Mechanical Keyboard', 'Noise Cancelling Headphones', '27" Monitor', 'Laptop Stand', 'Webcam 1080p', 'Desk Lamp', 'Ergonomic Chair', 'Portable SSD 1TB', 'Phone Case', 'Charging Cable 2m']
const CITIES = [['Berlin', 'DE', '10115'], ['Lyon', 'FR', '69001'], ['Osaka', 'JP', '530-0001'], ['Austin', 'US', '73301'], ['Porto', 'PT', '4000-001'], ['Kraków', 'PL', '30-001']]
const STREETS = ['Hauptstraße', 'Rue de la République', 'Main Street', 'Rua das Flores', 'ul. Floriańska', 'Shinsaibashi-suji']
const WORDS = 'please leave the parcel at the front desk if nobody answers the door ring twice gift wrap requested deliver after six in the evening call on arrival fragile handle with care the customer asked for an invoice with the company name and tax number'.split(' ')
const ALNUM = 'abcdefghijklmnopqrstuvwxyz0123456789'
const DAY0 = Date.UTC(2026, 0, 1)

function json (size, seq) {
  const rnd = prng(Math.imul(seq + 1, 2654435761))
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)]
  const id = (prefix, n) => { let s = prefix; for (let i = 0; i < n; i++) s += ALNUM[Math.floor(rnd() * 36)]; return s }
  const money = (max) => Math.round(rnd() * max * 100) / 100
  const first = pick(FIRST)
  const last = pick(LAST)
  const event = {
    seq,
    type: pick(TYPES),
    id: id('ord_', 14),
    at: new Date(DAY0 + seq * 7919 + Math.floor(rnd() * 1000)).toISOString(),
    customer: { id: id('cus_', 10), name: `${first} ${last}` },
    status: pick(STATUS),
    total: money(500),
    currency: pick(['EUR', 'USD', 'GBP'])
  }
  if (size >= 600) {
    const [city, country, zip] = pick(CITIES)
    event.customer.email = `${first}.${last}@example.com`.toLowerCase()
    event.shipping = { street: `${pick(STREETS)} ${1 + Math.floor(rnd() * 200)}`, city, zip, country, carrier: pick(['DHL', 'UPS', 'La Poste', 'Yamato', 'CTT']), tracking: id('', 16).toUpperCase() }
    event.items = []
  }
  const ts = String(process.hrtime.bigint())
  const open = `{"ts":${ts},`
  let body = JSON.stringify(event).slice(1) // '"seq":...}'
  // Line items while there is room, then a note of words cut to the exact size.
  const bytes = (s) => Buffer.byteLength(s)
  while (event.items && bytes(open) + bytes(body) + 160 < size) {
    event.items.push({ sku: id('SKU-', 6).toUpperCase(), name: pick(PRODUCTS), qty: 1 + Math.floor(rnd() * 3), price: money(300) })
    body = JSON.stringify(event).slice(1)
  }
  const room = size - bytes(open) - bytes(body) - ',"note":""'.length
  if (room < 0) return open + body
  let note = ''
  while (note.length < room) note += (note ? ' ' : '') + pick(WORDS)
  return open + body.slice(0, -1) + `,"note":"${note.slice(0, room)}"}`
}

const pbId = (prefix, n) => prefix + String(n).padStart(14, '0') // 15 characters, as PocketBase's ids

function pbRecord (seq, keys = 100) {
  return {
    ts: Number(process.hrtime.bigint()),
    seq,
    id: pbId('r', seq),
    collectionId: 'pbc_1125843985',
    collectionName: 'posts',
    owner: pbId('u', seq % keys),
    title: `Post ${seq}, one record to every subscriber`,
    views: 1000,
    created: '2026-01-01 12:00:00.000Z',
    updated: '2026-01-01 12:00:00.000Z'
  }
}

function make (kind, size, seq) {
  return kind === 'json' ? json(size, seq) : text(size)
}

module.exports = { text, json, pbRecord, pbId, make }
