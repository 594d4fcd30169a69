import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { pino } from 'pino';
import type { Chat } from '../../domain/types.ts';
import { openDatabase } from '../../store/sqlite/database.ts';
import { openSqliteStore, SqliteStore } from '../../store/sqlite/store.ts';
import { type SearchFixture, searchConformance } from '../conformance.ts';
import { SqliteSearch } from './search.ts';

// The FTS5 index is maintained by the store's triggers, so the fixture indexes through the store itself
// (persistBatch, editMessage): exactly the path production writes take.
searchConformance('sqlite-fts5 (:memory:)', async () => {
  const db = openDatabase({ dataDir: ':memory:', synchronous: 'NORMAL' });
  return fixture(db, new SqliteStore(db), async () => {});
});

// As in production: the writer thread's connection fills the
// index; searches read it on this thread's connection.
searchConformance('sqlite-fts5 (writer thread, file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'search-conformance-'));
  const { store, db } = openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' }, pino({ level: 'silent' }));
  return fixture(db, store, () => rm(dir, { recursive: true, force: true }));
});

async function fixture(
  db: DatabaseSync,
  store: SqliteStore,
  remove: () => Promise<void>,
): Promise<SearchFixture> {
  const search = new SqliteSearch(db);
  const at = new Date(Date.UTC(2024, 0, 1)).toISOString();
  const first = await store.createApplication({ token: 'search-a', name: 'a', at });
  const second = await store.createApplication({ token: 'search-b', name: 'b', at });
  // Two chats of one application, and one of another application with the same number as the first.
  await store.persistBatch([
    { kind: 'chat.create', applicationId: first.id, number: 1, at },
    { kind: 'chat.create', applicationId: first.id, number: 2, at },
    { kind: 'chat.create', applicationId: second.id, number: 1, at },
  ]);
  const chats: Chat[] = [];
  for (const [applicationId, number] of [
    [first.id, 1],
    [first.id, 2],
    [second.id, 1],
  ] as const) {
    const chat = await store.findChat(applicationId, number);
    assert.ok(chat);
    chats.push(chat);
  }
  return {
    search,
    chats,
    async index(chat, messages) {
      await store.persistBatch(
        messages.map((m) => ({
          kind: 'message.create' as const,
          applicationId: chat.applicationId,
          chatNumber: chat.number,
          number: m.number,
          body: m.body,
          at,
        })),
      );
    },
    async edit(chat, number, body) {
      assert.ok(await store.editMessage(chat, number, body, at), `message ${number} to edit`);
    },
    async cleanup() {
      await search.close();
      await store.close();
      await remove();
    },
  };
}
