import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { openDatabase } from '../../store/sqlite/database.ts';
import { SqliteStore } from '../../store/sqlite/store.ts';
import { idempotencyConformance } from '../conformance.ts';
import { LocalIdempotencyGuard } from './guard.ts';

const TTL_MS = 24 * 3_600_000;

// The embedded guard over the embedded store: records are stored the way the writer stores them, as part
// of a persisted batch (a chat.create carrying the record).
idempotencyConformance('local (sqlite records)', async () => {
  const db = openDatabase({ dataDir: ':memory:', synchronous: 'NORMAL' });
  const store = new SqliteStore(db);
  const app = await store.createApplication({ token: 'idem', name: 'idem', at: new Date().toISOString() });
  let chat = 0;
  return {
    guard: new LocalIdempotencyGuard(store, TTL_MS),
    ttlMs: TTL_MS,
    async persist(record, ageMs = 0) {
      const at = new Date(Date.now() - ageMs).toISOString();
      await store.persistBatch([
        { kind: 'chat.create', applicationId: app.id, number: ++chat, at, idempotency: record },
      ]);
    },
    cleanup: () => store.close(),
  };
});

describe('local idempotency guard', () => {
  it('an abandoned hold frees the key at once: an in-process create whose hand-off failed is never stored', async () => {
    const store = new SqliteStore(openDatabase({ dataDir: ':memory:', synchronous: 'NORMAL' }));
    const guard = new LocalIdempotencyGuard(store, TTL_MS);
    const held = await guard.acquire('chats:1', 'k');
    assert.ok('abandon' in held);
    await held.abandon();
    const next = await guard.acquire('chats:1', 'k');
    assert.ok('release' in next, 'the next caller holds the key instead of waiting');
    await next.release();
    await store.close();
  });
});
