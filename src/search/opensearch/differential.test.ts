/**
 * Differential test: the same corpus in the embedded adapter (SQLite FTS5) and in OpenSearch must give the
 * same answers, message for message and in the same order, for a few hundred generated queries. Both are
 * also held to the definition (foldCase(body).includes(foldCase(query))), so a disagreement says which
 * side is wrong.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { Client } from '@opensearch-project/opensearch';
import { pino } from 'pino';
import { mulberry32 } from '../../../test/helpers/prng.ts';
import { service } from '../../../test/helpers/services.ts';
import type { SearchIndex, SearchPage } from '../../domain/ports.ts';
import type { Chat, Message } from '../../domain/types.ts';
import { openDatabase } from '../../store/sqlite/database.ts';
import { SqliteStore } from '../../store/sqlite/store.ts';
import { messageCreates } from '../conformance.ts';
import { foldCase } from '../fold.ts';
import { openSqliteSearch } from '../sqlite/search.ts';
import { concreteIndexName } from './mapping.ts';
import { OpenSearchIndex } from './search.ts';

const { url, skip } = service('search');

const SEED = 20250131;
const MESSAGES_PER_CHAT = 100;
const EDITS = 30;
const QUERIES = 300;
// Case pairs (ASCII, Latin-1, Greek with final sigma, dotted I), CJK, astral emoji, space, digits, and
// characters that are operators in LIKE, FTS5, Lucene or wildcard patterns.
const ALPHABET = [
  'a',
  'A',
  'b',
  'B',
  'ä',
  'Ä',
  'σ',
  'Σ',
  'ς',
  'i',
  'İ',
  '中',
  '文',
  '😀',
  '🎉',
  ' ',
  '1',
  '%',
  '_',
  '*',
  '?',
  '\\',
  '"',
];

/** Follows `next` to the end: a page may be short while `next` is set (both adapters bound their work). */
async function walk(search: SearchIndex, chat: Chat, query: string, limit: number): Promise<Message[]> {
  const found: Message[] = [];
  let page: SearchPage | undefined = { limit };
  for (let requests = 0; page; requests++) {
    assert.ok(requests < 1000, `${search.name}: paging ends`);
    const result: { items: Message[]; next?: SearchPage } = await search.search(chat, query, page);
    assert.ok(result.items.length <= limit, `${search.name}: a page holds at most limit items`);
    found.push(...result.items);
    page = result.next;
  }
  return found;
}

