/**
 * The sequencer's Lua scripts (one `.lua` file each; KEYS and ARGV are documented in their headers).
 * The counter scripts touch one counter each. Numbering with an intent also touches the two intent keys,
 * which are shared by every counter: on Redis Cluster that step would fail with CROSSSLOT. The adapter
 * targets one Redis server (with replicas at most), as the epoch key already does.
 */
import type { RedisConnection } from '../../redis/client.ts';
import { LuaScript, loadScripts, runScript } from '../../redis/lua.ts';

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
  settle: new LuaScript(new URL('./settle.lua', import.meta.url)),
  overdue: new LuaScript(new URL('./overdue.lua', import.meta.url)),
};

/** Where intents are kept (see next.lua): a sorted set by age and a hash of commands. */
export interface IntentKeys {
  byAge: string;
  commands: string;
}

export class Scripts {
  readonly #redis: RedisConnection;

  constructor(redis: RedisConnection) {
    this.#redis = redis;
  }

  load(): Promise<void> {
    return loadScripts(this.#redis, Object.values(SOURCES));
  }

  /** The next number (>= 1), or MISSING / OTHER_EPOCH / UNCONFIRMED. Keeps `intent` (JSON) with it. */
  next(key: string, epoch: string, intent?: { keys: IntentKeys; json: string }): Promise<number> {
    if (!intent) return this.#run(SOURCES.next, key, [epoch]);
    return this.#run(SOURCES.next, [key, intent.keys.byAge, intent.keys.commands], [epoch, intent.json]);
  }

  /** Drops the intents of these members; resolves to how many were still kept. */
  settle(keys: IntentKeys, members: string[]): Promise<number> {
    return this.#run(SOURCES.settle, [keys.byAge, keys.commands], members);
  }

  /** Intents at least `ageMs` old, oldest first: [member, command JSON] pairs. */
  async overdue(keys: IntentKeys, ageMs: number, limit: number): Promise<[string, string][]> {
    const reply = await runScript(
      this.#redis,
      SOURCES.overdue,
      [keys.byAge, keys.commands],
      [String(ageMs), String(limit)],
    );
    if (!Array.isArray(reply)) throw new Error(`overdue.lua answered ${String(reply)}`);
    const pairs: [string, string][] = [];
    for (let i = 0; i + 1 < reply.length; i += 2) pairs.push([String(reply[i]), String(reply[i + 1])]);
    return pairs;
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

  async #run(script: LuaScript, keys: string | string[], args: string[]): Promise<number> {
    const reply = await runScript(this.#redis, script, keys, args);
    if (typeof reply !== 'number') throw new Error(`${script.name} answered ${String(reply)}`);
    return reply;
  }
}
