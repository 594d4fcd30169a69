/**
 * The embedded search index lives in search.db and follows chat.db's search_log on its own thread. These
 * tests cover what that split could get wrong: an index cut short by a stop, a missing or foreign
 * search.db, an upgrade from the schema that kept the index inside chat.db, and the log's trimming.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import type { Chat } from '../../domain/types.ts';
import type { SqliteOptions } from '../../store/sqlite/database.ts';
import { migrations } from '../../store/sqlite/migrations.ts';
import { openSqliteStore, type SqliteStore } from '../../store/sqlite/store.ts';
import { ThreadIndexing, type ThreadIndexingOptions } from './indexing.ts';
import { attachSearchDatabase, searchMigrations } from './schema.ts';
import { openSqliteSearch, SqliteSearch } from './search.ts';

const silent = pino({ level: 'silent' });
const at = '2024-01-01T00:00:00.000Z';
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function options(): SqliteOptions {
  const dir = mkdtempSync(join(tmpdir(), 'search-indexing-'));
  dirs.push(dir);
  return { dataDir: dir, synchronous: 'NORMAL' };
}

function open(settings: SqliteOptions) {
  const { store, db } = openSqliteStore(settings, silent);
  const search = openSqliteSearch(db, settings, store.searchLog, silent, 1);
  return { store, db, search };
}

/** A store and a search whose indexer thread is tuned for the test. */
function openTuned(tuning: ThreadIndexingOptions) {
  const settings = options();
  const { store, db } = openSqliteStore(settings, silent);
  attachSearchDatabase(db, settings);
  const indexing = new ThreadIndexing(settings, store.searchLog, silent, tuning);
  return { settings, store, db, indexing, search: new SqliteSearch(db, { indexing }) };
}

/** An application with one chat; returns the chat. */
async function chatOf(store: SqliteStore, token: string): Promise<Chat> {
  const app = await store.createApplication({ token, name: token, at });
  await store.persistBatch([{ kind: 'chat.create', applicationId: app.id, number: 1, at }]);
  return (await store.findChat(app.id, 1))!;
}

async function write(store: SqliteStore, chat: Chat, from: number, bodies: string[]): Promise<void> {
  await store.persistBatch(
    bodies.map((body, i) => ({
      kind: 'message.create' as const,
      applicationId: chat.applicationId,
      chatNumber: chat.number,
      number: from + i,
      body,
      at,
    })),
  );
}

async function numbersFound(search: SqliteSearch, chat: Chat, query: string): Promise<number[]> {
  return (await search.search(chat, query, { limit: 1000 })).items.map((m) => m.number).sort((a, b) => a - b);
}