describe('opensearch and sqlite-fts5 agree (differential)', { skip }, () => {
  const random = mulberry32(SEED);
  const pick = () => ALPHABET[Math.floor(random() * ALPHABET.length)]!;
  const text = (min: number, max: number) =>
    Array.from({ length: min + Math.floor(random() * (max - min + 1)) }, pick).join('');

  const alias = `chat-messages-test-${process.pid}-${randomBytes(4).toString('hex')}`;
  const options = { dataDir: ':memory:', synchronous: 'NORMAL' } as const;
  const db = openDatabase(options);
  const store = new SqliteStore(db);
  const sqlite = openSqliteSearch(db, options, store.searchLog, pino({ level: 'silent' }));
  const opensearch = new OpenSearchIndex(url ?? '', { index: alias, refreshInterval: '50ms' });
  const chats: Chat[] = [];
  /** Current body of every message, per chat id. */
  const bodies = new Map<number, Map<number, string>>();

  before(async () => {
    await opensearch.ensureIndex();
    const at = '2024-01-01T00:00:00.000Z';
    const first = await store.createApplication({ token: 'diff-a', name: 'a', at });
    const second = await store.createApplication({ token: 'diff-b', name: 'b', at });
    const keys = [
      [first.id, 1],
      [first.id, 2],
      [second.id, 1],
    ] as const;
    await store.persistBatch(
      keys.map(([applicationId, number]) => ({ kind: 'chat.create', applicationId, number, at })),
    );
    for (const [applicationId, number] of keys) chats.push((await store.findChat(applicationId, number))!);

    for (const chat of chats) {
      const messages = Array.from({ length: MESSAGES_PER_CHAT }, (_, i) => ({
        number: i + 1,
        body: text(1, 24),
      }));
      bodies.set(chat.id, new Map(messages.map((m) => [m.number, m.body])));
      await store.persistBatch(messageCreates(chat, messages, at));
      const result = await opensearch.indexMessages(
        messages.map((m) => ({ chat, number: m.number, body: m.body, createdAt: at, updatedAt: at })),
      );
      assert.deepEqual(result.failures, []);
    }
    // Edits, through each adapter's own write path: the index must answer on current bodies only.
    for (let i = 0; i < EDITS; i++) {
      const chat = chats[i % chats.length]!;
      const number = 1 + Math.floor(random() * MESSAGES_PER_CHAT);
      const body = text(1, 24);
      const editedAt = new Date(Date.UTC(2024, 0, 2, 0, 0, i)).toISOString();
      const edited = await store.editMessage(chat, number, body, editedAt);
      assert.ok(edited);
      bodies.get(chat.id)!.set(number, body);
      const result = await opensearch.indexMessages(
        [{ chat, number, body, createdAt: edited.createdAt, updatedAt: edited.updatedAt }],
        // The last write waits until everything written so far is searchable.
        { refresh: i === EDITS - 1 ? 'wait_for' : false },
      );
      assert.deepEqual(result, { failures: [], superseded: 0 });
    }
  });

  after(async () => {
    await opensearch.close();
    await sqlite.close();
    await store.close();
    const admin = new Client({ node: url! });
    try {
      await admin.indices.delete({ index: concreteIndexName(alias), ignore_unavailable: true });
    } finally {
      await admin.close();
    }
  });

  it(`${QUERIES} queries of 1-6 characters give the same messages in the same order`, async () => {
    const queries = new Set<string>(ALPHABET);
    while (queries.size < QUERIES) {
      if (random() < 0.5) {
        queries.add(text(1, 6));
      } else {
        // A piece of a current body, in random case, so longer queries hit too.
        const chat = chats[Math.floor(random() * chats.length)]!;
        const stored = [...bodies.get(chat.id)!.values()];
        const chars = [...stored[Math.floor(random() * stored.length)]!];
        const length = 1 + Math.floor(random() * 6);
        const start = Math.floor(random() * Math.max(1, chars.length - length + 1));
        const piece = chars.slice(start, start + length).join('');
        queries.add(random() < 0.5 ? piece.toUpperCase() : piece);
      }
    }
    const cases = [...queries].map((query) => ({
      query,
      chat: chats[Math.floor(random() * chats.length)]!,
      limit: [3, 10, 50][Math.floor(random() * 3)]!,
    }));

    const mismatches: string[] = [];
    let hits = 0;
    // A few walks at a time: OpenSearch answers concurrent requests, and the test stays short.
    for (let i = 0; i < cases.length; i += 4) {
      await Promise.all(
        cases.slice(i, i + 4).map(async ({ query, chat, limit }) => {
          const q = foldCase(query);
          const expected = [...bodies.get(chat.id)!]
            .filter(([, body]) => foldCase(body).includes(q))
            .map(([number]) => number)
            .sort((a, b) => b - a);
          hits += expected.length;
          const [fromSqlite, fromOpenSearch] = await Promise.all([
            walk(sqlite, chat, query, limit),
            walk(opensearch, chat, query, limit),
          ]);
          const view = (ms: Message[]) => JSON.stringify(ms.map((m) => m.number));
          // Whole messages (body and timestamps too), whatever the key order of each adapter's objects.
          const full = (ms: Message[]) =>
            JSON.stringify(ms.map((m) => [m.chatNumber, m.number, m.body, m.createdAt, m.updatedAt]));
          if (full(fromOpenSearch) !== full(fromSqlite))
            mismatches.push(
              `${JSON.stringify(query)} chat ${chat.id} limit ${limit}: sqlite ${view(fromSqlite)}, ` +
                `opensearch ${view(fromOpenSearch)}, definition ${JSON.stringify(expected)}`,
            );
          else if (view(fromOpenSearch) !== JSON.stringify(expected))
            mismatches.push(`${JSON.stringify(query)}: both adapters disagree with the definition`);
        }),
      );
    }
    assert.ok(hits > queries.size, `the generated queries hit too rarely (${hits} hits)`);
    assert.deepEqual(
      mismatches.slice(0, 20),
      [],
      `${mismatches.length} of ${queries.size} queries differ (seed ${SEED})`,
    );
  });
});
