import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { LAST_LOGGED } from '../../store/sqlite/columns.ts';
import { type SqliteOptions, transaction } from '../../store/sqlite/database.ts';

/**
 * The search index's own database, attached as `search` beside the store's chat.db: derived data, rebuilt
 * from chat.db whenever it is missing or was built from another chat.db. Its own file so that its writer
 * (the indexer thread) never takes chat.db's write lock: SQLite has one writer per database file.
 * Versioned like chat.db (`PRAGMA search.user_version`); append, never edit a released migration.
 */
export const searchMigrations: readonly string[] = [
  // Substring search: every 3-character sequence of each body, indexed after foldCase() and matched
  // case-sensitively, so a match is exactly foldCase(body).includes(foldCase(q)): the same rule as the
  // short-query path and every other search adapter (FTS5's own case folding differs from it on irregular
  // Unicode mappings). Contentless: the bodies are stored once, in chat.db.
  // automerge 16: FTS5 merges a level inside the commit that fills it, so fewer, larger merges cost less in
  // all. crisismerge 64: at the default (16, equal to automerge) every merge ran whole inside one commit,
  // up to half a second at the largest levels; with room above automerge they stay incremental. The indexer
  // merges the index fully whenever it is idle (index-thread.ts).
  // `indexed`: which chat.db this index follows (its instance source) and the last search_log entry in it.
  `
  CREATE VIRTUAL TABLE search.messages_fts USING fts5 (
    body, content = '', contentless_delete = 1, tokenize = 'trigram case_sensitive 1'
  );
  INSERT INTO search.messages_fts (messages_fts, rank) VALUES ('automerge', 16);
  INSERT INTO search.messages_fts (messages_fts, rank) VALUES ('crisismerge', 64);
  CREATE TABLE search.indexed (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    source TEXT    NOT NULL,
    seq    INTEGER NOT NULL
  );
  INSERT INTO search.indexed (id, source, seq) VALUES (1, '', 0);
  `,
  // Rowids that count down within each chat (ftsRowid below): the same index, rebuilt from chat.db by
  // attachSearchDatabase because the emptied source no longer matches.
  `
  DROP TABLE search.messages_fts;
  CREATE VIRTUAL TABLE search.messages_fts USING fts5 (
    body, content = '', contentless_delete = 1, tokenize = 'trigram case_sensitive 1'
  );
  INSERT INTO search.messages_fts (messages_fts, rank) VALUES ('automerge', 16);
  INSERT INTO search.messages_fts (messages_fts, rank) VALUES ('crisismerge', 64);
  UPDATE search.indexed SET source = '', seq = 0;
  `,
  // foldCase folds Greek final sigma (search/fold.ts): what is indexed changes, so the index is emptied and
  // rebuilt from chat.db by attachSearchDatabase, as above.
  `UPDATE search.indexed SET source = '', seq = 0;`,
];

/**
 * The FTS5 rowid of message id `id` (an SQL expression): the chat's bits unchanged, the number's 32 bits
 * counted down (2^32 - 1 - number). Searches answer newest first, and FTS5 walks a doclist in ascending rowid
 * order far more cheaply than in descending order, which loads and reverses pages (2 to 3 times slower
 * for common trigrams on the benchmark's million messages). The mapping is its own inverse.
 */
export const ftsRowid = (id: string): string =>
  `(((${id}) >> 32) << 32) | (4294967295 - ((${id}) & 4294967295))`;

/**
 * Attaches search.db (a private in-memory one when chat.db is `:memory:`) to `db` as `search`, migrates
 * it, and, when it does not follow this chat.db (another one, or an older copy of it), empties it and
 * queues every stored message for indexing. The queued entries go after the log's current end, never
 * below it: a writer that already read that end must not see the log number backwards.
 */
export function attachSearchDatabase(db: DatabaseSync, options: SqliteOptions): void {
  const path = options.dataDir === ':memory:' ? ':memory:' : join(options.dataDir, 'search.db');
  db.prepare('ATTACH DATABASE ? AS search').run(path);
  db.exec('PRAGMA search.journal_mode = WAL');
  db.exec(`PRAGMA search.synchronous = ${options.synchronous}`);
  const { user_version: version } = db.prepare('PRAGMA search.user_version').get() as {
    user_version: number;
  };
  for (let next = version; next < searchMigrations.length; next++) {
    transaction(db, () => {
      db.exec(searchMigrations[next]!);
      db.exec(`PRAGMA search.user_version = ${next + 1}`);
    });
  }
  const { source } = db.prepare('SELECT source FROM instance').get() as { source: string };
  const indexed = db.prepare('SELECT source, seq FROM search.indexed').get() as {
    source: string;
    seq: number;
  };
  const { seq: logEnd } = db.prepare(LAST_LOGGED).get() as { seq: number };
  // The index never gets past the log's end (trimming keeps the last entry it holds). When it has, chat.db
  // went back in time (an older copy of the file put back): the index holds messages it does not.
  const follows = indexed.source === source && indexed.seq <= logEnd;
  // Both get a new name at every start, so a copy of chat.db taken before it and put back later names
  // another index, even one its log has not fallen behind (the two histories may differ past the copy).
  // The two files commit one after the other: a crash in between leaves them apart, and the next start
  // rebuilds, which is safe.
  const renamed = randomBytes(16).toString('hex');
  transaction(db, () => {
    db.prepare('UPDATE instance SET source = ?').run(renamed);
    if (follows) {
      db.prepare('UPDATE search.indexed SET source = ?').run(renamed);
      return;
    }
    const { seq: end } = db.prepare(LAST_LOGGED).get() as { seq: number };
    db.exec(`INSERT INTO search.messages_fts (messages_fts) VALUES ('delete-all')`);
    // The old entries stay until the indexer's progress trims them, as every entry does.
    db.prepare('UPDATE search.indexed SET source = ?, seq = ?').run(renamed, end);
    db.exec('INSERT INTO search_log (message_id) SELECT id FROM messages ORDER BY id');
  });
}
