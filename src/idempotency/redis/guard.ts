import { randomUUID } from 'node:crypto';
import { UnavailableError } from '../../domain/errors.ts';
import type { IdempotencyGuard, IdempotencyHold, IdempotencyLookup } from '../../domain/ports.ts';
import type { IdempotencyRecord } from '../../domain/types.ts';
import { type NodeRedisOptions, openOnNodeRedis, RedisUnavailableError } from '../../redis/client.ts';
import { EMPTY, type IdempotencyRedis, OWN, Scripts } from './scripts.ts';

/**
 * The default lease of a hold. A hold spans one create: resolving the application, numbering it (a few
 * Redis round trips) and publishing the command, whose broker confirm times out after 5 s (the RabbitMQ
 * queue's publishTimeoutMs); everything else takes milliseconds. The lease must outlast the slowest create
 * that can still succeed, or a second request would run the same create while the first is still at it:
 * 30 s leaves six times that, room for GC pauses and a loaded event loop. A longer lease costs only after
 * a holder's process died: its key stays held until the lease runs out, and callers with that key wait
 * (or get a 503 with Retry-After). By then the writer has normally stored the dead holder's create, if it
 * was published, so the next caller finds the stored answer instead of running it again.
 */
const DEFAULT_LEASE_MS = 30_000;

/** Waiters poll a held key at growing intervals, from the first to the last (plus jitter, see #pause). */
const FIRST_POLL_MS = 5;
const LAST_POLL_MS = 50;

/** A held key's value: this prefix and the holder's random token. An answer is JSON, so starts with `{`. */
const PENDING = 'pending:';

/** The key stayed held for longer than the guard waits (`waitMs`): a 503 with Retry-After. */
export class IdempotencyKeyInUseError extends UnavailableError {
  constructor(retryAfter = 1) {
    super('another request with this Idempotency-Key is still in progress; retry shortly', { retryAfter });
  }
}

/**
 * Something a release met that its caller cannot act on, but an operator may want to see:
 * - `lease-expired`: the hold outlived its lease and nobody took the key meanwhile (an answer was still
 *   recorded; a failed hold had nothing left to free);
 * - `lease-lost`: the lease ran out and another request took the key (and may have run the same create:
 *   a duplicate); the key was left to that request;
 * - `redis-unavailable`: Redis did not answer; the hold ends when its lease runs out.
 */
export interface ReleaseIssue {
  scope: string;
  key: string;
  issue: 'lease-expired' | 'lease-lost' | 'redis-unavailable';
  error?: Error;
}

export interface RedisIdempotencyGuardOptions {
  /** How long an answer is kept: the same time-to-live as the store's records. */
  ttlMs: number;
  /** How long a hold lasts at most when its holder never releases it. Default DEFAULT_LEASE_MS. */
  leaseMs?: number;
  /**
   * Longest an `acquire` waits for a held key before IdempotencyKeyInUseError (a 503). Default the lease or
   * 10 s, whichever is shorter: a retry whose first attempt died with its process would otherwise wait out
   * the whole lease, past the proxy's read timeout (NGINX here: 30 s), which counts against the process.
   */
  waitMs?: number;
  /** Prepended to every key; without braces (they would move the Cluster hash tag). Default `idem:`. */
  prefix?: string;
  /** Told about releases that met an expired lease or an unavailable Redis (see ReleaseIssue). */
  onReleaseIssue?: (issue: ReleaseIssue) => void;
}

