import type { Message } from '../../domain/types.ts';

/** Why a stream ended, as the client is told (a `reconnect` event) and the metrics count it. */
export type CloseReason = 'slow_consumer' | 'shutting_down' | 'unavailable' | 'client_closed';

/** Where a live stream writes: the HTTP layer's SSE connection (or a test's recorder). */
export interface StreamSink {
  /**
   * Sends one event. `id` is the stream position the client resumes from (`N` or `N:E`, see OrderedDelivery).
   * False when the client is behind (its buffer is past the high-water mark): a replay then waits for
   * `writable`.
   */
  send(kind: 'created' | 'edited', message: Message, id: string): boolean;
  /**
   * Tells the client where the stream starts (`id`, as `send`'s), before any event: a client cut off
   * before the first event resumes from there, not from wherever the stream is when it comes back.
   */
  start(id: string): void;
  /** Resolves once the client has caught up, or the stream closed. */
  writable(): Promise<void>;
  /** Ends the stream, telling the client why and where to resume. */
  close(reason: CloseReason): void;
}
