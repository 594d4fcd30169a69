import type { FeedEvent, Message } from '../../domain/types.ts';
import type { StreamSink } from './sink.ts';

export interface OrderedDeliveryOptions {
  /** The last number the client has: delivery starts at after + 1. */
  after: number;
  /** Stored messages numbered above `after`, ascending, at most `limit`. */
  backfill(after: number, limit: number): Promise<Message[]>;
  sink: StreamSink;
  /** How long a missing number is waited for before the stream moves past it (it may never be stored). */
  gapWaitMs: number;
  /** First delay before the store is read again for a missing number; it doubles up to 5 s. */
  retryMs?: number;
  /** Messages held for ordering beyond which the client is treated as a slow consumer. */
  maxHeld?: number;
  onGapSkipped?(from: number, to: number): void;
  onError?(error: unknown): void;
}

const PAGE = 200;

/**
 * One subscriber's ordering: creates leave strictly in number order, each once. A create whose
 * predecessor has not been delivered is held; the missing ones are read from the store (a feed is best
 * effort: events get lost, and in the distributed mode two publishers race), so the stream never shows a
 * gap that is not a gap in the store. Replays and live events share this one path, which is what makes the
 * switch-over from replay to live free of duplicates: anything at or below the position is dropped.
 *
 * Edits of delivered messages go out at once with the current position as their id, so that resuming from
 * the last id seen neither repeats nor skips a create. An edit of a message not delivered yet replaces the
 * held copy (newest `updatedAt` wins), and that message then goes out once, as a create, with its current
 * body.
 */
export class OrderedDelivery {
  readonly #o: OrderedDeliveryOptions;
  #position: number;
  readonly #held = new Map<number, Message>();
  #filling = false;
  #refill = false;
  /** The first missing number and since when it has been missing. */
  #hole: { at: number; since: number; reads: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: OrderedDeliveryOptions) {
    this.#o = options;
    this.#position = options.after;
  }

  get position(): number {
    return this.#position;
  }

  /** Replays what the store has after the starting position; live events may arrive meanwhile. */
  start(): Promise<void> {
    return this.#fill();
  }

  event(event: FeedEvent): void {
    if (this.#closed) return;
    const { message } = event;
    if (message.number <= this.#position) {
      if (event.kind === 'edited') this.#o.sink.send('edited', message, this.#position);
      return;
    }
    this.#hold(message, event.kind === 'edited');
    this.#flush();
    this.#watchHole();
  }

  /** Events may have been lost (the feed reconnected): read the store. */
  resync(): void {
    void this.#fill();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#held.clear();
  }

  #hold(message: Message, isEdit: boolean): void {
    const held = this.#held.get(message.number);
    if (
      !held ||
      message.updatedAt > held.updatedAt ||
      (message.updatedAt === held.updatedAt && isEdit && message.body !== held.body)
    ) {
      this.#held.set(message.number, message);
    }
    if (this.#held.size > (this.#o.maxHeld ?? 10_000)) this.#o.sink.close('slow_consumer');
  }

  /** Delivers the held run that follows the position; false when the client is behind. */
  #flush(): boolean {
    let writable = true;
    for (let next = this.#held.get(this.#position + 1); next; next = this.#held.get(this.#position + 1)) {
      this.#held.delete(next.number);
      this.#position = next.number;
      writable = this.#o.sink.send('created', next, next.number);
    }
    return writable;
  }

  async #fill(): Promise<void> {
    if (this.#filling) {
      this.#refill = true;
      return;
    }
    this.#filling = true;
    try {
      do {
        this.#refill = false;
        // Pages follow what was read, not the position: a number missing from the store would otherwise
        // return the same page forever.
        let cursor = this.#position;
        for (;;) {
          const page = await this.#o.backfill(cursor, PAGE);
          for (const message of page) {
            if (this.#closed) return;
            cursor = message.number;
            if (message.number <= this.#position) continue;
            this.#hold(message, false);
            if (!this.#flush()) await this.#o.sink.writable();
          }
          if (this.#closed || page.length < PAGE) break;
        }
      } while (this.#refill && !this.#closed);
    } catch (error) {
      this.#o.onError?.(error);
    } finally {
      this.#filling = false;
    }
    this.#watchHole();
  }

  /**
   * While a number is missing: read the store again after `retryMs`, then twice as long each time (every
   * subscriber of the chat does this, so a number that stays missing must not cost each of them ten
   * queries a second), and after `gapWaitMs` move past it. A number can be missing for good (a create whose
   * process died between taking the number and handing it on), and waiting forever would freeze the chat
   * for every subscriber.
   */
  #watchHole(): void {
    if (this.#closed || this.#filling) return;
    if (this.#held.size === 0) {
      this.#hole = undefined;
      clearTimeout(this.#timer);
      this.#timer = undefined;
      return;
    }
    const now = Date.now();
    if (this.#hole?.at !== this.#position + 1) this.#hole = { at: this.#position + 1, since: now, reads: 0 };
    if (now - this.#hole.since >= this.#o.gapWaitMs) {
      const next = Math.min(...this.#held.keys());
      this.#o.onGapSkipped?.(this.#position + 1, next - 1);
      this.#position = next - 1;
      this.#flush();
      this.#watchHole();
      return;
    }
    if (this.#timer) return;
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        void this.#fill();
      },
      Math.min((this.#o.retryMs ?? 100) * 2 ** this.#hole.reads++, 5000),
    );
    this.#timer.unref();
  }
}
