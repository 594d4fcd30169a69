import { createHash } from 'node:crypto';
import { CreateOutcomeUnknownError, IdempotencyKeyReusedError } from '../domain/errors.ts';
import type { IdempotencyGuard } from '../domain/ports.ts';
import type { IdempotencyRecord } from '../domain/types.ts';

export interface Created<V> {
  view: V;
  /** True when this answer is the stored answer of an earlier request with the same key. */
  replayed: boolean;
}

/**
 * Runs a create at most once per (scope, key). `create` receives a function that turns its answer into the
 * record the writer stores with the create, in the same transaction.
 */
export async function idempotent<V>(
  guard: IdempotencyGuard,
  scope: string,
  key: string | undefined,
  request: string,
  create: (record: (view: V) => IdempotencyRecord | undefined) => Promise<V>,
): Promise<Created<V>> {
  if (key === undefined) return { view: await create(() => undefined), replayed: false };
  const fingerprint = createHash('sha256').update(request).digest('base64url');
  const held = await guard.acquire(scope, key);
  if ('response' in held) {
    if (held.fingerprint !== fingerprint) throw new IdempotencyKeyReusedError();
    return { view: JSON.parse(held.response) as V, replayed: true };
  }
  let answer: IdempotencyRecord | undefined;
  try {
    const view = await create((created) => {
      answer = { scope, key, fingerprint, response: JSON.stringify(created) };
      return answer;
    });
    await held.release(answer);
    return { view, replayed: false };
  } catch (error) {
    // The record may have been built, but the create did not become durable (or not yet: see abandon).
    if (error instanceof CreateOutcomeUnknownError) await held.abandon();
    else await held.release();
    throw error;
  }
}
