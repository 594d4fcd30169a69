import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { UnavailableError } from '../../domain/errors.ts';
import { withTimeout } from '../../timeout.ts';
import { type CacheRedis, type Lookup, Scripts } from './scripts.ts';

/** The write is stored, but cached views of it could not be dropped: repeating the write drops them. */
export class CacheInvalidationError extends UnavailableError {
  constructor(cause: unknown) {
    super('the change is stored, but cached reads of it could not be refreshed; repeat the request', {
      cause,
    });
  }
}

/** How a read was answered: from Redis, from the store after a miss, or from the store because Redis failed. */
export type CacheResult = 'hit' | 'miss' | 'error';

/**
 * What the cache reports, for metrics and logs. Redis never makes a read fail, and a write only when its
 * client reads it back at once (see invalidate).
 */
export interface CacheEvents {
  read(view: string, result: CacheResult): void;
  failed(operation: 'read' | 'fill' | 'invalidate', error: unknown): void;
}

export interface ViewCacheOptions {
  /** Longest life of any entry (ms): how stale a view may get when an invalidation was lost. */
  ttlMs: number;
  /** How long "not stored" may be answered from the cache (ms; default 1 000, at most ttlMs). */
  absentTtlMs?: number;
  /** Longest wait for Redis per command before the store answers instead (ms; default 250). */
  timeoutMs?: number;
  /** How long a process filling an entry keeps the others waiting at most (ms; default 2 000). */
  lockMs?: number;
  /** How long a process waits for another one's fill before it reads the store itself (ms; default 1 000). */
  waitMs?: number;
  events?: CacheEvents;
}

/** Waiters poll a locked entry at growing intervals, from the first to the last. */
const FIRST_POLL_MS = 2;
const LAST_POLL_MS = 40;

class CacheTimeoutError extends Error {}

/** A read's answer, and whether it is known not to predate an invalidation that came during the read. */
interface Read<T> {
  value: T | undefined;
  current: Promise<boolean>;
}

const CURRENT = Promise.resolve(true);

/**
 * Views of parents (an application with its chats, a chat with its messages) cached in Redis, one hash
 * per parent, invalidated by replacing the hash's generation after every committed write to the parent.
 * See the README (Distributed mode, read cache) for why it is correct; in short:
 *
 * - A reader looks up its view and, on a miss, remembers the parent's generation, reads the store and
 *   stores what it read only if the generation is still the same (fill.lua). A writer invalidates after
 *   its commit: a reader that may have read the store before the commit either stored before the
 *   invalidation (and the invalidation removes it) or is refused. So no entry older than the last
 *   invalidation survives it.
 * - Every hash expires `ttlMs` after it was created: a lost invalidation (Redis unreachable from the
 *   writer) leaves a view stale for at most that long.
 * - No stampede: concurrent misses of one view in a process share one read (single flight: a read that
 *   joined one whose fill was refused reads on its own, as it may have come after the write), and across
 *   processes a lock in the hash lets one fill it while the others poll briefly, then read the store
 *   themselves after `waitMs` (a slow or dead holder delays them, never fails them).
 * - Redis slow or down: the store answers (and the event is reported); the cache never fails a read.
 * - "Not stored" is cached only briefly (`absentTtlMs`), as a bound on how long it could hide a row
 *   whose invalidation was lost; creates invalidate like any write.
 */
export class ViewCache {
  readonly #scripts: Scripts;
  readonly #redis: CacheRedis;
  readonly #ttlMs: number;
  readonly #absentTtlMs: number;
  readonly #timeoutMs: number;
  readonly #lockMs: number;
  readonly #waitMs: number;
  readonly #events: CacheEvents | undefined;
  readonly #flights = new Map<string, Promise<unknown>>();

  constructor(redis: CacheRedis, options: ViewCacheOptions) {
    this.#redis = redis;
    this.#scripts = new Scripts(redis);
    this.#ttlMs = options.ttlMs;
    this.#absentTtlMs = Math.min(options.absentTtlMs ?? 1000, options.ttlMs);
    this.#timeoutMs = options.timeoutMs ?? 250;
    this.#lockMs = options.lockMs ?? 2000;
    this.#waitMs = options.waitMs ?? 1000;
    this.#events = options.events;
  }

  load(): Promise<void> {
    return this.#scripts.load();
  }

