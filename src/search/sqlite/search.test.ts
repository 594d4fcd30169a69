import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { SearchPage } from '../../domain/ports.ts';
import type { Chat, Message, Page } from '../../domain/types.ts';
import { openDatabase } from '../../store/sqlite/database.ts';
import { openSqliteStore, SqliteStore } from '../../store/sqlite/store.ts';
import { messageCreates, type SearchFixture, searchConformance } from '../conformance.ts';
import { attachSearchDatabase } from './schema.ts';
import { openSqliteSearch, SqliteSearch } from './search.ts';

const silent = pino({ level: 'silent' });

// The FTS5 index follows the store's search log, so the fixture indexes through the store itself
// (persistBatch, editMessage): exactly the path production writes take.
searchConformance('sqlite-fts5 (:memory:, inline indexing)', async () => {
  const options = { dataDir: ':memory:', synchronous: 'NORMAL' } as const;
  const db = openDatabase(options);
  const store = new SqliteStore(db);
  return fixture(store, openSqliteSearch(db, options, store.searchLog, silent), async () => {});
});

// As in production: the writer thread commits messages and their log entries, the indexer thread follows
// the log into search.db, and reader threads run the searches on connections of their own.
searchConformance('sqlite-fts5 (writer, indexer and reader threads, files)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'search-conformance-'));
  const options = { dataDir: dir, synchronous: 'NORMAL' } as const;
  const { store, db } = openSqliteStore(options, silent);
  const search = openSqliteSearch(db, options, store.searchLog, silent, 2);
  return fixture(store, search, () => rm(dir, { recursive: true, force: true }));
});

async function fixture(
  store: SqliteStore,
  search: SqliteSearch,
  remove: () => Promise<void>,
): Promise<SearchFixture> {
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
      await store.persistBatch(messageCreates(chat, messages, at));
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

describe('sqlite search: short queries scan a bounded number of rows per request', () => {
  it('answers short pages with a next cursor where the scan stopped, and finds every match by following it', async () => {
    const options = { dataDir: ':memory:', synchronous: 'NORMAL' } as const;
    const db = openDatabase(options);
    attachSearchDatabase(db, options);
    const store = new SqliteStore(db);
    const at = new Date(Date.UTC(2024, 0, 1)).toISOString();
    const app = await store.createApplication({ token: 'bounded', name: 'b', at });
    await store.persistBatch([{ kind: 'chat.create', applicationId: app.id, number: 1, at }]);
    const bodies = Array.from({ length: 50 }, (_, i) => (i % 7 === 0 ? `has ZQ ${i}` : `plain ${i}`));
    await store.persistBatch(
      bodies.map((body, i) => ({
        kind: 'message.create' as const,
        applicationId: app.id,
        chatNumber: 1,
        number: i + 1,
        body,
        at,
      })),
    );
    const chat = (await store.findChat(app.id, 1))!;
    const search = new SqliteSearch(db, { shortScanRows: 10 });
    const expected = bodies.flatMap((body, i) => (body.includes('ZQ') ? [i + 1] : [])).reverse();

    const found: number[] = [];
    const sizes: number[] = [];
    let page: SearchPage | undefined = { limit: 3 };
    for (let requests = 0; page; requests++) {
      assert.ok(requests < 50, 'the walk ends');
      const result: Page<Message, SearchPage> = await search.search(chat, 'zq', page);
      found.push(...result.items.map((m) => m.number));
      sizes.push(result.items.length);
      page = result.next;
    }
    assert.deepEqual(found, expected);
    assert.ok(
      sizes.some((size) => size < 3),
      `some page was cut short by the scan bound: ${sizes}`,
    );
    // Ten rows a request over fifty messages: the walk takes at least five requests.
    assert.ok(sizes.length >= 5);
    await store.close();
  });
});
