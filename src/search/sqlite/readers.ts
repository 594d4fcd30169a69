import type { DatabaseSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import { UnavailableError } from '../../domain/errors.ts';
import type { RenderedPage, SearchPage } from '../../domain/ports.ts';
import type { NumberPage } from '../../domain/types.ts';
import type { SqliteOptions } from '../../store/sqlite/database.ts';
import type { MessagePageQuery, MessagePageReader } from '../../store/sqlite/message-pages.ts';
import { renderedSearchPage } from './page.ts';
import { SearchQueries, type SearchQuery, type SearchRows } from './queries.ts';
import type { ReadAnswer, ReadRequest, ReadResult } from './reader-protocol.ts';

/** Where an embedded search's SQL runs. */
export interface SearchReader {
  run(query: SearchQuery): Promise<SearchRows>;
  /** The same search, its page of at most `limit` messages rendered (see renderedSearchPage). */
  render(query: SearchQuery, chatNumber: number, limit: number): Promise<RenderedPage<SearchPage>>;
  /** Rejects when no reader can run a search. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** On the caller's own connection (the HTTP thread): `:memory:` databases, tests, SEARCH_READERS=0. */
export class InlineReader implements SearchReader {
  readonly #queries: SearchQueries;
  constructor(db: DatabaseSync) {
    this.#queries = new SearchQueries(db);
  }
  async run(query: SearchQuery): Promise<SearchRows> {
    return this.#queries.run(query);
  }
  async render(query: SearchQuery, chatNumber: number, limit: number): Promise<RenderedPage<SearchPage>> {
    return renderedSearchPage(this.#queries.run(query), chatNumber, limit);
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}

interface Pending {
  resolve(result: ReadResult): void;
  reject(error: Error): void;
}

interface Reader {
  worker: Worker;
  pending: Map<number, Pending>;
}

/**
 * Searches and list pages of messages (for SqliteStore) on reader threads (read-thread.ts), each with its
 * own connection, so their SQL (most of a search's cost) runs beside the HTTP thread instead of on it, and
 * a slow search delays no create. Each read goes to the reader with the fewest in flight; a reader that
 * dies fails its reads with 503 and is started again. Hand-written over worker_threads: piscina, tried on
 * the search benchmark, answered 4 000–5 000 searches/s at p99 50–85 ms where this answers 5 400–5 900/s
 * at 33–38 ms, its per-task bookkeeping running on the HTTP thread.
 */
export class ThreadReaders implements SearchReader, MessagePageReader {
  readonly #options: SqliteOptions;
  readonly #script: URL;
  readonly #log: Logger;
  readonly #readers: (Reader | undefined)[];
  #nextId = 0;
  /** Exits in a row of each slot's reader, for its restart's backoff. */
  readonly #failures: number[];
  #closing = false;

  /** `script` is the thread's entry point: read-thread.ts, or a stand-in in tests. */
  constructor(
    options: SqliteOptions,
    count: number,
    log: Logger,
    script = new URL('./read-thread.ts', import.meta.url),
  ) {
    this.#options = options;
    this.#script = script;
    this.#log = log;
    this.#readers = Array.from({ length: count }, () => undefined);
    this.#failures = Array.from({ length: count }, () => 0);
    for (let slot = 0; slot < count; slot++) this.#spawn(slot);
  }

  #spawn(slot: number): void {
    const worker = new Worker(this.#script, { workerData: this.#options });
    const reader: Reader = { worker, pending: new Map() };
    this.#readers[slot] = reader;
    worker.on('message', (message: ReadAnswer) => {
      const pending = reader.pending.get(message.id);
      if (!pending) return;
      reader.pending.delete(message.id);
      if (message.error !== undefined) pending.reject(new Error(message.error));
      else {
        this.#failures[slot] = 0;
        pending.resolve(message.result);
      }
    });
    worker.on('error', (error) => this.#log.error({ err: error }, 'reader thread failed'));
    worker.on('exit', (code) => {
      this.#readers[slot] = undefined;
      for (const pending of reader.pending.values())
        pending.reject(new UnavailableError('a reader thread stopped; retry shortly'));
      reader.pending.clear();
      if (this.#closing) return;
      const failures = ++this.#failures[slot]!;
      this.#log.error({ code, failures }, 'reader thread exited; starting a new one');
      // Back off when it keeps failing (a broken database), so the log is not flooded.
      setTimeout(() => this.#closing || this.#spawn(slot), Math.min(100 * 2 ** (failures - 1), 10_000));
    });
  }

  run(query: SearchQuery): Promise<SearchRows> {
    return this.#ask({ kind: 'search', query }) as Promise<SearchRows>;
  }

  render(query: SearchQuery, chatNumber: number, limit: number): Promise<RenderedPage<SearchPage>> {
    return this.#ask({ kind: 'search', query, render: { chatNumber, limit } }) as Promise<
      RenderedPage<SearchPage>
    >;
  }

  renderMessages(messages: MessagePageQuery): Promise<RenderedPage<NumberPage>> {
    return this.#ask({ kind: 'messages', messages }) as Promise<RenderedPage<NumberPage>>;
  }

  #ask(request: DistributiveOmit<ReadRequest, 'id'>): Promise<ReadResult> {
    let reader: Reader | undefined;
    for (const candidate of this.#readers) {
      if (candidate && (!reader || candidate.pending.size < reader.pending.size)) reader = candidate;
    }
    if (!reader || this.#closing)
      return Promise.reject(new UnavailableError('no reader thread is running; retry shortly'));
    const id = ++this.#nextId;
    const { pending, worker } = reader;
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, ...request } as ReadRequest);
    });
  }

  async ping(): Promise<void> {
    if (!this.#readers.some((reader) => reader !== undefined))
      throw new Error(`no reader thread is running (${Math.min(...this.#failures)} failure(s) in a row)`);
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#readers.map((reader) => reader?.worker.terminate()));
  }
}

/** Omit over each member of a union (the built-in Omit would merge the members). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
