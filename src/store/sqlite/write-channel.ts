import { Worker } from 'node:worker_threads';
import type { Logger } from 'pino';
import type { SqliteOptions } from './database.ts';
import type { SqliteWriter, WriteMethod } from './writer.ts';

type Args<M extends WriteMethod> = Parameters<SqliteWriter[M]>;
type Result<M extends WriteMethod> = ReturnType<SqliteWriter[M]>;

/** How the store reaches its writer: in-line on this thread, or on a dedicated thread. */
export interface WriteChannel {
  call<M extends WriteMethod>(method: M, ...args: Args<M>): Promise<Result<M>>;
  /** Rejects when the writer cannot take work (its thread is gone). */
  ping(): Promise<void>;
  close(): Promise<void>;
  /**
   * Calls `listener` with the writer's last committed search_log entry on every answer, before the call
   * it answers resolves (whoever awaited a write may search next, and must find it).
   */
  onLogged(listener: (logged: number) => void): void;
}

/** The writer on the calling thread: for `:memory:` databases, which a second thread cannot open. */
export class InlineWriteChannel implements WriteChannel {
  readonly #writer: SqliteWriter;
  #onLogged: (logged: number) => void = () => {};
  constructor(writer: SqliteWriter) {
    this.#writer = writer;
  }
  async call<M extends WriteMethod>(method: M, ...args: Args<M>): Promise<Result<M>> {
    const result = (this.#writer[method] as (...a: Args<M>) => Result<M>)(...args);
    this.#onLogged(this.#writer.logged);
    return result;
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
  onLogged(listener: (logged: number) => void): void {
    this.#onLogged = listener;
  }
}

interface Pending {
  method: string;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * The writer on its own thread with its own connection (WAL: one writer beside any number of readers).
 * Hand-written over worker_threads because it is a dozen lines: a call is a message with an id, the answer
 * comes back with the same id. If the thread dies, pending calls fail (the write queue retries them, and
 * writes are idempotent) and a new thread is started.
 */
export class ThreadWriteChannel implements WriteChannel {
  readonly #options: SqliteOptions;
  readonly #log: Logger;
  readonly #pending = new Map<number, Pending>();
  #onLogged: (logged: number) => void = () => {};
  /** Undefined between a thread's exit and its replacement. */
  #worker: Worker | undefined;
  #ready!: Promise<void>;
  #nextId = 1;
  #closing = false;
  /** Exits in a row, for the restart's backoff. */
  #failures = 0;

  constructor(options: SqliteOptions, log: Logger) {
    this.#options = options;
    this.#log = log;
    this.#spawn();
  }

  #spawn(): void {
    const worker = new Worker(new URL('./write-thread.ts', import.meta.url), { workerData: this.#options });
    this.#worker = worker;
    this.#ready = new Promise<void>((resolve, reject) => {
      worker.once('online', resolve);
      worker.once('error', reject);
    });
    this.#ready.catch(() => {}); // surfaced through call() and ping()
    worker.on(
      'message',
      (message: { id: number; ok: boolean; value?: unknown; error?: unknown; logged?: number }) => {
        const pending = this.#pending.get(message.id);
        if (!pending) return;
        this.#pending.delete(message.id);
        if (message.ok) {
          this.#failures = 0;
          this.#onLogged(message.logged ?? 0);
          return pending.resolve(message.value);
        }
        // The thread now refuses every batch sent before this point (see write-thread.ts); what is sent
        // from here on is the queue's retry, in order.
        if (pending.method === 'persistBatch') worker.postMessage({ method: 'unfence', args: [] });
        pending.reject(message.error);
      },
    );
    worker.on('error', (error) => this.#log.error({ err: error }, 'sqlite writer thread failed'));
    worker.on('exit', (code) => {
      this.#worker = undefined;
      for (const pending of this.#pending.values())
        pending.reject(new Error(`sqlite writer thread exited (${code})`));
      this.#pending.clear();
      if (this.#closing) return;
      const failures = ++this.#failures;
      this.#log.error({ code, failures }, 'sqlite writer thread exited; starting a new one');
      // Calls fail at once until then (the write queue retries them); backing off when the thread keeps
      // failing (a broken database) keeps the log from flooding, as the reader threads do.
      this.#ready = Promise.reject(new Error('sqlite writer thread is restarting'));
      this.#ready.catch(() => {});
      setTimeout(() => this.#closing || this.#spawn(), Math.min(100 * 2 ** (failures - 1), 10_000));
    });
  }

  call<M extends WriteMethod>(method: M, ...args: Args<M>): Promise<Result<M>> {
    if (this.#closing) return Promise.reject(new Error('sqlite writer is closed'));
    return this.#send(method, args) as Promise<Result<M>>;
  }

  async ping(): Promise<void> {
    await this.#ready;
    if (this.#closing) throw new Error('sqlite writer is closed');
  }

  onLogged(listener: (logged: number) => void): void {
    this.#onLogged = listener;
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    await this.#send('close', []).catch(() => {});
    await this.#worker?.terminate();
  }

  #send(method: string, args: readonly unknown[]): Promise<unknown> {
    const worker = this.#worker;
    if (!worker) return Promise.reject(new Error('sqlite writer thread is restarting'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { method, resolve, reject });
      worker.postMessage({ id, method, args });
    });
  }
}
