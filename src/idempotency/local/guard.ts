import { LRUCache } from 'lru-cache';
import type { IdempotencyGuard, IdempotencyHold, IdempotencyLookup } from '../../domain/ports.ts';
import type { IdempotencyRecord } from '../../domain/types.ts';

/**
 * One process owns the embedded database, so an in-process lock per key is enough to serialise
 * concurrent requests that carry the same key. The finished answer itself is stored by the writer in the
 * same transaction as the create, so it survives restarts exactly when the create does; recent answers
 * are also kept in memory, which spares the lookup for a quick retry.
 */
export class LocalIdempotencyGuard implements IdempotencyGuard {
  readonly #lookup: IdempotencyLookup;
  readonly #ttlMs: number;
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #recent: LRUCache<string, IdempotencyRecord>;

  constructor(lookup: IdempotencyLookup, ttlMs: number) {
    this.#lookup = lookup;
    this.#ttlMs = ttlMs;
    this.#recent = new LRUCache({ max: 10_000, ttl: ttlMs });
  }

  async acquire(scope: string, key: string): Promise<IdempotencyRecord | IdempotencyHold> {
    const id = `${scope}\u0000${key}`;
    for (;;) {
      const holder = this.#inFlight.get(id);
      if (!holder) break;
      await holder;
    }
    const recent = this.#recent.get(id);
    if (recent) return recent;
    const notBefore = new Date(Date.now() - this.#ttlMs).toISOString();
    const stored = await this.#lookup.findIdempotency(scope, key, notBefore);
    if (stored) return stored;
    // Re-check: another request may have taken the key while we were reading.
    if (this.#inFlight.has(id)) return this.acquire(scope, key);
    let done!: () => void;
    this.#inFlight.set(
      id,
      new Promise<void>((resolve) => {
        done = resolve;
      }),
    );
    const release = async (answer?: IdempotencyRecord) => {
      if (answer) this.#recent.set(id, answer);
      this.#inFlight.delete(id);
      done();
    };
    return { release, abandon: () => release() };
  }
}
