import { QueueItemRefusedError } from '../../domain/errors.ts';
import type { BatchHandler, BatchOutcome, ConsumeOptions, Queue } from '../../domain/ports.ts';
import type { WriteCommand } from '../../domain/types.ts';

interface Pending<T> {
  command: T;
  resolve(): void;
  reject(error: Error): void;
}

interface Batch<T> {
  items: Pending<T>[];
  /** undefined while the handler runs. */
  outcome: 'ok' | 'failed' | undefined;
}

export interface MemoryQueueOptions {
  /** Accepted-but-unhandled commands beyond which `accepting()` turns false (the API answers 503). */
  maxDepth: number;
  /**
   * Batches handed to the handler before the first of them finished (default 1). More than one is safe
   * only with a handler that commits batches in the order it received them and refuses every batch after
   * a failed one until that failure has been seen here (the SQLite writer thread does: see
   * store/sqlite/write-channel.ts); otherwise a later batch could commit before an earlier one that then
   * never does, leaving a gap in the numbers.
   */
  pipeline?: number;
  /** Called when a batch handler throws; the batch is retried after a backoff from `retryDelayMs`. */
  onError?: (error: unknown, attempt: number) => void;
  retryDelayMs?: number;
}

/**
 * The embedded queue: an in-process FIFO whose `publish` resolves when the consumer has handled (in the
 * embedded default: committed) the command. Nothing is durable until then, which is why the API answers
 * 201 only after `publish` resolves. Batches form by themselves: whatever arrived while the previous batch
 * was being handled goes into the next one (group commit).
 */
export class MemoryQueue<T = WriteCommand> implements Queue<T> {
  readonly name = 'memory';
  readonly #options: MemoryQueueOptions;
  readonly #pipeline: number;
  #items: Pending<T>[] = [];
  #inFlight: Batch<T>[] = [];
  #handler: BatchHandler<T> | undefined;
  #maxBatch = 1000;
  #scheduled = false;
  /** A batch failed: dispatch nothing until every batch in flight has settled and the failed are re-queued. */
  #failing = false;
  #closing = false;
  #attempt = 0;
  #lastError: unknown;
  #idle: (() => void)[] = [];

  constructor(options: MemoryQueueOptions) {
    this.#options = options;
    this.#pipeline = Math.max(1, options.pipeline ?? 1);
  }

  publish(command: T): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('queue is closed'));
    return new Promise((resolve, reject) => {
      this.#items.push({ command, resolve, reject });
      this.#schedule();
    });
  }

  consume(handler: BatchHandler<T>, options: ConsumeOptions): void {
    if (this.#handler) throw new Error('the memory queue has one consumer');
    this.#handler = handler;
    this.#maxBatch = options.maxBatch;
    this.#schedule();
  }

  depth(): number {
    return this.#items.length + this.#inFlight.reduce((sum, batch) => sum + batch.items.length, 0);
  }

  accepting(): boolean {
    return !this.#closing && this.depth() < this.#options.maxDepth;
  }

  /** Fails while batches are failing, so /readyz shows a writer that cannot commit. */
  async ping(): Promise<void> {
    if (this.#attempt > 0) {
      throw new Error(`write batches failing (${this.#attempt} attempts): ${String(this.#lastError)}`);
    }
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.depth() === 0) return;
    if (!this.#handler) {
      for (const item of this.#items.splice(0))
        item.reject(new Error('queue closed before a consumer started'));
      return;
    }
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #schedule(delayMs = 0): void {
    if (this.#scheduled || this.#failing || !this.#handler || this.#items.length === 0) return;
    if (this.#inFlight.length >= this.#pipeline) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: lets the event loop read more requests into the batch first.
    const run = () => {
      this.#scheduled = false;
      this.#dispatch();
    };
    if (delayMs > 0) setTimeout(run, delayMs);
    else setImmediate(run);
  }

  #dispatch(): void {
    if (this.#failing || this.#items.length === 0 || this.#inFlight.length >= this.#pipeline) return;
    const batch: Batch<T> = { items: this.#items.splice(0, this.#maxBatch), outcome: undefined };
    this.#inFlight.push(batch);
    this.#handler!(batch.items.map((item) => item.command)).then(
      (outcome) => this.#settle(batch, 'ok', outcome),
      (error: unknown) => {
        this.#attempt++;
        this.#lastError = error instanceof Error ? error.message : error;
        this.#options.onError?.(error, this.#attempt);
        this.#failing = true;
        this.#settle(batch, 'failed');
      },
    );
    this.#schedule();
  }

  #settle(batch: Batch<T>, outcome: 'ok' | 'failed', handled?: BatchOutcome | undefined): void {
    batch.outcome = outcome;
    if (outcome === 'ok') {
      for (const [i, item] of batch.items.entries()) {
        const refused = handled?.refused.get(i);
        if (refused === undefined) item.resolve();
        else item.reject(new QueueItemRefusedError(refused));
      }
      if (!this.#failing) this.#attempt = 0;
    }
    if (this.#inFlight.some((b) => b.outcome === undefined)) {
      if (outcome === 'ok') this.#inFlight.splice(this.#inFlight.indexOf(batch), 1);
      if (!this.#failing) this.#schedule();
      return;
    }
    // Everything in flight has settled. At-least-once: failed batches go back to the head of the queue,
    // in their original order, and are handed over again after a backoff.
    const retry = this.#inFlight.filter((b) => b.outcome === 'failed').flatMap((b) => b.items);
    this.#inFlight = [];
    this.#items.unshift(...retry);
    this.#failing = false;
    if (this.depth() === 0) {
      for (const done of this.#idle.splice(0)) done();
      return;
    }
    const backoff =
      retry.length > 0 ? Math.min((this.#options.retryDelayMs ?? 50) * 2 ** (this.#attempt - 1), 5000) : 0;
    this.#schedule(backoff);
  }
}
