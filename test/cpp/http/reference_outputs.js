'use strict'
// Prints what Node's URLSearchParams and negotiator 1.0.0 (through
// lib/compression.js negotiate()) make of the inputs of query_test.cpp and
// accept_encoding_test.cpp, as C++ string literals to paste into their
// tables. Run once by hand (node test/cpp/http/reference_outputs.js); the
// tests hold the expected strings, so the C++ suite needs no Node.
const { negotiate } = require('../../../lib/compression')

// A C++ literal of a JS string's UTF-8 (or latin1) bytes, non-ASCII and quotes escaped.
function literal (s, encoding = 'utf8') {
  let out = '"'
  let escaped = false
  for (const b of Buffer.from(s, encoding)) {
    const c = String.fromCharCode(b)
    // A hex digit right after \xNN would extend the escape: close the literal.
    if (escaped && /[0-9a-fA-F]/.test(c)) out += '""'
    escaped = false
    if (b === 0x22 || b === 0x5c) out += '\\' + c
    else if (b >= 0x20 && b < 0x7f) out += c
    else {
      out += '\\x' + b.toString(16).padStart(2, '0')
      escaped = true
    }
  }
  return out + '"'
}

// [query, name]: every value of `name`. Queries are ASCII: the parser refuses
// other bytes in a target, as Node's own HTTP parser does.
const QUERIES = [
  ['topics=a&topics=b', 'topics'],
  ['topics=a+b&topics=a%20b&topics=a%2Bb', 'topics'],
  ['topics=%2Fa%2F%7Bid%7D', 'topics'],
  ['topics=%&topics=%2&topics=%zz&topics=%%41&topics=100%', 'topics'],
  ['topics=%C3%A9&topics=%E2%82%AC&topics=%F0%9F%98%80', 'topics'],
  ['topics=%FF&topics=%C3&topics=%C3%28&topics=%E2%82&topics=%ED%A0%80&topics=%F4%90%80%80', 'topics'],
  ['topics=%C0%AF&topics=%E0%80%AF&topics=%F0%80%80%AF&topics=%80%80&topics=a%FEb', 'topics'],
  ['topics=%EF%BB%BFx&topics=%00', 'topics'],
  ['topics&topics=&=x&topics==&&topics=a=b', 'topics'],
  ['top%69cs=x&Topics=y&topics+=z&topics%20=w', 'topics'],
  ['a=1&b=2', 'topics'],
  ['', 'topics'],
  ['lastEventId=e-7&topics=x', 'lastEventId'],
  ['t%F0%9F%98%80=1&t%C3%A9=2&t%FF=3', 't\u{1F600}'],
  ['t%F0%9F%98%80=1&t%C3%A9=2&t%FF=3', 't\u00e9'],
  ['t%F0%9F%98%80=1&t%C3%A9=2&t%FF=3', 't\ufffd'],
  ['topics=a%26b%3Dc&topics=%2B', 'topics']
]

// Accept-Encoding headers (latin1, as Node's HTTP parser gives them).
const ENCODINGS = [
  '', 'gzip', 'deflate', 'identity', 'br', '*', 'gzip, deflate', 'deflate, gzip', 'deflate, gzip, br',
  'GZIP', 'Deflate', 'x-gzip', 'gzip;q=0', 'gzip;q=0, deflate', 'gzip;q=0.5, deflate;q=0.8',
  'gzip;q=0.8, deflate;q=0.8', 'deflate;q=0.8, gzip;q=0.8', 'gzip;q=0.5, identity', 'identity;q=0',
  'identity;q=0, gzip;q=0', '*;q=0', '*;q=0, gzip', '*, gzip;q=0', '*;q=0.5, deflate;q=0.4', 'br, *;q=0.1',
  'gzip;q=abc', 'gzip;q=', 'gzip;q', 'gzip;q=abc, deflate', 'gzip;q=1e0, deflate;q=1', 'gzip;q=Infinity, deflate',
  'gzip;q=-1, deflate;q=0.001', 'gzip; q=0.5, deflate', 'gzip;q =0.5, deflate;q=0.6', 'gzip;level=1;q=0.2, deflate;q=0.3',
  'gzip;q=0.2;q=0.9, deflate;q=0.5', 'gzip;q=0.9=1, deflate;q=0.8', 'gzip ; q=0.3, deflate;q=0.2', 'gzip x, deflate',
  ',,gzip;q=0.1,,', ' , ', ';q=1', 'gzip;q=0.5, gzip;q=0.9, deflate;q=0.7', 'gzip;q=0.9, gzip;q=0.5, deflate;q=0.7',
  'gzip;q=.5, deflate;q=0.49', 'gzip;q=1.5, deflate', 'gzip;q=+0.5, deflate;q=0.4', 'gzip;q=0x1, deflate;q=0.1',
  'identity;q=0.5, gzip;q=0.5', 'identity, gzip;q=0.9', 'identity;q=1, *;q=0.9', 'gzip\u00a0;q=0.1, deflate;q=0.2',
  '\u00a0deflate', 'gzip;q=\u00a00.2, deflate;q=0.3', 'gzip;q=0.3\u00a0, deflate;q=0.2', 'deflate;q=0, *',
  'gzip;q=0.5e1, deflate;q=4', 'gzip;q=1e, deflate;q=0.9', 'gzip, deflate;q=NaN', 'gzip;q=-0, deflate;q=0'
]

console.log('// query_test.cpp: {query, name, {values...}}')
for (const [q, name] of QUERIES) {
  const values = new URLSearchParams(q).getAll(name)
  console.log(`{${literal(q)}, ${literal(name)}, {${values.map((v) => literal(v) + 'sv').join(', ')}}},`)
}
console.log('// accept_encoding_test.cpp: {header, coding}')
for (const h of ENCODINGS) {
  const coding = negotiate(h)
  console.log(`{${literal(h, 'latin1')}, Coding::${coding === 'gzip' ? 'kGzip' : coding === 'deflate' ? 'kDeflate' : 'kIdentity'}},`)
}
