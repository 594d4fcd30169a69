/**
 * The sequencer's Lua scripts (one `.lua` file each; KEYS and ARGV are documented in their headers).
 * Every script touches exactly one key, so on Redis Cluster none of them can fail with CROSSSLOT.
 */
import type { SequencerRedis } from './client.ts';
import { LuaScript, loadScripts, runScript } from './lua.ts';

/** A counter does not exist (next, current, confirm). */
export const MISSING = -1;
/** A counter was seeded in another epoch (all four). */
export const OTHER_EPOCH = -2;
/** A counter was seeded but not confirmed yet (next, current). */
export const UNCONFIRMED = -3;

const SOURCES = {
  next: new LuaScript(new URL('./next.lua', import.meta.url)),
  current: new LuaScript(new URL('./current.lua', import.meta.url)),
  seed: new LuaScript(new URL('./seed.lua', import.meta.url)),
  confirm: new LuaScript(new URL('./confirm.lua', import.meta.url)),
};

export class Scripts {
  readonly #redis: SequencerRedis;

  constructor(redis: SequencerRedis) {
    this.#redis = redis;
  }

  load(): Promise<void> {
    return loadScripts(this.#redis, Object.values(SOURCES));
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

  async #run(script: LuaScript, key: string, args: string[]): Promise<number> {
    const reply = await runScript(this.#redis, script, key, args);
    if (typeof reply !== 'number') throw new Error(`${script.name} answered ${String(reply)}`);
    return reply;
  }
}
