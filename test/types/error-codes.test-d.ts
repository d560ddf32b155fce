import { expectAssignable, expectNotAssignable } from 'tsd'
import { SseError, type ErrorCode } from '../..'

// Comparisons with the codes thrown by JS alone compile (test/js/error-codes.test.js checks the whole list).
declare const err: SseError
if (err.code === 'ERR_SSE_INVALID_FILTER' || err.code === 'ERR_SSE_TOO_MANY_CONNECTIONS_PER_IP') {
  expectAssignable<ErrorCode>(err.code)
}
expectAssignable<ErrorCode>('ERR_SSE_INVALID_FILTER')
expectNotAssignable<ErrorCode>('ERR_SSE_NO_SUCH_CODE')