/**
 * The distributed guard: several API processes share one Redis, in which a key is either free (absent),
 * held (a pending marker with the holder's token, set with a lease) or answered (the create's record,
 * kept for the time-to-live). The writer also stores every record in the database, in the same
 * transaction as its create, some time after the API answered; the guard reads it there (`lookup`) when
 * Redis does not have it: Redis lost its data, or evicted or expired the answer before the store did.
 *
 * `acquire`: claim.lua takes a free key in one step (GET, then SET PX with our marker), so of any number
 * of concurrent callers in any number of processes exactly one gets it. An answer found there is returned;
 * a marker means another request holds the key, so the caller polls until it is released or its lease
 * runs out. Whoever takes the key then asks the store: a record there is returned and the key freed;
 * otherwise the caller holds it. The store is asked only after taking the key, so the common cases cost
 * one round trip (a fresh key also costs the lookup) and no second request can slip in between the lookup
 * and the claim.
 *
 * `release`: answer.lua replaces the holder's own marker with the answer; free.lua deletes it. Neither
 * touches another holder's marker: a holder whose lease ran out has lost the key for good.
 *
 * Keys are `<prefix>{<scope>}:<key>`: the hash tag keeps a scope's keys (an application's chats, a chat's
 * messages) in one Cluster slot, like the sequencer's counters, so a later script may touch several keys
 * of one scope. Every script today touches one key.
 *
 * Assumptions: Redis runs with `maxmemory-policy noeviction` (an evicted marker would let a second
 * request in beside the holder; an evicted answer only costs a store lookup). A Redis that loses its
 * data, or the last second of it (`appendfsync everysec`), loses the markers and the answers not yet
 * stored by the writer: a replay of those creates then runs again. Memory: an answer holds the 201's
 * body (a message create echoes the body, up to MESSAGE_MAX_BYTES) for the whole time-to-live.
 */
export class RedisIdempotencyGuard implements IdempotencyGuard {
  readonly name = 'redis';
  readonly #redis: IdempotencyRedis;
  readonly #scripts: Scripts;
  readonly #lookup: IdempotencyLookup;
  readonly #ttlMs: number;
  readonly #leaseMs: number;
  readonly #waitMs: number;
  readonly #prefix: string;
  readonly #onReleaseIssue: (issue: ReleaseIssue) => void;
  /** Waiters of this process by Redis key: a release here wakes them at once instead of at their next poll. */
  readonly #waiters = new Map<string, Set<() => void>>();

  constructor(redis: IdempotencyRedis, lookup: IdempotencyLookup, options: RedisIdempotencyGuardOptions) {
    const {
      ttlMs,
      leaseMs = DEFAULT_LEASE_MS,
      waitMs = Math.min(leaseMs, 10_000),
      prefix = 'idem:',
    } = options;
    for (const [name, value] of Object.entries({ ttlMs, leaseMs, waitMs })) {
      if (!Number.isSafeInteger(value) || value < 1)
        throw new RangeError(`${name} must be a positive integer`);
    }
    if (/[{}]/.test(prefix)) throw new RangeError('prefix must not contain { or }');
    this.#redis = redis;
    this.#scripts = new Scripts(redis);
    this.#lookup = lookup;
    this.#ttlMs = ttlMs;
    this.#leaseMs = leaseMs;
    this.#waitMs = waitMs;
    this.#prefix = prefix;
    this.#onReleaseIssue = options.onReleaseIssue ?? (() => {});
  }

  /** SCRIPT LOAD of every script (they are sent again by EVAL whenever Redis has lost them). */
  async load(): Promise<void> {
    await this.#scripts.load();
  }

  async acquire(scope: string, key: string): Promise<IdempotencyRecord | IdempotencyHold> {
    const redisKey = this.#key(scope, key);
    const marker = `${PENDING}${randomUUID()}`;
    const deadline = performance.now() + this.#waitMs;
    for (let pause = FIRST_POLL_MS; ; pause = Math.min(2 * pause, LAST_POLL_MS)) {
      const found = await this.#scripts.claim(redisKey, marker, this.#leaseMs);
      if (found === null) return this.#holdUnlessStored(scope, key, redisKey, marker);
      if (!found.startsWith(PENDING)) return decodeAnswer(scope, key, redisKey, found);
      const left = deadline - performance.now();
      if (left <= 0) throw new IdempotencyKeyInUseError();
      await this.#pause(redisKey, Math.min(left, pause));
    }
  }

  async ping(): Promise<void> {
    await this.#redis.ping();
  }

  async close(): Promise<void> {
    await this.#redis.close();
  }

