import type { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { UnavailableError } from '../../domain/errors.ts';
import type { SqliteOptions } from '../../store/sqlite/database.ts';
import { SearchIndexer } from './indexer.ts';

/** How a search makes sure the index holds every create and edit acknowledged before it started. */
export interface SearchIndexing {
  caughtUp(): Promise<void>;
  /** Rejects when the index cannot follow the store (its thread keeps failing). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** What the indexing needs of the store's search_log (implemented by SqliteStore). */
export interface SearchLog {
  /** The last entry the store's writer has committed. */
  position(): number;
  /** Calls `listener` with the new position after every commit that logged something. */
  onAdvance(listener: (position: number) => void): void;
  /** Forgets the entries the index already holds. */
  trim(upTo: number): Promise<void>;
}

/** Indexing on the caller's own connection, at search time: `:memory:` databases and tests. */
export class InlineIndexing implements SearchIndexing {
  readonly #indexer: SearchIndexer;
  constructor(db: DatabaseSync) {
    this.#indexer = new SearchIndexer(db);
  }
  async caughtUp(): Promise<void> {
    this.#indexer.catchUp();
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}

export interface ThreadIndexingOptions {
  /** How long a search waits for the index to catch up before it answers 503. */
  waitMs?: number;
  /**
   * How long the thread lets new entries gather before indexing them, unless a search is waiting for them
   * (it then indexes at once) or a full step is there (default 50). FTS5's cost per entry halves from
   * steps of 100 entries to steps of 2 000 (15 and 8 µs of CPU): at 20 000 creates/s the indexer thread
   * took 40–47 % of a core with steps as small as the writer's commits, 17–18 % gathering for 50 ms.
   */
  gatherMs?: number;
  /** How often the indexed part of search_log is trimmed. */
  trimEveryMs?: number;
}

interface Waiter {
  position: number;
  resolve(): void;
}

/**
 * The indexer on its own thread (index-thread.ts). The store tells it when entries are committed; it
 * reports how far the index got. A search waits until the index reaches the position the store had when
 * the search began, typically one indexing step (a few milliseconds) under load and nothing when idle.
 * Hand-written over worker_threads for the same reason as the store's write channel: a few messages.
 */
export class ThreadIndexing implements SearchIndexing {
  readonly #options: SqliteOptions;
  readonly #log: Logger;
  readonly #searchLog: SearchLog;
  readonly #waitMs: number;
  readonly #gatherMs: number;
  readonly #trimTimer: NodeJS.Timeout;
  #worker!: Worker;
  #alive = false;
  #indexed = -1;
  #trimmed = 0;
  #waiters: Waiter[] = [];
  #closing = false;
  #failures = 0;
  /** A wake-up is on its way and unanswered: the thread reads the whole log when it gets to it. */
  #woken = false;
  /** The unanswered wake-up says a search is waiting (the thread then skips gathering). */
  #urged = false;

  constructor(options: SqliteOptions, searchLog: SearchLog, log: Logger, tuning: ThreadIndexingOptions = {}) {
    this.#options = options;
    this.#searchLog = searchLog;
    this.#log = log;
    this.#waitMs = tuning.waitMs ?? 5000;
    this.#gatherMs = tuning.gatherMs ?? 50;
    this.#spawn();
    searchLog.onAdvance(() => this.#wake());
    this.#trimTimer = setInterval(() => this.#trim(), tuning.trimEveryMs ?? 1000);
    this.#trimTimer.unref();
  }

  #spawn(): void {
    const worker = new Worker(new URL('./index-thread.ts', import.meta.url), {
      workerData: { ...this.#options, gatherMs: this.#gatherMs },
    });
    this.#worker = worker;
    this.#alive = true;
    this.#woken = true; // it reads the log once it starts, and reports
    this.#urged = true;
    worker.on('message', (message: { indexed?: number }) => {
      if (message.indexed === undefined) return;
      this.#failures = 0;
      this.#indexed = message.indexed;
      this.#woken = false;
      this.#urged = false;
      if (this.#searchLog.position() > this.#indexed) this.#wake();
      if (this.#waiters.length === 0) return;
      const still: Waiter[] = [];
      for (const waiter of this.#waiters) {
        if (waiter.position <= this.#indexed) waiter.resolve();
        else still.push(waiter);
      }
      this.#waiters = still;
    });
    worker.on('error', (error) => this.#log.error({ err: error }, 'search indexer thread failed'));
    worker.on('exit', (code) => {
      this.#alive = false;
      if (this.#closing) return;
      this.#failures++;
      this.#log.error({ code, failures: this.#failures }, 'search indexer thread exited; starting a new one');
      // Back off when it keeps failing (a broken search.db), so the log is not flooded.
      setTimeout(() => this.#closing || this.#spawn(), Math.min(100 * 2 ** (this.#failures - 1), 10_000));
    });
  }

  /**
   * One message at a time: the thread answers every step with `indexed`, and reads everything committed
   * by then, so more wake-ups while one is pending would only cost this (the HTTP) thread. The exception:
   * a search that has to wait sends `now` once, so a gathering thread indexes at once.
   */
  #wake(now = false): void {
    if (this.#closing || !this.#alive) return;
    if (this.#woken && (this.#urged || !now)) return;
    this.#woken = true;
    this.#urged = now;
    this.#worker.postMessage({ committed: this.#searchLog.position(), ...(now && { now }) });
  }

  caughtUp(): Promise<void> {
    const position = this.#searchLog.position();
    if (position <= this.#indexed) return Promise.resolve();
    this.#wake(true);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter);
        reject(new UnavailableError('the search index is catching up with recent messages; retry shortly'));
      }, this.#waitMs);
      const waiter: Waiter = {
        position,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      this.#waiters.push(waiter);
    });
  }

  async ping(): Promise<void> {
    if (this.#failures > 0)
      throw new Error(`search indexer thread failed ${this.#failures} time(s) in a row`);
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    clearInterval(this.#trimTimer);
    if (!this.#alive) return;
    const closed = new Promise<void>((resolve) => {
      this.#worker.on('message', (message: { closed?: boolean }) => message.closed && resolve());
      this.#worker.once('exit', () => resolve());
    });
    this.#worker.postMessage({ close: true });
    await closed;
    await this.#worker.terminate();
  }

  #trim(): void {
    const upTo = this.#indexed;
    if (upTo <= this.#trimmed) return;
    this.#trimmed = upTo;
    this.#searchLog.trim(upTo).catch((error: unknown) => {
      this.#trimmed = 0; // try again next time
      this.#log.warn({ err: error }, 'trimming the search log failed');
    });
  }
}
