import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { failInsertsIn, failInsertsOf } from '../../../test/helpers/sqlite.ts';
import { ThreadReaders } from '../../search/sqlite/readers.ts';
import { attachSearchDatabase } from '../../search/sqlite/schema.ts';
import { storeConformance } from '../conformance.ts';
import { openDatabase } from './database.ts';
import { openSqliteStore, SqliteStore } from './store.ts';

// Writes in-line on the caller's connection: how tests and `:memory:` databases run.
storeConformance('sqlite (in-line writer, :memory:)', async () => {
  const db = openDatabase({ dataDir: ':memory:', synchronous: 'NORMAL' });
  const store = new SqliteStore(db);
  return { store, cleanup: () => store.close(), failInsertsOf: async (body) => failInsertsOf(db, body) };
});

// The production configuration: a database file in WAL mode, reads on this thread, writes on the
// dedicated writer thread (errors and results cross a thread boundary). A fresh directory per test.
storeConformance('sqlite (writer thread, file)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'store-conformance-'));
  const { store } = openSqliteStore({ dataDir: dir, synchronous: 'NORMAL' }, pino({ level: 'silent' }));
  return {
    store,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
    failInsertsOf: async (body) => failInsertsIn(dir, body),
  };
});

// As the server runs it: list pages read and rendered on a reader thread (the search's, see
// search/sqlite/readers.ts), every one checked against the page read on this thread.
storeConformance('sqlite (writer thread, file, list pages on a reader thread)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'store-conformance-'));
  const options = { dataDir: dir, synchronous: 'NORMAL' } as const;
  const log = pino({ level: 'silent' });
  const { store, db } = openSqliteStore(options, log);
  attachSearchDatabase(db, options);
  const readers = new ThreadReaders(options, 1, log);
  store.readPagesOn(readers);
  return {
    store,
    async cleanup() {
      await readers.close();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
    failInsertsOf: async (body) => failInsertsIn(dir, body),
  };
});

describe('SQLite database settings', () => {
  it('merges search-index segments 16 at a time, incrementally up to 64 (see search/sqlite/schema.ts)', () => {
    const options = { dataDir: ':memory:', synchronous: 'NORMAL' } as const;
    const db = openDatabase(options);
    attachSearchDatabase(db, options);
    const settings = Object.fromEntries(
      (db.prepare('SELECT k, v FROM search.messages_fts_config').all() as { k: string; v: number }[]).map(
        (row) => [row.k, row.v],
      ),
    );
    assert.equal(settings.automerge, 16);
    assert.equal(settings.crisismerge, 64);
    db.close();
  });
});
