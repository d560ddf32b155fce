// sse-fanout/client: a browser EventSource wrapper that resumes from its cursor and falls back to polling.

export type SseClientState = 'connecting' | 'open' | 'reconnecting' | 'polling' | 'closed'

export interface SseClientLogger {
  info (message: string, ...rest: unknown[]): void
  warn (message: string, ...rest: unknown[]): void
  error (message: string, ...rest: unknown[]): void
}

/** The minimal EventSource the client needs (the browser's, or e.g. the `eventsource` package's). */
export interface EventSourceLike extends EventTarget {
  readonly readyState: number
  close (): void
}

export interface SseClientOptions {
  /** Default: globalThis.EventSource. */
  EventSource?: new (url: string, init?: any) => EventSourceLike
  /** Passed to the EventSource constructor (e.g. { withCredentials: true }). */
  eventSourceInit?: unknown
  /** Default: globalThis.fetch (polling only). */
  fetch?: (url: string, init?: any) => Promise<{ status: number, ok: boolean, json (): Promise<any> }>
  /** The catch-up URL (`hub.poll`); undefined or false: no polling fallback. */
  poll?: string | false
  /** The cursor to start from (default: none, the latest position). */
  lastEventId?: string
  /** Backoff base in ms (default 500); set it to the server's `retry:`. */
  minRetryMs?: number
  /** Backoff cap in ms (default 30000). */
  maxRetryMs?: number
  /** Stream attempts in a row that never open before polling (default 3). */
  maxRetries?: number
  /** Default 35000: an attempt not open by then fails; an open stream silent that long is checked against the catch-up. */
  stallTimeoutMs?: number
  /** Default 5000. */
  pollIntervalMs?: number
  /** Long-poll the catch-up (`wait=pollWaitSeconds`) instead of polling every pollIntervalMs (default false). */
  longPoll?: boolean
  /** Default 25. */
  pollWaitSeconds?: number
  /** While polling, try the stream again this often (default 30000). */
  streamRetryMs?: number
  /** The server's reset event name (default 'reset'). */
  resetEvent?: string
  /**
   * The hub's position event (`history.positionEvent`; default 'sse-position'):
   * it moves `lastEventId` and is not dispatched. `false`: an ordinary event.
   */
  positionEvent?: string | false
  /** Default: console with `[SSE] <ISO time>`; false: silent. */
  logger?: SseClientLogger | false
  /** Where `online`/`offline` come from (default globalThis.window; null: none). */
  window?: EventTarget | null
  /** For the backoff's jitter (default Math.random). */
  random?: () => number
}

/** The server's reset (docs/history.md). */
export interface SseResetData {
  reason: 'unknown' | 'epoch' | 'expired' | 'limit'
  requested: string | null
  oldest: string | null
  latest: string
}

export interface SseStateChangeEvent extends CustomEvent<{ state: SseClientState, previous: SseClientState }> {
  readonly state: SseClientState
}

export interface SseClientEventMap {
  message: MessageEvent<string>
  open: Event
  error: CustomEvent<{ message: string, source: 'stream' | 'poll' }>
  reset: MessageEvent<SseResetData>
  statechange: SseStateChangeEvent
}

export declare class SseClient extends EventTarget {
  constructor (url: string, options?: SseClientOptions)
  readonly url: string
  readonly state: SseClientState
  /** The id of the last event delivered: where a reconnect or a poll resumes. */
  readonly lastEventId: string
  addEventListener<K extends keyof SseClientEventMap> (type: K, listener: (event: SseClientEventMap[K]) => void, options?: boolean | AddEventListenerOptions): void
  addEventListener (type: string, listener: (event: MessageEvent<string>) => void, options?: boolean | AddEventListenerOptions): void
  addEventListener (type: string, listener: EventListenerOrEventListenerObject | null, options?: boolean | AddEventListenerOptions): void
  /** The state, for useSyncExternalStore. */
  getSnapshot (): SseClientState
  /** listener() on every state change; returns the unsubscribe. */
  subscribe (listener: () => void): () => void
  close (): void
}

/** Full-jitter exponential backoff for attempt 1, 2, ...: in [0, min(maxRetryMs, minRetryMs * 2^(attempt-1))). */
export declare function backoff (attempt: number, options?: { minRetryMs?: number, maxRetryMs?: number, random?: () => number }): number

/** The default logger, over `out` (default console). */
export declare function consoleLogger (out?: SseClientLogger): SseClientLogger
