/**
 * The sequencer's Lua scripts (one `.lua` file each; KEYS and ARGV are documented in their headers).
 * Every script touches exactly one key, so on Redis Cluster none of them can fail with CROSSSLOT.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { NoScriptError, type SequencerRedis } from './client.ts';

/** A counter does not exist (next, current, confirm). */
export const MISSING = -1;
/** A counter was seeded in another epoch (all four). */
export const OTHER_EPOCH = -2;
/** A counter was seeded but not confirmed yet (next, current). */
export const UNCONFIRMED = -3;

class Script {
  readonly source: string;
  readonly sha: string;

  constructor(file: string) {
    this.source = readFileSync(new URL(file, import.meta.url), 'utf8');
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }
}

const SOURCES = {
  next: new Script('./next.lua'),
  current: new Script('./current.lua'),
  seed: new Script('./seed.lua'),
  confirm: new Script('./confirm.lua'),
};

export class Scripts {
  readonly #redis: SequencerRedis;

  constructor(redis: SequencerRedis) {
    this.#redis = redis;
  }

  /** SCRIPT LOAD once at start, so a script that does not compile stops the process there. */
  async load(): Promise<void> {
    for (const script of Object.values(SOURCES)) {
      const sha = await this.#redis.scriptLoad(script.source);
      if (sha !== script.sha) throw new Error(`Redis hashed a sequencer script to ${sha}, not ${script.sha}`);
    }
  }

  /** The next number (>= 1), or MISSING / OTHER_EPOCH / UNCONFIRMED. */
  next(key: string, epoch: string): Promise<number> {
    return this.#run(SOURCES.next, key, [epoch]);
  }

  /** The last number handed out (>= 0), or MISSING / OTHER_EPOCH / UNCONFIRMED. */
  current(key: string, epoch: string): Promise<number> {
    return this.#run(SOURCES.current, key, [epoch]);
  }

  /** 1 ready, 0 needs confirm, or OTHER_EPOCH (only when `adopt` is false). */
  seed(key: string, epoch: string, seed: number, adopt: boolean): Promise<number> {
    return this.#run(SOURCES.seed, key, [epoch, String(seed), adopt ? '1' : '0']);
  }

  /** 1 confirmed, or MISSING / OTHER_EPOCH. */
  confirm(key: string, epoch: string): Promise<number> {
    return this.#run(SOURCES.confirm, key, [epoch]);
  }

  async #run(script: Script, key: string, args: string[]): Promise<number> {
    let reply: unknown;
    try {
      reply = await this.#redis.evalSha(script.sha, [key], args);
    } catch (error) {
      // A restarted Redis has an empty script cache; EVAL runs the script and caches it again.
      if (!(error instanceof NoScriptError)) throw error;
      reply = await this.#redis.eval(script.source, [key], args);
    }
    if (typeof reply !== 'number') throw new Error(`a sequencer script answered ${String(reply)}`);
    return reply;
  }
}
