/**
 * Lua scripts kept in their own `.lua` files, shared by the Redis adapters (sequencer, idempotency guard, read cache):
 * loaded once at start (SCRIPT LOAD, so a script that does not compile stops the process there), run by
 * EVALSHA, and by EVAL when a restarted Redis has lost its script cache.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { NoScriptError, type RedisConnection } from './client.ts';

/** The commands running scripts takes. */
export type ScriptRedis = Pick<RedisConnection, 'scriptLoad' | 'evalSha' | 'eval'>;

export class LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha: string;

  constructor(file: URL) {
    this.name = basename(file.pathname);
    this.source = readFileSync(file, 'utf8');
    this.sha = createHash('sha1').update(this.source).digest('hex');
  }
}

export async function loadScripts(redis: ScriptRedis, scripts: readonly LuaScript[]): Promise<void> {
  for (const script of scripts) {
    const sha = await redis.scriptLoad(script.source);
    if (sha !== script.sha) throw new Error(`Redis hashed ${script.name} to ${sha}, not ${script.sha}`);
  }
}

export async function runScript(
  redis: ScriptRedis,
  script: LuaScript,
  keys: string | string[],
  args: string[],
): Promise<unknown> {
  const keyList = typeof keys === 'string' ? [keys] : keys;
  try {
    return await redis.evalSha(script.sha, keyList, args);
  } catch (error) {
    if (!(error instanceof NoScriptError)) throw error;
    return redis.eval(script.source, keyList, args);
  }
}
