/**
 * What the Redis adapters' tests share: a database index of their own (their loss tests FLUSHDB it, so
 * they keep off the one in the URL, where other test files keep their keys) and a plain client to inspect,
 * wipe or clean up keys behind the adapter's back.
 */
import { createClient } from 'redis';

const client = (url: string) => createClient({ url });
export type RedisAdmin = ReturnType<typeof client>;

/** `base` with its database index replaced by `db`. */
export function redisDbUrl(base: string, db: number): string {
  const url = new URL(base);
  url.pathname = `/${db}`;
  return url.toString();
}

export async function openRedisAdmin(url: string): Promise<RedisAdmin> {
  const admin = client(url);
  admin.on('error', () => {}); // reconnecting is the client's job; a test that needs Redis fails on its own
  await admin.connect();
  return admin;
}

/** Removes every key under `prefix` (SCAN, not KEYS: never blocks Redis). */
export async function deleteKeys(admin: RedisAdmin, prefix: string): Promise<void> {
  for await (const keys of admin.scanIterator({ MATCH: `${prefix}*`, COUNT: 1000 })) {
    if (keys.length > 0) await admin.unlink(keys);
  }
}
