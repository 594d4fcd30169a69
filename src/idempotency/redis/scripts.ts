/**
 * The guard's Lua scripts (one `.lua` file each; KEYS and ARGV are documented in their headers), and the
 * Redis commands the guard uses. Every script touches exactly one key, so on Redis Cluster none of them
 * can fail with CROSSSLOT.
 */
import type { RedisConnection } from '../../redis/client.ts';
import { LuaScript, loadScripts, runScript } from '../../redis/lua.ts';

/**
 * The Redis commands the guard uses, and nothing more. They are a subset of the sequencer's, so the same
 * node-redis wrapper (`connectNodeRedis`) serves both, with the same mapping of outages to
 * RedisUnavailableError (a 503); tests substitute a wrapper to count or fail commands.
 */
export type IdempotencyRedis = Pick<RedisConnection, 'scriptLoad' | 'evalSha' | 'eval' | 'ping' | 'close'>;

/** What answer.lua and free.lua found: the holder's own marker, an empty key, or someone else's value. */
export const OWN = 1;
export const EMPTY = 0;
const TAKEN = -1;
export type ReleaseOutcome = typeof OWN | typeof EMPTY | typeof TAKEN;

const SOURCES = {
  claim: new LuaScript(new URL('./claim.lua', import.meta.url)),
  answer: new LuaScript(new URL('./answer.lua', import.meta.url)),
  free: new LuaScript(new URL('./free.lua', import.meta.url)),
};

export class Scripts {
  readonly #redis: IdempotencyRedis;

  constructor(redis: IdempotencyRedis) {
    this.#redis = redis;
  }

  load(): Promise<void> {
    return loadScripts(this.#redis, Object.values(SOURCES));
  }

  /** null when the caller now holds the key; otherwise the value found there (a marker or an answer). */
  async claim(key: string, marker: string, leaseMs: number): Promise<string | null> {
    const reply = await this.#run(SOURCES.claim, key, [marker, String(leaseMs)]);
    if (reply === null || typeof reply === 'string') return reply;
    throw new Error(`claim.lua answered ${String(reply)}`);
  }

  answer(key: string, marker: string, answer: string, ttlMs: number): Promise<ReleaseOutcome> {
    return this.#outcome(SOURCES.answer, key, [marker, answer, String(ttlMs)]);
  }

  free(key: string, marker: string): Promise<ReleaseOutcome> {
    return this.#outcome(SOURCES.free, key, [marker]);
  }

  async #outcome(script: LuaScript, key: string, args: string[]): Promise<ReleaseOutcome> {
    const reply = await this.#run(script, key, args);
    if (reply === OWN || reply === EMPTY || reply === TAKEN) return reply;
    throw new Error(`${script.name} answered ${String(reply)}`);
  }

  #run(script: LuaScript, key: string, args: string[]): Promise<unknown> {
    return runScript(this.#redis, script, key, args);
  }
}
