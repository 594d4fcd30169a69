import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { MessageRow } from '../../store/sqlite/columns.ts';
import { ftsRowid } from './schema.ts';

// MESSAGE's columns (store/sqlite/columns.ts), named through `m`: the FTS table has a `body` column too.
const SELECT = `SELECT m.number, m.body, m.created_at, m.updated_at`;
// Both queries read only the chat's rowid range (see store/sqlite/migrations.ts), newest first: in the
// index that is ascending rowid order (ftsRowid), numbers ?3 down to 1.
const TRIGRAM = `${SELECT} FROM search.messages_fts(?1) f JOIN messages m ON m.id = ${ftsRowid('f.rowid')}
  WHERE f.rowid BETWEEN ${ftsRowid('(?2 << 32) | ?3')} AND ${ftsRowid('(?2 << 32) | 1')}
  ORDER BY f.rowid LIMIT ?4`;
const SHORT = `${SELECT} FROM messages m
  WHERE m.id BETWEEN ((?2 << 32) | ?5) AND ((?2 << 32) | ?3) AND instr(chat_fold(m.body), ?1) > 0
  ORDER BY m.id DESC LIMIT ?4`;
// The lowest number among the next ?3 messages below ?2 (NULL when fewer remain): where a bounded scan stops.
const SCAN_FLOOR = `SELECT id & 4294967295 AS number FROM messages
  WHERE id BETWEEN ((?1 << 32) | 1) AND ((?1 << 32) | ?2) ORDER BY id DESC LIMIT 1 OFFSET ?3 - 1`;

/** One search of one chat, as SqliteSearch asks it: the query already folded (foldCase). */
export interface SearchQuery {
  chatId: number;
  folded: string;
  /** The highest message number to consider. */
  below: number;
  /** Rows to return at most. */
  rows: number;
  /** Rows a short-pattern scan may read before it stops (see SqliteSearch). */
  scanRows: number;
}

export interface SearchRows {
  /**
   * Newest first, as arrays in MESSAGE's column order (see store/sqlite/columns.ts). On a reader thread
   * they are cloned to the HTTP thread: 51 rows take 13 µs as arrays against 35 µs as objects.
   */
  rows: MessageRow[];
  /** Where a bounded scan stopped (the lowest number it read), when it stopped before the chat's start. */
  floor?: number;
}

/**
 * The SQL of an embedded search on a connection that has search.db attached and chat_fold() defined
 * (openDatabase): run on the HTTP thread's connection or on a reader thread's own (readers.ts).
 */
export class SearchQueries {
  readonly #trigram: StatementSync;
  readonly #short: StatementSync;
  readonly #scanFloor: StatementSync;

  constructor(db: DatabaseSync) {
    this.#trigram = db.prepare(TRIGRAM);
    this.#trigram.setReturnArrays(true);
    this.#short = db.prepare(SHORT);
    this.#short.setReturnArrays(true);
    this.#scanFloor = db.prepare(SCAN_FLOOR);
  }

  run(query: SearchQuery): SearchRows {
    const { chatId, folded, below, rows } = query;
    if (usesIndex(folded)) {
      return { rows: this.#trigram.all(phrase(folded), chatId, below, rows) as unknown as MessageRow[] };
    }
    const floor = (this.#scanFloor.get(chatId, below, query.scanRows) as { number: number } | undefined)
      ?.number;
    const found = this.#short.all(folded, chatId, below, rows, floor ?? 1) as unknown as MessageRow[];
    return floor === undefined ? { rows: found } : { rows: found, floor };
  }
}

/** A trigram index answers patterns of three characters or more; shorter ones scan the chat. */
export function usesIndex(folded: string): boolean {
  return [...folded].length >= 3;
}

/** An FTS5 string literal: every character is literal, `"` is escaped by doubling. */
function phrase(query: string): string {
  return `"${query.replaceAll('"', '""')}"`;
}