  #key(scope: string, key: string): string {
    // A brace in the scope would end the hash tag early: keys of one scope could land in other slots.
    if (/[{}]/.test(scope)) throw new RangeError(`idempotency scope ${JSON.stringify(scope)} has a brace`);
    return `${this.#prefix}{${scope}}:${key}`;
  }

  /** We hold the key; the store may still have its record (Redis lost it, or expired it first). */
  async #holdUnlessStored(
    scope: string,
    key: string,
    redisKey: string,
    marker: string,
  ): Promise<IdempotencyRecord | IdempotencyHold> {
    let stored: IdempotencyRecord | undefined;
    try {
      const notBefore = new Date(Date.now() - this.#ttlMs).toISOString();
      stored = await this.#lookup.findIdempotency(scope, key, notBefore);
    } catch (error) {
      await this.#end(scope, key, redisKey, marker, undefined);
      throw error;
    }
    if (stored) {
      // Not copied into Redis: the record's age is unknown here, so it would outlive the store's copy.
      await this.#end(scope, key, redisKey, marker, undefined);
      return stored;
    }
    let released = false;
    return {
      release: async (answer) => {
        // A second release would act on a key that may be someone else's by now.
        if (released) return;
        released = true;
        if (answer && (answer.scope !== scope || answer.key !== key)) {
          throw new Error(`released ${scope}/${key} with the answer of ${answer.scope}/${answer.key}`);
        }
        await this.#end(scope, key, redisKey, marker, answer);
      },
      abandon: async () => {
        // Nothing to send: the key stays held until the lease runs out; the reaper stores the create and
        // its record well before that (REAP_AFTER_MS is a third of the default lease).
        released = true;
      },
    };
  }

  /**
   * Ends a hold: records the answer, or frees the key. It does not reject when Redis is unavailable: the
   * create itself succeeded or failed already, and turning its 201 into a 503 would only invite a retry,
   * while the lease ends the hold anyway, after which the store answers (the writer will have stored the
   * record by then) or the key is free.
   */
  async #end(
    scope: string,
    key: string,
    redisKey: string,
    marker: string,
    answer: IdempotencyRecord | undefined,
  ): Promise<void> {
    try {
      const outcome = answer
        ? await this.#scripts.answer(redisKey, marker, encodeAnswer(answer), this.#ttlMs)
        : await this.#scripts.free(redisKey, marker);
      if (outcome !== OWN) {
        this.#onReleaseIssue({ scope, key, issue: outcome === EMPTY ? 'lease-expired' : 'lease-lost' });
      }
    } catch (error) {
      if (!(error instanceof RedisUnavailableError)) throw error;
      this.#onReleaseIssue({ scope, key, issue: 'redis-unavailable', error });
    } finally {
      this.#wake(redisKey);
    }
  }

  /**
   * Waits `ms` (less a random part of up to half, so that waiters in several processes do not poll in
   * step), or until a hold on the key ends in this process.
   */
  #pause(redisKey: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(redisKey);
      if (!waiters) {
        waiters = new Set();
        this.#waiters.set(redisKey, waiters);
      }
      const set = waiters;
      const done = (): void => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.#waiters.get(redisKey) === set) this.#waiters.delete(redisKey);
        resolve();
      };
      const timer = setTimeout(done, ms * (0.5 + Math.random() / 2));
      set.add(done);
    });
  }

  #wake(redisKey: string): void {
    const waiters = this.#waiters.get(redisKey);
    if (waiters) for (const done of [...waiters]) done();
  }
}

function encodeAnswer(answer: IdempotencyRecord): string {
  // Scope and key are in the Redis key already.
  return JSON.stringify({ fingerprint: answer.fingerprint, response: answer.response });
}

function decodeAnswer(scope: string, key: string, redisKey: string, value: string): IdempotencyRecord {
  let parsed: { fingerprint?: unknown; response?: unknown } | undefined;
  try {
    parsed = JSON.parse(value) as typeof parsed;
  } catch {
    // Reported below, with the key.
  }
  if (typeof parsed?.fingerprint !== 'string' || typeof parsed.response !== 'string') {
    throw new Error(`${redisKey} holds neither a pending marker nor an answer`);
  }
  return { scope, key, fingerprint: parsed.fingerprint, response: parsed.response };
}

export interface OpenRedisIdempotencyGuardOptions extends RedisIdempotencyGuardOptions, NodeRedisOptions {}

export async function openRedisIdempotencyGuard(
  url: string,
  lookup: IdempotencyLookup,
  options: OpenRedisIdempotencyGuardOptions,
): Promise<RedisIdempotencyGuard> {
  return openOnNodeRedis(url, options, async (redis) => {
    const guard = new RedisIdempotencyGuard(redis, lookup, options);
    await guard.load();
    return guard;
  });
}
