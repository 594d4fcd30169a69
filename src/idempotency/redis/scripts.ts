/**
 * The guard's Lua scripts (one `.lua` file each; KEYS and ARGV are documented in their headers), and the
 * Redis commands the guard uses. Every script touches exactly one key, so on Redis Cluster none of them
 * can fail with CROSSSLOT.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { NoScriptError, type SequencerRedis } from '../../sequencer/redis/client.ts';

/**
 * The Redis commands the guard uses, and nothing more. They are a subset of the sequencer's, so the same
 * node-redis wrapper (`connectNodeRedis`) serves both, with the same mapping of outages to
 * RedisUnavailableError (a 503); tests substitute a wrapper to count or fail commands.
 */
export type IdempotencyRedis = Pick<SequencerRedis, 'scriptLoad' | 'evalSha' | 'eval' | 'ping' | 'close'>;

/** What answer.lua and free.lua found: the holder's own marker, an empty key, or someone else's value. */
export const OWN = 1;
export const EMPTY = 0;
export const TAKEN = -1;
export type ReleaseOutcome = typeof OWN | typeof EMPTY | typeof TAKEN;

class Script {
  readonly name: string;
  readonly source: string;
  readonly sha: string;

  constructor(name: string) {
    this.name = name;
    this.source = readFileSync(new URL(`./${name}.lua`, import.meta.url), 'utf8');
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }
}

const SOURCES = {
  claim: new Script('claim'),
  answer: new Script('answer'),
  free: new Script('free'),
};

export class Scripts {
  readonly #redis: IdempotencyRedis;

  constructor(redis: IdempotencyRedis) {
    this.#redis = redis;
  }

  /** SCRIPT LOAD once at start, so a script that does not compile stops the process there. */
  async load(): Promise<void> {
    for (const script of Object.values(SOURCES)) {
      const sha = await this.#redis.scriptLoad(script.source);
      if (sha !== script.sha) throw new Error(`Redis hashed ${script.name}.lua to ${sha}, not ${script.sha}`);
    }
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

  async #outcome(script: Script, key: string, args: string[]): Promise<ReleaseOutcome> {
    const reply = await this.#run(script, key, args);
    if (reply === OWN || reply === EMPTY || reply === TAKEN) return reply;
    throw new Error(`${script.name}.lua answered ${String(reply)}`);
  }

  async #run(script: Script, key: string, args: string[]): Promise<unknown> {
    try {
      return await this.#redis.evalSha(script.sha, [key], args);
    } catch (error) {
      // A restarted Redis has an empty script cache; EVAL runs the script and caches it again.
      if (!(error instanceof NoScriptError)) throw error;
      return this.#redis.eval(script.source, [key], args);
    }
  }
}
