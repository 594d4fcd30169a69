import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LocalIdempotencyGuard } from '../idempotency/local/guard.ts';
import { MemoryQueue } from '../queue/memory/queue.ts';
import { MemorySequencer } from '../sequencer/memory/sequencer.ts';
import { openDatabase } from '../store/sqlite/database.ts';
import { SqliteStore } from '../store/sqlite/store.ts';
import { ApplicationService } from './applications.ts';
import { ChatService } from './chats.ts';

const at = '2026-01-01T00:00:00.000Z';

/** A ChatService over a real in-memory store whose findChat calls are counted. */
async function counted() {
  const store = new SqliteStore(openDatabase({ dataDir: ':memory:', synchronous: 'FULL' }));
  let reads = 0;
  const findChat = store.findChat.bind(store);
  store.findChat = (applicationId, number) => {
    reads++;
    return findChat(applicationId, number);
  };
  const app = await store.createApplication({ token: 't', name: 'n', at });
  const chats = new ChatService({
    applications: new ApplicationService(store),
    store,
    sequencer: new MemorySequencer(store),
    queue: new MemoryQueue({ maxDepth: 10 }),
    idempotency: new LocalIdempotencyGuard(store, 60_000),
  });
  return { store, app, chats, reads: () => reads };
}

describe('ChatService.which: which chat a (token, number) is', () => {
  it('reads the store once per chat, and not at all after a get', async () => {
    const { store, app, chats, reads } = await counted();
    await store.persistBatch(
      [1, 2].map((number) => ({ kind: 'chat.create' as const, applicationId: app.id, number, at })),
    );
    const first = await chats.which('t', 1);
    const again = await chats.which('t', 1);
    assert.equal(again.id, first.id);
    assert.equal(reads(), 1);
    await chats.get('t', 2);
    assert.equal((await chats.which('t', 2)).number, 2);
    assert.equal(reads(), 2);
    await store.close();
  });

  it('does not remember a chat it did not find: once stored, it is found', async () => {
    const { store, app, chats } = await counted();
    await assert.rejects(chats.which('t', 1), { code: 'chat_not_found' });
    await store.persistBatch([{ kind: 'chat.create', applicationId: app.id, number: 1, at }]);
    assert.equal((await chats.which('t', 1)).number, 1);
    await assert.rejects(chats.which('unknown', 1), { code: 'application_not_found' });
    await store.close();
  });
});
