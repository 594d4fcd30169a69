import type { ServerResponse } from 'node:http';
import type { Message } from '../../domain/types.ts';
import { messageView } from '../../domain/views.ts';
import type { CloseReason, StreamSink } from '../../services/live/sink.ts';

export interface SseOptions {
  /** A comment line this often keeps idle connections open through proxies (NGINX's read timeout). */
  heartbeatMs: number;
  /** Bytes buffered for a client that does not read beyond which it is cut off (bounded memory). */
  maxBufferedBytes: number;
  /** Called once, when the stream ended for whatever reason. */
  onClose(reason: CloseReason): void;
}

const MESSAGES: Record<CloseReason, string> = {
  slow_consumer:
    'this client fell too far behind the stream; reconnect with Last-Event-ID to continue where it left off',
  shutting_down: 'this server is shutting down; reconnect with Last-Event-ID to continue where it left off',
  unavailable: 'live events are unavailable right now; reconnect with Last-Event-ID in a moment',
  client_closed: 'closed',
};

/** The headers of a stream's response, and of its HEAD. */
export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  // NGINX: pass each event on as it comes, whatever proxy_buffering says.
  'x-accel-buffering': 'no',
} as const;

/** How long a closing stream may take to flush its last event before its socket is destroyed. */
const CLOSE_GRACE_MS = 5_000;

/**
 * One Server-Sent Events response. Memory stays bounded: every write is appended to the response's buffer
 * (that is what keeps events in order), and once what is buffered for this client passes
 * `maxBufferedBytes` (see #behind) the stream ends with a `reconnect` event naming the last id sent; a
 * client that does not even take that within a grace period has its socket destroyed.
 */
export class SseConnection implements StreamSink {
  readonly #res: ServerResponse;
  readonly #options: SseOptions;
  readonly #heartbeat: NodeJS.Timeout;
  #lastId: string | undefined;
  #closed = false;

  constructor(res: ServerResponse, headers: Record<string, string>, options: SseOptions) {
    this.#res = res;
    this.#options = options;
    // Once a stream ends its connection is of no further use: close it rather than keep it idle (a cut-off
    // slow consumer's socket must go, and with it what the kernel still buffers for it).
    res.shouldKeepAlive = false;
    res.writeHead(200, { ...headers, ...SSE_HEADERS });
    // How long a browser waits before reconnecting; the first bytes also get the headers through proxies.
    res.write('retry: 2000\n\n');
    this.#heartbeat = setInterval(() => {
      if (!this.#behind() && !res.writableNeedDrain) res.write(': heartbeat\n\n');
    }, options.heartbeatMs);
    res.on('close', () => this.#end('client_closed'));
  }

  get closed(): boolean {
    return this.#closed;
  }

  start(id: string): void {
    if (this.#closed) return;
    this.#lastId = id;
    // An `id:` field without data dispatches no event, and still sets a browser's Last-Event-ID.
    this.#res.write(`id: ${id}\n\n`);
  }

  send(kind: 'created' | 'edited', message: Message, id: string): boolean {
    if (this.#closed || this.#behind()) return false;
    this.#lastId = id;
    return this.#res.write(`id: ${id}\nevent: ${kind}\ndata: ${JSON.stringify(messageView(message))}\n\n`);
  }

  writable(): Promise<void> {
    if (this.#closed || !this.#res.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#res.off('drain', done);
        this.#res.off('close', done);
        resolve();
      };
      this.#res.on('drain', done);
      this.#res.on('close', done);
    });
  }

  close(reason: CloseReason): void {
    if (this.#closed) return;
    const data = {
      code: reason,
      message: MESSAGES[reason],
      ...(this.#lastId !== undefined && { last_event_id: this.#lastId }),
    };
    this.#res.end(`event: reconnect\ndata: ${JSON.stringify(data)}\n\n`);
    const grace = setTimeout(() => this.#res.destroy(), CLOSE_GRACE_MS);
    grace.unref();
    this.#res.once('close', () => clearTimeout(grace));
    this.#end(reason);
  }

  /**
   * Measured before each write, not after: the events of one committed batch are written in one go (up to
   * WRITE_BATCH_MAX of them), which a client that reads is given time to take. What is still waiting when
   * the next event (or heartbeat) comes is what makes a client too slow; so a client holds at most the cap
   * plus one batch. Replays wait for the buffer to drain before writing more, so they never get here.
   */
  #behind(): boolean {
    if (this.#res.writableLength <= this.#options.maxBufferedBytes) return false;
    this.close('slow_consumer');
    return true;
  }

  #end(reason: CloseReason): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#heartbeat);
    this.#options.onClose(reason);
  }
}
