/**
 * Turns one-at-a-time deliveries into batches for a handler that wants many commands per call.
 *
 * Why it exists: rabbitmq-client's Consumer calls its callback once per delivery (each from its own
 * setImmediate) and acks or nacks that one message when the callback settles. The writer, though, commits
 * one transaction per handler call (group commit), so a call per message would cost a commit per message.
 * Each delivery's callback therefore parks its item here and waits; the batcher hands everything parked
 * (up to `maxBatch`) to the handler in one call, and each parked callback then settles with that call's
 * outcome, which is what makes the Consumer ack the message only after the commit.
 *
 * Only one handler call runs at a time: batches commit in delivery order, and a batch is never started
 * while an earlier one might still fail. Meanwhile the next batch fills from the prefetched deliveries.
 */

import { QueueItemRefusedError } from '../../domain/errors.ts';
import type { BatchHandler, BatchOutcome } from '../../domain/ports.ts';

export interface BatcherOptions {
  maxBatch: number;
  /**
   * How long an idle batcher waits after the first item before calling the handler. Deliveries read from
   * the socket in different chunks arrive in different turns of the event loop, so dispatching on the next
   * turn would mostly produce batches of one; a few milliseconds gather them at a latency cost nobody
   * waits on (`publish` already resolved on the broker's confirm). When the batch fills, it goes at once.
   */
  windowMs: number;
}

interface Parked<T> {
  item: T;
  resolve(): void;
  reject(error: unknown): void;
}

export class Batcher<T> {
  readonly #handler: BatchHandler<T>;
  readonly #options: BatcherOptions;
  #parked: Parked<T>[] = [];
  #running = 0;
  /** The pending dispatch: a window timer (idle) or an immediate (right after a call). */
  #timer: { cancel(): void } | undefined;

  constructor(handler: BatchHandler<T>, options: BatcherOptions) {
    this.#handler = handler;
    this.#options = { maxBatch: Math.max(1, options.maxBatch), windowMs: Math.max(0, options.windowMs) };
  }

  /**
   * Resolves once a handler call containing `item` succeeded; rejects with that call's error, or with a
   * QueueItemRefusedError when the call succeeded but refused this item.
   */
  add(item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#parked.push({ item, resolve, reject });
      if (this.#running > 0) return; // the running call's completion dispatches
      if (this.#parked.length >= this.#options.maxBatch) this.#dispatch();
      else if (!this.#timer) {
        const timer = setTimeout(() => this.#dispatch(), this.#options.windowMs);
        this.#timer = { cancel: () => clearTimeout(timer) };
      }
    });
  }

  #dispatch(): void {
    this.#clearTimer();
    if (this.#running > 0 || this.#parked.length === 0) return;
    const batch = this.#parked.splice(0, this.#options.maxBatch);
    this.#running = batch.length;
    // A handler that throws synchronously fails its batch like one that rejects.
    new Promise<undefined | BatchOutcome>((resolve) => resolve(this.#handler(batch.map((p) => p.item))))
      .then(
        (outcome) => {
          for (const [i, p] of batch.entries()) {
            const refused = outcome?.refused.get(i);
            if (refused === undefined) p.resolve();
            else p.reject(new QueueItemRefusedError(refused));
          }
        },
        (error: unknown) => {
          for (const p of batch) p.reject(error);
        },
      )
      .finally(() => {
        this.#running = 0;
        // These items already waited for the previous call: no window, but one turn of the event loop
        // so that deliveries already read from the socket join the batch.
        if (this.#parked.length > 0 && !this.#timer) {
          const immediate = setImmediate(() => this.#dispatch());
          this.#timer = { cancel: () => clearImmediate(immediate) };
        }
      });
  }

  #clearTimer(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}
