import { expectType, expectError } from 'tsd'
import { Hub } from '../..'
import { RedisBus, keysFor, DEFAULT_PREFIX, type BusStats, type BusState } from '../../lib/redis'

const bus = new RedisBus({ url: 'redis://127.0.0.1:6379', prefix: 'app:{orders}', maxOutboxEvents: 100 })
expectError(new RedisBus({ url: 6379 }))
expectError(new RedisBus({ readCount: '512' }))
const hub = new Hub({ history: true, bus })
expectError(new Hub({ bus: {} }))
expectType<BusState>(bus.state)
expectType<Promise<void>>(bus.ready())
expectType<Promise<string | null>>(bus.publish('orders', { id: 1 }, { event: 'created' }))
expectType<Promise<string | null>>(bus.broadcast('hello'))
expectType<BusStats | undefined>(hub.stats().bus)
expectType<number>(bus.stats().outbox.dropped)
bus.on('state', (e) => { expectType<BusState>(e.previous) })
bus.on('warning', (w) => { expectType<string>(w.message) })
expectType<Readonly<{ meta: string, stream: string }>>(keysFor(DEFAULT_PREFIX))
expectType<Promise<void>>(bus.close())
