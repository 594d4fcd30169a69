/**
 * The read cache's Lua scripts (one `.lua` file each; KEYS and ARGV are documented in their headers), and
 * the Redis commands the cache uses. Every script touches exactly one key (a parent's hash, locks
 * included), so on Redis Cluster none of them can fail with CROSSSLOT.
 */
import type { RedisConnection } from '../../redis/client.ts';
import { LuaScript, loadScripts, runScript } from '../../redis/lua.ts';

/**
 * The Redis commands the cache uses, a subset of the sequencer's, so the same node-redis wrapper
 * (`connectNodeRedis`) serves it with the same mapping of outages to RedisUnavailableError.
 */
export type CacheRedis = Pick<RedisConnection, 'scriptLoad' | 'evalSha' | 'eval' | 'ping' | 'close'>;

const SOURCES = {
  lookup: new LuaScript(new URL('./lookup.lua', import.meta.url)),
  fill: new LuaScript(new URL('./fill.lua', import.meta.url)),
  bump: new LuaScript(new URL('./bump.lua', import.meta.url)),
};

export interface Lookup {
  /** The parent's generation when looked at ('' before its first invalidation). */
  generation: string;
  /** The stored view ('+json', or '-…' for "not stored"), or null. */
  view: string | null;
  /** The caller holds the fill lock of this view. */
  locked: boolean;
}

export class Scripts {
  readonly #redis: CacheRedis;

  constructor(redis: CacheRedis) {
    this.#redis = redis;
  }

  load(): Promise<void> {
    return loadScripts(this.#redis, Object.values(SOURCES));
  }

  async lookup(hash: string, field: string, token: string, lockMs: number, ttlMs: number): Promise<Lookup> {
    const reply = await runScript(this.#redis, SOURCES.lookup, hash, [
      field,
      token,
      String(lockMs),
      String(ttlMs),
    ]);
    if (Array.isArray(reply) && reply.length === 3) {
      const [generation, view, locked] = reply as unknown[];
      if (typeof generation === 'string' && (view === null || typeof view === 'string'))
        return { generation, view, locked: locked === 1 };
    }
    throw new Error(`lookup.lua answered ${JSON.stringify(reply)}`);
  }

  /** True when the view was stored; false when the parent changed since `generation` (or only unlocking). */
  async fill(
    hash: string,
    generation: string,
    field: string,
    view: string,
    token: string,
    ttlMs: number,
  ): Promise<boolean> {
    const reply = await runScript(this.#redis, SOURCES.fill, hash, [
      generation,
      field,
      view,
      token,
      String(ttlMs),
    ]);
    return reply === 1;
  }

  async bump(hash: string, generation: string, ttlMs: number): Promise<void> {
    await runScript(this.#redis, SOURCES.bump, hash, [generation, String(ttlMs)]);
  }
}
