import type { FeedEvent, Message } from '../../domain/types.ts';
import type { StreamSink } from './sink.ts';

export interface OrderedDeliveryOptions {
  /** The last number the client has: delivery starts at after + 1. */
  after: number;
  /** The last edit (of the chat's edit sequence) the client has; edits after it are replayed. Default 0. */
  afterEdit?: number;
  /** Messages edited after edit `afterSeq`, each at its latest edit, in edit order (Store.listEdits). */
  backfillEdits?(afterSeq: number, limit: number): Promise<Message[]>;
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

interface StoreRead {
  running: boolean;
  /** Asked for again while running. */
  again: boolean;
}

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
 *
 * Edits carry the chat's edit sequence number (`editSeq`), and the stream tracks the last one it passed on:
 * ids are `N` while no edit has been seen and `N:E` after (N the last message number, E the last edit), so a
 * client resuming with its last id gets the edits it missed too. Edits are taken in sequence order; one
 * that skips ahead (another process published first, or an event was lost) makes the stream read the
 * store's edits after the last one it passed on, which the store commits in sequence order.
 */
export class OrderedDelivery {
  readonly #o: OrderedDeliveryOptions;
  #position: number;
  #edits: number;
  /** The store reads of creates and of edits: each runs one at a time (see #exclusive). */
  readonly #createsRead: StoreRead = { running: false, again: false };
  readonly #editsRead: StoreRead = { running: false, again: false };
  readonly #held = new Map<number, Message>();
  /** The first missing number and since when it has been missing. */
  #hole: { at: number; since: number; reads: number } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: OrderedDeliveryOptions) {
    this.#o = options;
    this.#position = options.after;
    this.#edits = options.afterEdit ?? 0;
  }

  /** The id of the stream's current position (see the class comment). */
  get id(): string {
    return this.#edits > 0 ? `${this.#position}:${this.#edits}` : String(this.#position);
  }

  /**
   * Replays what the store has after the starting position, edits first: a create replayed after them
   * carries every edit they passed over, and a later edit arrives live. Live events may arrive meanwhile.
   */
  async start(): Promise<void> {
    await this.#fillEdits();
    await this.#fill();
  }

  event(event: FeedEvent): void {
    if (this.#closed) return;
    const { message } = event;
    if (event.kind === 'edited' && message.editSeq !== undefined) {
      if (message.editSeq <= this.#edits) return; // passed on already, or replayed
      if (message.editSeq > this.#edits + 1) {
        void this.#fillEdits();
        return;
      }
      this.#edits = message.editSeq;
    }
    if (message.number <= this.#position) {
      if (event.kind === 'edited') this.#o.sink.send('edited', message, this.id);
      return;
    }
    this.#hold(message, event.kind === 'edited');
    this.#flush();
    this.#watchHole();
  }

  /** Events may have been lost (the feed reconnected): read the store. */
  resync(): void {
    void this.#fillEdits().then(() => this.#fill());
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
      writable = this.#o.sink.send('created', next, this.id);
    }
    return writable;
  }

  async #fill(): Promise<void> {
    const ran = await this.#exclusive(this.#createsRead, async () => {
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
        if (this.#closed || page.length < PAGE) return;
      }
    });
    if (ran) this.#watchHole();
  }

  /** Passes on the store's edits after the last one passed on, in sequence order. */
  async #fillEdits(): Promise<void> {
    const read = this.#o.backfillEdits;
    if (!read) return;
    const ran = await this.#exclusive(this.#editsRead, async () => {
      for (;;) {
        const page = await read(this.#edits, PAGE);
        for (const message of page) {
          if (this.#closed) return;
          if (message.editSeq === undefined || message.editSeq <= this.#edits) continue;
          this.#edits = message.editSeq;
          if (message.number <= this.#position) {
            if (!this.#o.sink.send('edited', message, this.id)) await this.#o.sink.writable();
          } else {
            // Not delivered yet: goes out as a create with this body (or a newer one).
            this.#hold(message, true);
          }
        }
        if (this.#closed || page.length < PAGE) return;
      }
    });
    if (!ran) return;
    this.#flush();
    this.#watchHole();
  }

  /**
   * Runs `pass` unless it is running already; then it runs once more when done, since what asked may have
   * come after its last read. False when it was running (the running one does the work).
   */
  async #exclusive(read: StoreRead, pass: () => Promise<void>): Promise<boolean> {
    if (read.running) {
      read.again = true;
      return false;
    }
    read.running = true;
    try {
      do {
        read.again = false;
        await pass();
      } while (read.again && !this.#closed);
    } catch (error) {
      this.#o.onError?.(error);
    } finally {
      read.running = false;
    }
    return true;
  }

  /**
   * While a number is missing: read the store again after `retryMs`, then twice as long each time (every
   * subscriber of the chat does this, so a number that stays missing must not cost each of them ten
   * queries a second), and after `gapWaitMs` move past it. A number can be missing for good (a create whose
   * process died between taking the number and handing it on), and waiting forever would freeze the chat
   * for every subscriber.
   */
  #watchHole(): void {
    if (this.#closed || this.#createsRead.running) return;
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
