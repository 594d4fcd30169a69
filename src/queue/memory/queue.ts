import type { ConsumeOptions, WriteQueue } from '../../domain/ports.ts';
import type { WriteCommand } from '../../domain/types.ts';

interface Pending {
  command: WriteCommand;
  resolve(): void;
  reject(error: Error): void;
}

export interface MemoryQueueOptions {
  /** Accepted-but-unhandled commands beyond which `accepting()` turns false (the API answers 503). */
  maxDepth: number;
  /** Called when a batch handler throws; the batch is retried after `retryDelayMs`. */
  onError?: (error: unknown, attempt: number) => void;
  retryDelayMs?: number;
}

/**
 * The embedded queue: an in-process FIFO whose `publish` resolves when the consumer has handled (in the
 * embedded default: committed) the command. Nothing is durable until then, which is why the API answers
 * 201 only after `publish` resolves. Batches form by themselves: whatever arrived while the previous batch
 * was being handled goes into the next one (group commit).
 */
export class MemoryQueue implements WriteQueue {
  readonly name = 'memory';
  readonly #options: MemoryQueueOptions;
  #items: Pending[] = [];
  #handler: ((batch: WriteCommand[]) => Promise<void>) | undefined;
  #maxBatch = 1000;
  #running = false;
  #scheduled = false;
  #closing = false;
  #attempt = 0;
  #lastError: unknown;
  #idle: (() => void)[] = [];

  constructor(options: MemoryQueueOptions) {
    this.#options = options;
  }

  publish(command: WriteCommand): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('queue is closed'));
    return new Promise((resolve, reject) => {
      this.#items.push({ command, resolve, reject });
      this.#schedule();
    });
  }

  consume(handler: (batch: WriteCommand[]) => Promise<void>, options: ConsumeOptions): void {
    if (this.#handler) throw new Error('the memory queue has one consumer');
    this.#handler = handler;
    this.#maxBatch = options.maxBatch;
    this.#schedule();
  }

  depth(): number {
    return this.#items.length;
  }

  accepting(): boolean {
    return !this.#closing && this.#items.length < this.#options.maxDepth;
  }

  /** Fails while batches are failing, so /readyz shows a writer that cannot commit. */
  async ping(): Promise<void> {
    if (this.#attempt > 0) {
      throw new Error(`write batches failing (${this.#attempt} attempts): ${String(this.#lastError)}`);
    }
  }

  async close(): Promise<void> {
    this.#closing = true;
    if (this.#items.length === 0 && !this.#running) return;
    if (!this.#handler) {
      for (const item of this.#items.splice(0))
        item.reject(new Error('queue closed before a consumer started'));
      return;
    }
    await new Promise<void>((resolve) => this.#idle.push(resolve));
  }

  #schedule(delayMs = 0): void {
    if (this.#scheduled || this.#running || !this.#handler || this.#items.length === 0) return;
    this.#scheduled = true;
    // setImmediate, not a microtask: lets the event loop read more requests into the batch first.
    const run = () => {
      this.#scheduled = false;
      void this.#drain();
    };
    if (delayMs > 0) setTimeout(run, delayMs);
    else setImmediate(run);
  }

  async #drain(): Promise<void> {
    this.#running = true;
    const batch = this.#items.slice(0, this.#maxBatch);
    let failed = false;
    try {
      await this.#handler!(batch.map((item) => item.command));
      this.#items.splice(0, batch.length);
      this.#attempt = 0;
      for (const item of batch) item.resolve();
    } catch (error) {
      // At-least-once: the batch stays at the head of the queue and is handed over again.
      failed = true;
      this.#attempt++;
      this.#lastError = error instanceof Error ? error.message : error;
      this.#options.onError?.(error, this.#attempt);
    } finally {
      this.#running = false;
    }
    if (this.#items.length === 0) {
      for (const done of this.#idle.splice(0)) done();
      return;
    }
    const backoff = Math.min((this.#options.retryDelayMs ?? 50) * 2 ** (this.#attempt - 1), 5000);
    this.#schedule(failed ? backoff : 0);
  }
}