  /**
   * The view `field` of the parent `hash`: from the cache, or from `load` (then cached). `view` names the
   * kind of view in the reported events. `undefined` means "not stored".
   */
  read<T>(
    view: string,
    hash: string,
    field: string,
    load: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const flight = `${hash}\n${field}`;
    const running = this.#flights.get(flight) as Promise<Read<T>> | undefined;
    if (running) return this.#join(running, view, hash, field, load);
    const reading = this.#read(view, hash, field, load).finally(() => this.#flights.delete(flight));
    this.#flights.set(flight, reading);
    return reading.then((read) => read.value);
  }

  /**
   * A read that found another of this process's reads of the view under way shares its answer, unless that
   * one read the store before a write it did not see: the write's invalidation, which may have come before
   * this read did, refused its fill. This read then reads on its own (once): the cache, or the store.
   */
  async #join<T>(
    running: Promise<Read<T>>,
    view: string,
    hash: string,
    field: string,
    load: () => Promise<T | undefined>,
  ): Promise<T | undefined> {
    const shared = await running;
    if (await shared.current) return shared.value;
    return (await this.#read(view, hash, field, load)).value;
  }

  /**
   * Invalidates every view of the given parents; call after the write committed. A failure is reported
   * (events) and, unless `required`, swallowed: the views then stay stale up to their TTL. `required` is
   * for a write whose client reads it back at once (an edit, a rename): it rejects with
   * CacheInvalidationError (a 503), so that the client repeats the write, which invalidates again.
   */
  async invalidate(hashes: Iterable<string>, options: { required?: boolean } = {}): Promise<void> {
    const outcomes = await Promise.all(
      [...new Set(hashes)].map((hash) =>
        this.#timed(this.#scripts.bump(hash, randomBytes(12).toString('base64url'), this.#ttlMs)).then(
          () => undefined,
          (error: unknown) => {
            this.#events?.failed('invalidate', error);
            return error;
          },
        ),
      ),
    );
    const failed = outcomes.find((outcome) => outcome !== undefined);
    if (options.required && failed !== undefined) throw new CacheInvalidationError(failed);
  }

  ping(): Promise<void> {
    return this.#redis.ping();
  }

  close(): Promise<void> {
    return this.#redis.close();
  }

  async #read<T>(
    view: string,
    hash: string,
    field: string,
    load: () => Promise<T | undefined>,
  ): Promise<Read<T>> {
    const token = randomBytes(12).toString('base64url');
    const deadline = performance.now() + this.#waitMs;
    for (let pause = FIRST_POLL_MS; ; pause = Math.min(pause * 2, LAST_POLL_MS)) {
      let found: Lookup;
      try {
        found = await this.#timed(this.#scripts.lookup(hash, field, token, this.#lockMs, this.#ttlMs));
      } catch (error) {
        this.#events?.failed('read', error);
        this.#events?.read(view, 'error');
        return { value: await load(), current: CURRENT };
      }
      if (found.view !== null) {
        this.#events?.read(view, 'hit');
        const value = found.view.startsWith('+') ? (JSON.parse(found.view.slice(1)) as T) : undefined;
        return { value, current: CURRENT };
      }
      if (found.locked || performance.now() >= deadline) {
        this.#events?.read(view, 'miss');
        return this.#fill(hash, field, found.generation, token, load);
      }
      await sleep(pause);
    }
  }

  /** Reads the store and caches the answer under the generation seen before the read. */
  async #fill<T>(
    hash: string,
    field: string,
    generation: string,
    token: string,
    load: () => Promise<T | undefined>,
  ): Promise<Read<T>> {
    let value: T | undefined;
    try {
      value = await load();
    } catch (error) {
      this.#store(hash, generation, field, '', token);
      throw error;
    }
    const current = this.#store(
      hash,
      generation,
      field,
      value === undefined ? `-${this.#absentTtlMs}` : `+${JSON.stringify(value)}`,
      token,
    );
    return { value, current };
  }

  /**
   * Stores in the background: the reader has its answer, and a failed fill only costs a later miss.
   * Resolves false when the fill was refused (the parent changed since the lookup); true when it was
   * stored, or failed (Redis in trouble: the store answered; re-reading would only add reads of it).
   */
  #store(hash: string, generation: string, field: string, entry: string, token: string): Promise<boolean> {
    return this.#timed(this.#scripts.fill(hash, generation, field, entry, token, this.#ttlMs)).catch(
      (error: unknown) => {
        this.#events?.failed('fill', error);
        return true;
      },
    );
  }

  /** Rejects when Redis takes longer than `timeoutMs`; the command itself may still land later (harmless). */
  #timed<T>(command: Promise<T>): Promise<T> {
    const ms = this.#timeoutMs;
    return withTimeout(command, ms, () => new CacheTimeoutError(`Redis did not answer within ${ms} ms`));
  }
}
