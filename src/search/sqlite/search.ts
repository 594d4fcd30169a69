import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Logger } from 'pino';
import type { SearchIndex, SearchPage } from '../../domain/ports.ts';
import type { Chat, Message, Page } from '../../domain/types.ts';
import type { SqliteOptions } from '../../store/sqlite/database.ts';
import { foldCase } from '../fold.ts';
import { InlineIndexing, type SearchIndexing, type SearchLog, ThreadIndexing } from './indexing.ts';
import { attachSearchDatabase } from './schema.ts';

const SELECT = `SELECT m.number, m.body, m.created_at AS createdAt, m.updated_at AS updatedAt`;
// Both queries read only the chat's rowid range (see store/sqlite/migrations.ts), newest first.
const TRIGRAM = `${SELECT} FROM search.messages_fts(?1) f JOIN messages m ON m.id = f.rowid
  WHERE f.rowid BETWEEN ((?2 << 32) | 1) AND ((?2 << 32) | ?3)
  ORDER BY f.rowid DESC LIMIT ?4`;
const SHORT = `${SELECT} FROM messages m
  WHERE m.id BETWEEN ((?2 << 32) | ?5) AND ((?2 << 32) | ?3) AND instr(chat_fold(m.body), ?1) > 0
  ORDER BY m.id DESC LIMIT ?4`;
// The lowest number among the next ?3 messages below ?2 (NULL when fewer remain): where a bounded scan stops.
const SCAN_FLOOR = `SELECT id & 4294967295 AS number FROM messages
  WHERE id BETWEEN ((?1 << 32) | 1) AND ((?1 << 32) | ?2) ORDER BY id DESC LIMIT 1 OFFSET ?3 - 1`;

export interface SqliteSearchOptions {
  /** Rows one short-query request may scan before it answers with what it found and a `next` cursor. */
  shortScanRows?: number;
  /** How the index is kept up to date: on its own thread in production, inline by default. */
  indexing?: SearchIndexing;
}

/**
 * Search on the FTS5 trigram index in search.db (schema.ts), which the indexer keeps in step with the
 * store's search_log (indexing.ts); a search first waits until the index holds every create and edit
 * acknowledged before it began, so a 201 or an edit's 200 is searchable at once. A trigram index cannot answer a pattern
 * shorter than three characters; those scan the chat's own rows newest first, never outside the chat,
 * and stop at the page size or after `shortScanRows` rows, whichever comes first. A scan that stops early
 * answers a short page with a `next` cursor where it stopped, so one request never stalls the server on
 * a large chat (node:sqlite reads run on the HTTP thread) and following `next` still finds every match.
 */
export class SqliteSearch implements SearchIndex {
  readonly name = 'sqlite-fts5';
  readonly #trigram: StatementSync;
  readonly #short: StatementSync;
  readonly #scanFloor: StatementSync;
  readonly #shortScanRows: number;
  readonly #indexing: SearchIndexing;

  /** `db` must come from openDatabase (chat_fold()) and have search.db attached (attachSearchDatabase). */
  constructor(db: DatabaseSync, options: SqliteSearchOptions = {}) {
    this.#indexing = options.indexing ?? new InlineIndexing(db);
    this.#trigram = db.prepare(TRIGRAM);
    this.#short = db.prepare(SHORT);
    this.#scanFloor = db.prepare(SCAN_FLOOR);
    this.#shortScanRows = options.shortScanRows ?? 2_000;
  }

  async search(chat: Chat, query: string, page: SearchPage): Promise<Page<Message, SearchPage>> {
    const below = (page.before ?? 4294967296) - 1;
    const folded = foldCase(query);
    let rows: Message[];
    let floor: number | undefined;
    if ([...folded].length >= 3) {
      await this.#indexing.caughtUp();
      rows = this.#trigram.all(phrase(folded), chat.id, below, page.limit + 1) as unknown as Message[];
    } else {
      floor = (this.#scanFloor.get(chat.id, below, this.#shortScanRows) as { number: number } | undefined)
        ?.number;
      rows = this.#short.all(folded, chat.id, below, page.limit + 1, floor ?? 1) as unknown as Message[];
    }
    for (const row of rows) row.chatNumber = chat.number;
    if (rows.length > page.limit) {
      rows.length = page.limit;
      return { items: rows, next: { limit: page.limit, before: rows.at(-1)!.number } };
    }
    // The bounded scan stopped above the chat's first message: continue below where it stopped.
    if (floor !== undefined && floor > 1) return { items: rows, next: { limit: page.limit, before: floor } };
    return { items: rows };
  }

  ping(): Promise<void> {
    return this.#indexing.ping();
  }

  close(): Promise<void> {
    return this.#indexing.close();
  }
}

/** An FTS5 string literal: every character is literal, `"` is escaped by doubling. */
function phrase(query: string): string {
  return `"${query.replaceAll('"', '""')}"`;
}

/**
 * Opens the embedded search on the store's reading connection `db`: attaches search.db (rebuilding it if it
 * does not follow this chat.db) and starts its indexer thread. `:memory:` indexes inline, at search time.
 */
export function openSqliteSearch(
  db: DatabaseSync,
  options: SqliteOptions,
  searchLog: SearchLog,
  log: Logger,
): SqliteSearch {
  attachSearchDatabase(db, options);
  if (options.dataDir === ':memory:') return new SqliteSearch(db);
  return new SqliteSearch(db, { indexing: new ThreadIndexing(options, searchLog, log) });
}
