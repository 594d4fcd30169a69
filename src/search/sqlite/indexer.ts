import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { foldCase } from '../fold.ts';
import { ftsRowid } from './schema.ts';

/**
 * A message is named by its chat id and number, never by its id: ids reach 2^53 once chat ids reach 2^21,
 * and node:sqlite refuses to read an integer a JS number cannot hold (the step would fail for good).
 */
interface LogEntry {
  seq: number;
  chat: number;
  number: number;
  edit: number;
  /** null only if the message is gone, which the store never does; skipped rather than trusted. */
  body: string | null;
}

/**
 * Follows chat.db's search_log into the FTS5 index in search.db, on a connection that has search.db
 * attached (see schema.ts). Each step indexes the next entries and advances the watermark in the same
 * search.db transaction, so a crash anywhere re-indexes nothing twice and skips nothing. The body is read
 * when the entry is indexed, so an entry always indexes the message's current body; an edit entry
 * replaces whatever an earlier entry indexed.
 */
export class SearchIndexer {
  readonly #db: DatabaseSync;
  readonly #pending: StatementSync;
  readonly #insert: StatementSync;
  readonly #remove: StatementSync;
  readonly #setIndexed: StatementSync;
  readonly #merge: StatementSync;
  readonly #totalChanges: StatementSync;
  #indexed: number;

  constructor(db: DatabaseSync) {
    this.#db = db;
    // The next entries in log order, handed over in FTS rowid order: FTS5 flushes its pending terms to a
    // new segment whenever a rowid is not above the previous one, and the log's order (numbers going up)
    // is descending in the index (ftsRowid). Entries of one message keep their log order.
    this.#pending = db.prepare(
      `SELECT seq, id >> 32 AS chat, id & 4294967295 AS number, edit, body FROM (
         SELECT l.seq, l.message_id AS id, l.edit, m.body FROM search_log l
         LEFT JOIN messages m ON m.id = l.message_id WHERE l.seq > ? ORDER BY l.seq LIMIT ?)
       ORDER BY ${ftsRowid('id')}, seq`,
    );
    const id = '((?1 << 32) | ?2)';
    this.#insert = db.prepare(`INSERT INTO search.messages_fts (rowid, body) VALUES (${ftsRowid(id)}, ?3)`);
    this.#remove = db.prepare(`DELETE FROM search.messages_fts WHERE rowid = ${ftsRowid(id)}`);
    this.#setIndexed = db.prepare('UPDATE search.indexed SET seq = ?');
    this.#merge = db.prepare(`INSERT INTO search.messages_fts (messages_fts, rank) VALUES ('merge', ?)`);
    this.#totalChanges = db.prepare('SELECT total_changes() AS n');
    this.#indexed = (db.prepare('SELECT seq FROM search.indexed').get() as { seq: number }).seq;
  }

  /** The last search_log entry the index holds. */
  get indexed(): number {
    return this.#indexed;
  }

  /** Indexes up to `limit` entries after the watermark in one transaction; returns how many. */
  step(limit: number): number {
    const entries = this.#pending.all(this.#indexed, limit) as unknown as LogEntry[];
    if (entries.length === 0) return 0;
    let last = 0;
    for (const entry of entries) last = Math.max(last, entry.seq);
    // Deferred, not IMMEDIATE: this connection has chat.db attached too, and an IMMEDIATE transaction
    // would take chat.db's write lock from the store's writer. Only search.db is written here.
    this.#db.exec('BEGIN');
    try {
      for (const entry of entries) {
        if (entry.edit) this.#remove.run(entry.chat, entry.number);
        if (entry.body !== null) this.#insert.run(entry.chat, entry.number, foldCase(entry.body));
      }
      this.#setIndexed.run(last);
      this.#db.exec('COMMIT');
    } catch (error) {
      if (this.#db.isTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
    this.#indexed = last;
    return entries.length;
  }

  /** Indexes everything logged so far. */
  catchUp(limit = 5000): void {
    while (this.step(limit) === limit);
  }

  /**
   * One step of merging the index's segments (`pages` pages of work); true while there is more to merge.
   * A query probes every segment, and a fully merged index answers several times faster.
   */
  mergeStep(pages: number): boolean {
    const before = (this.#totalChanges.get() as { n: number }).n;
    this.#merge.run(-pages);
    // The merge statement itself counts as one change; more means it rewrote segments and may go on.
    return (this.#totalChanges.get() as { n: number }).n > before + 1;
  }
}
