#!lua name=ssefanout
-- The Redis Function library of sse-fanout's Redis bus (docs/redis.md).
-- ssefanout_publish_v1 is the only writer of a hub's two keys:
--   KEYS[1] = <prefix>:meta    hash { epoch, seq }
--   KEYS[2] = <prefix>:stream  a stream of entries in format v1, ids <seq>-0
-- It validates every argument before it writes anything (a function is not
-- rolled back when it fails halfway), takes the next seq of the epoch, adds
-- the entry and returns { epoch, seq }. When meta is missing or unreadable
-- (Redis restarted without persistence, the key evicted or overwritten) it
-- starts a new epoch and deletes the stream, so that epoch, seq and stream
-- always agree. A later format gets a function of its own (_v2) beside this
-- one, so instances of both versions can share one Redis while they roll.
--
-- FCALL ssefanout_publish_v1 2 <meta> <stream> <maxlen> <topic|""> <data> [name value]...
--   maxlen  the stream's bound (XADD MAXLEN ~), an integer >= 1
--   topic   "" for a broadcast
--   data    any bytes (the SSE encoding is done by each instance)
--   names   event, id, users (a JSON array of strings: a private event),
--           origin (an instance's outbox marker), maxdata (bytes, default 1 MiB)
--
-- FCALL ssefanout_epoch_v1 2 <meta> <stream>   (library version 2)
--   { epoch, seq } of the hub, starting an epoch at seq 0 (and deleting the
--   stream) when meta is missing or unreadable, as a publish would. An
--   instance calls it on connect when meta is missing, so that every
--   instance is at one epoch before the first event (a position id given
--   out before it, <epoch>-0, means the same on each).

local LIBRARY_VERSION = 2
local FORMAT_VERSION = '1'
local MAX_TOPIC_BYTES = 1024
local MAX_EVENT_BYTES = 1024
local MAX_ID_BYTES = 1024
local MAX_ORIGIN_BYTES = 256
local DEFAULT_MAX_DATA_BYTES = 1048576
local MAX_MAX_DATA_BYTES = 536870912
local MAX_MAXLEN = 1000000000
local MAX_SEQ = 9007199254740991
local ALNUM = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'

local NAME = 'ssefanout_publish_v1'
-- The option names of the call and the entry fields they fill.
local FIELDS = { event = 'n', id = 'i', users = 'u', origin = 'o' }

local function fail (message)
  return redis.error_reply('ERR ' .. NAME .. ': ' .. message)
end

-- A value quoted for an error message: cut short, control bytes as '?'
-- (an error reply is one line).
local function shown (value)
  if #value > 40 then value = string.sub(value, 1, 40) .. '...' end
  return "'" .. string.gsub(value, '%c', '?') .. "'"
end

local function single_line (s)
  return string.find(s, '[\r\n%z]') == nil
end

-- A decimal integer in [min, max], or nil.
local function integer_in (s, min, max)
  if not string.match(s, '^[1-9]%d*$') and s ~= '0' then return nil end
  if #s > 16 then return nil end
  local n = tonumber(s)
  if n < min or n > max then return nil end
  return n
end

-- A non-empty string of at most max bytes without CR, LF or NUL, else an error text.
local function check_line (name, value, max)
  if #value == 0 or #value > max or not single_line(value) then
    return name .. ' must be 1 to ' .. max .. ' bytes without CR, LF or NUL (got ' .. #value .. ' bytes)'
  end
  return nil
end

-- users: a JSON array of strings, kept as given.
local function check_users (text, max)
  if #text > max then return 'users must be at most ' .. max .. ' bytes of JSON (got ' .. #text .. ')' end
  local expected = 'users must be a JSON array of strings, got ' .. shown(text)
  if not string.match(text, '^%s*%[') then return expected end
  local ok, list = pcall(cjson.decode, text)
  if not ok or type(list) ~= 'table' then return expected end
  local n = 0
  for _ in pairs(list) do n = n + 1 end
  if n ~= #list then return expected end
  for i = 1, n do
    if type(list[i]) ~= 'string' then return expected end
  end
  return nil
end

-- A new epoch: the server's time in microseconds in base 62 (9 characters
-- of [A-Za-z0-9] until the year 2398; an instance's local epochs have 8).
local function new_epoch (previous)
  local time = redis.call('TIME')
  local n = tonumber(time[1]) * 1000000 + tonumber(time[2])
  local out = ''
  repeat
    local digit = n % 62
    out = string.sub(ALNUM, digit + 1, digit + 1) .. out
    n = (n - digit) / 62
  until n == 0
  if out == previous then out = out .. 'A' end
  return out
end

-- { epoch, seq } of meta when it is whole and well-formed, else nil.
local function read_meta (key)
  local reply = redis.pcall('HMGET', key, 'epoch', 'seq')
  if type(reply) ~= 'table' or reply.err then return nil end
  local epoch, seq = reply[1], reply[2]
  if type(epoch) ~= 'string' or type(seq) ~= 'string' then return nil end
  if #epoch > 32 or not string.match(epoch, '^%w+$') then return nil end
  seq = integer_in(seq, 0, MAX_SEQ - 1)
  if seq == nil then return nil end
  return epoch, seq
end

-- A Lua number as Redis argument text: tostring() and '..' print 14 digits
-- ('1e+14'), this prints every digit of an integer up to 2^53.
local function decimal (n)
  return string.format('%.0f', n)
end

-- meta and stream, or nil and an error text.
local function hub_keys (keys)
  if #keys ~= 2 then return nil, nil, 'expected 2 keys (<prefix>:meta <prefix>:stream), got ' .. #keys end
  local meta, stream = keys[1], keys[2]
  local prefix = string.match(meta, '^(.*):meta$')
  if prefix == nil or stream ~= prefix .. ':stream' then
    return nil, nil, 'the keys must be <prefix>:meta and <prefix>:stream, got ' .. shown(meta) .. ' and ' .. shown(stream)
  end
  return meta, stream, nil
end

local function publish (keys, args)
  local meta, stream, key_error = hub_keys(keys)
  if key_error then return fail(key_error) end
  if #args < 3 or #args % 2 ~= 1 then
    return fail('expected <maxlen> <topic> <data> [name value]..., got ' .. #args .. ' arguments')
  end
  local maxlen = args[1]
  if integer_in(maxlen, 1, MAX_MAXLEN) == nil then
    return fail('maxlen must be an integer from 1 to ' .. MAX_MAXLEN .. ', got ' .. shown(maxlen))
  end
  local topic, data = args[2], args[3]
  if topic ~= '' then
    local err = check_line('topic', topic, MAX_TOPIC_BYTES)
    if err then return fail(err .. '; "" is a broadcast') end
  end
  local options = {}
  for i = 4, #args, 2 do
    local name, value = args[i], args[i + 1]
    if FIELDS[name] == nil and name ~= 'maxdata' then
      return fail('unknown option ' .. shown(name) .. ' (expected event, id, users, origin or maxdata)')
    end
    if options[name] ~= nil then return fail('option ' .. name .. ' given twice') end
    options[name] = value
  end
  local maxdata = DEFAULT_MAX_DATA_BYTES
  if options.maxdata ~= nil then
    maxdata = integer_in(options.maxdata, 1, MAX_MAX_DATA_BYTES)
    if maxdata == nil then
      return fail('maxdata must be an integer from 1 to ' .. MAX_MAX_DATA_BYTES .. ', got ' .. shown(options.maxdata))
    end
  end
  if #data > maxdata then return fail('data is ' .. #data .. ' bytes, more than maxdata (' .. maxdata .. ')') end
  local err = (options.event and check_line('event', options.event, MAX_EVENT_BYTES)) or
    (options.id and check_line('id', options.id, MAX_ID_BYTES)) or
    (options.origin and check_line('origin', options.origin, MAX_ORIGIN_BYTES)) or
    (options.users and check_users(options.users, maxdata))
  if err then return fail(err) end

  -- Everything is valid: from here on the call writes.
  local epoch, seq = read_meta(meta)
  if epoch == nil then
    epoch = new_epoch(nil)
    seq = 0
    redis.call('DEL', meta, stream)
  end
  seq = seq + 1
  local fields = { 'v', FORMAT_VERSION, 'e', epoch }
  if topic ~= '' then
    fields[#fields + 1] = 't'
    fields[#fields + 1] = topic
  end
  fields[#fields + 1] = 'd'
  fields[#fields + 1] = data
  for _, name in ipairs({ 'event', 'id', 'users', 'origin' }) do
    if options[name] ~= nil then
      fields[#fields + 1] = FIELDS[name]
      fields[#fields + 1] = options[name]
    end
  end
  local added = redis.pcall('XADD', stream, 'MAXLEN', '~', maxlen, decimal(seq) .. '-0', unpack(fields))
  if type(added) == 'table' and added.err then
    -- The stream disagrees with meta (written by something else, or not a
    -- stream): a new epoch over a new stream keeps the two consistent.
    epoch = new_epoch(epoch)
    seq = 1
    fields[4] = epoch
    redis.call('DEL', stream)
    redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '1-0', unpack(fields))
  end
  redis.call('HSET', meta, 'epoch', epoch, 'seq', decimal(seq))
  return { epoch, seq }
end

redis.register_function {
  function_name = NAME,
  callback = publish,
  flags = {}
}

local function current_epoch (keys, args)
  local meta, stream, key_error = hub_keys(keys)
  if key_error then return redis.error_reply('ERR ssefanout_epoch_v1: ' .. key_error) end
  if #args ~= 0 then return redis.error_reply('ERR ssefanout_epoch_v1: expected no arguments, got ' .. #args) end
  local epoch, seq = read_meta(meta)
  if epoch == nil then
    epoch = new_epoch(nil)
    seq = 0
    redis.call('DEL', meta, stream)
    redis.call('HSET', meta, 'epoch', epoch, 'seq', '0')
  end
  return { epoch, seq }
end

redis.register_function {
  function_name = 'ssefanout_epoch_v1',
  callback = current_epoch,
  flags = {}
}

-- The library's version, read by the loader (FCALL_RO ssefanout_version 0)
-- so that an older instance never replaces a newer library.
redis.register_function {
  function_name = 'ssefanout_version',
  callback = function () return LIBRARY_VERSION end,
  flags = { 'no-writes' }
}
