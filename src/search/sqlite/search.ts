import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { SearchIndex, SearchPage } from '../../domain/ports.ts';
import type { Chat, Message, Page } from '../../domain/types.ts';
import { foldCase } from '../fold.ts';

const SELECT = `SELECT m.number, m.body, m.created_at AS createdAt, m.updated_at AS updatedAt`;
// Both queries read only the chat's rowid range (see store/sqlite/migrations.ts), newest first.
const TRIGRAM = `${SELECT} FROM messages_fts f JOIN messages m ON m.id = f.rowid
  WHERE messages_fts MATCH ?1 AND f.rowid BETWEEN ((?2 << 32) | 1) AND ((?2 << 32) | ?3)
  ORDER BY f.rowid DESC LIMIT ?4`;
const SHORT = `${SELECT} FROM messages m
  WHERE m.id BETWEEN ((?2 << 32) | 1) AND ((?2 << 32) | ?3) AND instr(chat_fold(m.body), ?1) > 0
  ORDER BY m.id DESC LIMIT ?4`;

/**
 * Search on the FTS5 trigram index maintained by the store's triggers. A trigram index cannot answer a
 * pattern shorter than three characters; those scan the chat's own rows newest first, stopping at the
 * page size, and never read outside the chat.
 */
export class SqliteSearch implements SearchIndex {
  readonly name = 'sqlite-fts5';
  readonly #trigram: StatementSync;
  readonly #short: StatementSync;

  /** `db` must come from openDatabase, which registers chat_fold(). */
  constructor(db: DatabaseSync) {
    this.#trigram = db.prepare(TRIGRAM);
    this.#short = db.prepare(SHORT);
  }

  async search(chat: Chat, query: string, page: SearchPage): Promise<Page<Message, SearchPage>> {
    const below = (page.before ?? 4294967296) - 1;
    const folded = foldCase(query);
    const statement = [...folded].length >= 3 ? this.#trigram : this.#short;
    const pattern = statement === this.#trigram ? phrase(folded) : folded;
    const rows = statement.all(pattern, chat.id, below, page.limit + 1) as unknown as Message[];
    for (const row of rows) row.chatNumber = chat.number;
    if (rows.length <= page.limit) return { items: rows };
    rows.length = page.limit;
    return { items: rows, next: { limit: page.limit, before: rows.at(-1)!.number } };
  }

  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}

/** An FTS5 string literal: every character is literal, `"` is escaped by doubling. */
function phrase(query: string): string {
  return `"${query.replaceAll('"', '""')}"`;
}
