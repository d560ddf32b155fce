import { expectType, expectError } from 'tsd'
import { SseClient, backoff, consoleLogger, type SseClientState, type SseResetData } from '../../lib/client/index'

const client = new SseClient('/events?topics=news', { poll: '/poll?topics=news' })
expectType<SseClientState>(client.state)
expectType<SseClientState>(client.getSnapshot())
expectType<() => void>(client.subscribe(() => {}))
expectType<string>(client.lastEventId)
client.addEventListener('message', (e) => { expectType<string>(e.data) })
client.addEventListener('chat', (e) => { expectType<string>(e.lastEventId) })
client.close()
expectType<number>(backoff(3, { minRetryMs: 500, maxRetryMs: 30000 }))
consoleLogger()
declare const reset: SseResetData
expectType<string>(reset.latest)
expectError(new SseClient())
new SseClient('/events', { positionEvent: 'where' })
new SseClient('/events', { positionEvent: false })
expectError(new SseClient('/events', { positionEvent: true }))
