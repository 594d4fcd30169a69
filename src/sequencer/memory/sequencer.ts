import type { Sequencer, SequenceSeed } from '../../domain/ports.ts';
import type { ChatCreate, MessageCreate, WriteCommand } from '../../domain/types.ts';

/**
 * The embedded sequencer: counters in memory, seeded once per parent from the store. It is the only
 * numberer of its database (one process), and every number it handed out and acknowledged was committed
 * before the 201, so after a restart the stored maximum is exactly the last acknowledged number.
 *
 * It keeps no intents (see Sequencer): a create that dies between its number and the queue dies with the
 * whole process, counters included, and the restarted process numbers on from the store's maximum, so the
 * number it took is handed out again instead of being left unused.
 */
export class MemorySequencer implements Sequencer {
  readonly name = 'memory';
  readonly #seed: SequenceSeed;
  readonly #last = new Map<string, number>();
  readonly #loading = new Map<string, Promise<void>>();

  constructor(seed: SequenceSeed) {
    this.#seed = seed;
  }

  async nextChatNumber(applicationId: number, _intent?: ChatCreate): Promise<number> {
    const key = `a${applicationId}`;
    await this.#ensure(key, () => this.#seed.maxChatNumber(applicationId));
    return this.#bump(key);
  }

  async nextMessageNumber(
    applicationId: number,
    chatNumber: number,
    _intent?: MessageCreate,
  ): Promise<number> {
    const key = `c${applicationId}:${chatNumber}`;
    await this.#ensure(key, () => this.#seed.maxMessageNumber(applicationId, chatNumber));
    return this.#bump(key);
  }

  settle(_command: WriteCommand): void {}

  async overdue(): Promise<WriteCommand[]> {
    return [];
  }

  async chatExists(applicationId: number, chatNumber: number): Promise<boolean> {
    const key = `a${applicationId}`;
    await this.#ensure(key, () => this.#seed.maxChatNumber(applicationId));
    return chatNumber >= 1 && chatNumber <= this.#last.get(key)!;
  }

  async messageExists(applicationId: number, chatNumber: number, number: number): Promise<boolean> {
    const key = `c${applicationId}:${chatNumber}`;
    await this.#ensure(key, () => this.#seed.maxMessageNumber(applicationId, chatNumber));
    return number >= 1 && number <= this.#last.get(key)!;
  }

  async ping(): Promise<void> {}
  async close(): Promise<void> {}

  // Synchronous read-increment-write: no await between them, so concurrent callers never share a number.
  #bump(key: string): number {
    const next = this.#last.get(key)! + 1;
    this.#last.set(key, next);
    return next;
  }

  /** Loads a counter once, even when many requests ask for it at the same moment. */
  async #ensure(key: string, load: () => Promise<number>): Promise<void> {
    if (this.#last.has(key)) return;
    let loading = this.#loading.get(key);
    if (!loading) {
      loading = load().then(
        (value) => {
          this.#last.set(key, value);
          this.#loading.delete(key);
        },
        (error: unknown) => {
          this.#loading.delete(key);
          throw error;
        },
      );
      this.#loading.set(key, loading);
    }
    await loading;
  }
}