describe('sqlite search index (search.db, indexer thread)', () => {
  it('a search right after a write finds it: searches wait for the indexer to reach the store', async () => {
    const { store, search } = open(options());
    const chat = await chatOf(store, 'barrier');
    // One large batch, searched the moment it is acknowledged: the indexer cannot have kept up by itself.
    const bodies = Array.from({ length: 5000 }, (_, i) => (i === 4999 ? 'the last one: Quokka' : `m ${i}`));
    await write(store, chat, 1, bodies);
    assert.deepEqual(await numbersFound(search, chat, 'quokka'), [5000]);
    const edited = await store.editMessage(chat, 1, 'now a Wombat', at);
    assert.ok(edited);
    assert.deepEqual(await numbersFound(search, chat, 'wombat'), [1]);
    await search.close();
    await store.close();
  });

  it('resumes after a stop: what was stored but not yet indexed is indexed at the next start', async () => {
    const settings = options();
    const first = open(settings);
    const chat = await chatOf(first.store, 'resume');
    await write(first.store, chat, 1, ['alpha one', 'alpha two']);
    assert.deepEqual(await numbersFound(first.search, chat, 'alpha'), [1, 2]);
    // The indexer stops; the store goes on writing (and logging) without it.
    await first.search.close();
    await write(first.store, chat, 3, ['alpha three', 'beta four']);
    await first.store.editMessage(chat, 1, 'beta one', at);
    await first.store.close();

    const second = open(settings);
    assert.deepEqual(await numbersFound(second.search, chat, 'alpha'), [2, 3]);
    assert.deepEqual(await numbersFound(second.search, chat, 'beta'), [1, 4]);
    await second.search.close();
    await second.store.close();
  });

  it('rebuilds a missing search.db, and one that was built from another chat.db, from the store', async () => {
    const settings = options();
    const first = open(settings);
    const chat = await chatOf(first.store, 'rebuild');
    await write(first.store, chat, 1, ['gamma one', 'delta two', 'gamma three']);
    // Edits make the log longer than the chat: a rebuild must not number its entries below that end.
    for (const round of [1, 2, 3, 4]) await first.store.editMessage(chat, 2, `delta edit ${round}`, at);
    await first.search.close();
    await first.store.close();
    for (const suffix of ['', '-wal', '-shm'])
      rmSync(join(settings.dataDir, `search.db${suffix}`), { force: true });

    const second = open(settings);
    // A replayed create stores and logs nothing; its answer still reports where the writer's log ends.
    await write(second.store, chat, 1, ['gamma one']);
    assert.deepEqual(await numbersFound(second.search, chat, 'gamma'), [1, 3]);
    assert.deepEqual(await numbersFound(second.search, chat, 'edit 4'), [2]);
    assert.deepEqual(await numbersFound(second.search, chat, 'edit 3'), []);
    await second.search.close();
    await second.store.close();

    // Another deployment's search.db, copied in by mistake: its entries must not show up here.
    const other = options();
    const stranger = open(other);
    const strangerChat = await chatOf(stranger.store, 'stranger');
    await write(stranger.store, strangerChat, 1, ['gamma from elsewhere', 'x', 'y', 'gamma again']);
    await numbersFound(stranger.search, strangerChat, 'gamma');
    await stranger.search.close();
    await stranger.store.close();
    copyFileSync(join(other.dataDir, 'search.db'), join(settings.dataDir, 'search.db'));

    const third = open(settings);
    assert.deepEqual(await numbersFound(third.search, chat, 'gamma'), [1, 3]);
    assert.deepEqual(await numbersFound(third.search, chat, 'again'), []);
    await third.search.close();
    await third.store.close();
  });

  it('rebuilds when chat.db is an older copy of itself, put back: later writes are indexed again', async () => {
    const settings = options();
    const first = open(settings);
    const chat = await chatOf(first.store, 'rewound');
    await write(first.store, chat, 1, ['omega one', 'omega two']);
    await first.search.close();
    await first.store.close();
    const copy = join(settings.dataDir, 'chat.db.copy');
    copyFileSync(join(settings.dataDir, 'chat.db'), copy);

    const second = open(settings);
    await write(second.store, chat, 3, ['omega three']);
    for (const round of [1, 2]) await second.store.editMessage(chat, 1, `omega one, edit ${round}`, at);
    assert.deepEqual(await numbersFound(second.search, chat, 'omega'), [1, 2, 3]);
    await second.search.close();
    await second.store.close();
    // The older file back in place (search.db, which followed the newer one, stays).
    for (const suffix of ['-wal', '-shm'])
      rmSync(join(settings.dataDir, `chat.db${suffix}`), { force: true });
    copyFileSync(copy, join(settings.dataDir, 'chat.db'));

    const third = open(settings);
    // Number 3 again, with another body: its log entry sits below where the old index had got.
    await write(third.store, chat, 3, ['fresh three']);
    assert.deepEqual(await numbersFound(third.search, chat, 'fresh'), [3]);
    assert.deepEqual(await numbersFound(third.search, chat, 'omega'), [1, 2]);
    assert.deepEqual(await numbersFound(third.search, chat, 'edit'), []);
    await third.search.close();
    await third.store.close();
  });

  it('rebuilds for a copy of chat.db from another branch of its history, though its log is longer', async () => {
    const settings = options();
    const chatDb = join(settings.dataDir, 'chat.db');
    const putBack = (copy: string) => {
      for (const suffix of ['-wal', '-shm']) rmSync(`${chatDb}${suffix}`, { force: true });
      copyFileSync(copy, chatDb);
    };
    const first = open(settings);
    const chat = await chatOf(first.store, 'branches');
    await write(first.store, chat, 1, ['omega one', 'omega two']);
    await first.search.close();
    await first.store.close();
    const copyA = join(settings.dataDir, 'a.copy');
    copyFileSync(chatDb, copyA);
    const second = open(settings);
    await write(
      second.store,
      chat,
      3,
      Array.from({ length: 10 }, (_, i) => `bravo ${i + 3}`),
    );
    await second.search.close();
    await second.store.close();
    const copyB = join(settings.dataDir, 'b.copy');
    copyFileSync(chatDb, copyB);

    // A back: the index, ahead of A's log, is rebuilt; one more message on A's branch.
    putBack(copyA);
    const third = open(settings);
    await write(third.store, chat, 3, ['fresh three']);
    assert.deepEqual(await numbersFound(third.search, chat, 'fresh'), [3]);
    await third.search.close();
    await third.store.close();

    // B back: its log is longer than the index got on A's branch, and the index is still rebuilt.
    putBack(copyB);
    const fourth = open(settings);
    assert.deepEqual(await numbersFound(fourth.search, chat, 'bravo'), [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    assert.deepEqual(await numbersFound(fourth.search, chat, 'fresh'), []);
    await fourth.search.close();
    await fourth.store.close();
  });

  it('upgrades a database whose index was inside chat.db (schema 3): its messages are searchable', async () => {
    const settings = options();
    const old = new DatabaseSync(join(settings.dataDir, 'chat.db'));
    old.exec('PRAGMA journal_mode = WAL');
    for (const [version, migration] of migrations.slice(0, 3).entries()) {
      old.exec(migration);
      old.exec(`PRAGMA user_version = ${version + 1}`);
    }
    old.exec(`INSERT INTO applications (id, token, name, created_at, updated_at) VALUES (1, 'old', 'old', '${at}', '${at}');
      INSERT INTO chats (id, application_id, number, created_at, updated_at) VALUES (1, 1, 1, '${at}', '${at}');
      INSERT INTO messages (id, chat_id, number, body, created_at, updated_at)
        VALUES ((1 << 32) | 1, 1, 1, 'kept from before', '${at}', '${at}'), ((1 << 32) | 2, 1, 2, 'also Kept', '${at}', '${at}');`);
    old.close();

    const { store, search } = open(settings);
    const chat = (await store.findChat(1, 1))!;
    assert.deepEqual(await numbersFound(search, chat, 'kept'), [1, 2]);
    await search.close();
    await store.close();
  });

  it('rebuilds a search.db of schema 1 (rowids in message order) and answers newest first', async () => {
    const settings = options();
    const first = open(settings);
    const chat = await chatOf(first.store, 'schema1');
    await write(first.store, chat, 1, ['zeta one', 'other', 'zeta three', 'zeta four']);
    await first.search.close();
    await first.store.close();
    // search.db as schema 1 left it: the same messages indexed under their message ids, fully caught up.
    const chatDb = new DatabaseSync(join(settings.dataDir, 'chat.db'));
    const { source } = chatDb.prepare('SELECT source FROM instance').get() as { source: string };
    const rows = chatDb.prepare('SELECT id, lower(body) AS body FROM messages').all();
    const { seq } = chatDb.prepare('SELECT max(seq) AS seq FROM search_log').get() as { seq: number };
    chatDb.close();
    for (const suffix of ['', '-wal', '-shm'])
      rmSync(join(settings.dataDir, `search.db${suffix}`), { force: true });
    const old = new DatabaseSync(':memory:');
    old.prepare('ATTACH DATABASE ? AS search').run(join(settings.dataDir, 'search.db'));
    old.exec(searchMigrations[0]!);
    old.exec('PRAGMA search.user_version = 1');
    old.prepare('UPDATE search.indexed SET source = ?, seq = ?').run(source, seq);
    const insert = old.prepare('INSERT INTO search.messages_fts (rowid, body) VALUES (?, ?)');
    for (const row of rows) insert.run(row.id as number, row.body as string);
    old.close();

    const second = open(settings);
    const page = await second.search.search(chat, 'ZETA', { limit: 2 });
    assert.deepEqual(
      page.items.map((m) => m.number),
      [4, 3],
    );
    assert.deepEqual(page.next, { limit: 2, before: 3 });
    const rest = await second.search.search(chat, 'zeta', { limit: 2, before: 3 });
    assert.deepEqual(
      rest.items.map((m) => [m.number, m.body]),
      [[1, 'zeta one']],
    );
    await second.search.close();
    await second.store.close();
  });

  it('indexes chats whose message ids are beyond 2^53 (chat ids from 2^21 on), edits included', async () => {
    const settings = options();
    const { store, search } = open(settings);
    const app = await store.createApplication({ token: 'many-chats', name: 'many-chats', at });
    // As if two billion chats had been created before: the next chat ids are 2^31 - 2 and 2^31 - 1.
    const raw = new DatabaseSync(join(settings.dataDir, 'chat.db'));
    raw
      .prepare(
        'INSERT INTO chats (id, application_id, number, created_at, updated_at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(2 ** 31 - 2, app.id, 1, at, at);
    raw.close();
    await store.persistBatch([{ kind: 'chat.create', applicationId: app.id, number: 2, at }]);
    const first = (await store.findChat(app.id, 1))!;
    const second = (await store.findChat(app.id, 2))!;
    assert.deepEqual([first.id, second.id], [2 ** 31 - 2, 2 ** 31 - 1]);
    await write(store, first, 1, ['odd wombat', 'even wombat', 'odd wombat again']);
    await write(store, second, 1, ['wombat next door']);
    await store.editMessage(first, 2, 'even numbat', at);
    assert.deepEqual(await numbersFound(search, first, 'wombat'), [1, 3]);
    assert.deepEqual(await numbersFound(search, first, 'numbat'), [2]);
    assert.deepEqual(await numbersFound(search, second, 'wombat'), [1]);
    await search.close();
    await store.close();
  });

  it('trims the log up to what the index holds, keeping the last entry so numbering never restarts', async () => {
    const { store, db, indexing, search } = openTuned({ trimEveryMs: 20 });
    const chat = await chatOf(store, 'trim');
    await write(store, chat, 1, ['one', 'two', 'three']);
    const count = () =>
      db.prepare('SELECT count(*) AS n, max(seq) AS top FROM search_log').get() as { n: number; top: number };
    await indexing.caughtUp();
    const deadline = Date.now() + 5000;
    while (count().n > 1 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual({ ...count() }, { n: 1, top: 3 });
    await write(store, chat, 4, ['four']);
    assert.equal(count().top, 4, 'the next entry continues after the trimmed ones');
    assert.deepEqual(await numbersFound(search, chat, 'four'), [4]);
    await indexing.close();
    await store.close();
  });

  it('gathers entries while nobody searches, and indexes at once for a search that waits', async () => {
    // Gathering for a minute: only a search's own request for a step can index within its 2 s wait.
    const { store, indexing, search } = openTuned({ waitMs: 2_000, gatherMs: 60_000 });
    try {
      const chat = await chatOf(store, 'gathering');
      for (const [i, word] of ['aardvark', 'bandicoot', 'capybara'].entries()) {
        await write(store, chat, i + 1, [`a ${word}`]);
        assert.deepEqual(await numbersFound(search, chat, word), [i + 1]);
      }
      // A step that a wake-up scheduled as gathering is not run twice, nor lost, by the search's request.
      await write(store, chat, 4, ['dugong']);
      await write(store, chat, 5, ['echidna']);
      assert.deepEqual(await numbersFound(search, chat, 'echidna'), [5]);
      assert.deepEqual(await numbersFound(search, chat, 'dugong'), [4]);
    } finally {
      // Closes the thread (and its minute-long timer) even when an assertion failed.
      await indexing.close();
      await store.close();
    }
  });

  it('answers 503 rather than a stale result while the index cannot catch up, and recovers', async () => {
    const { settings, store, indexing, search: stalled } = openTuned({ waitMs: 300 });
    const chat = await chatOf(store, 'stalled');
    // Another connection holds search.db's write lock: the indexer cannot commit until it lets go.
    const blocker = new DatabaseSync(join(settings.dataDir, 'search.db'));
    blocker.exec('BEGIN IMMEDIATE');
    try {
      await write(store, chat, 1, ['epsilon']);
      await assert.rejects(stalled.search(chat, 'epsilon', { limit: 10 }), {
        status: 503,
        code: 'unavailable',
      });
    } finally {
      blocker.exec('ROLLBACK');
      blocker.close();
    }
    const deadline = Date.now() + 10_000;
    let found: number[] = [];
    while (found.length === 0 && Date.now() < deadline) {
      found = await numbersFound(stalled, chat, 'epsilon').catch(() => []);
    }
    assert.deepEqual(found, [1]);
    await indexing.close();
    await store.close();
  });
});
