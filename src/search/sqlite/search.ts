import type { DatabaseSync } from 'node:sqlite';
import type { Logger } from 'pino';
import type { RenderedPage, SearchIndex, SearchPage } from '../../domain/ports.ts';
import type { Chat, Message, Page } from '../../domain/types.ts';
import type { SqliteOptions } from '../../store/sqlite/database.ts';
import { foldCase } from '../fold.ts';
import { InlineIndexing, type SearchIndexing, type SearchLog, ThreadIndexing } from './indexing.ts';
import { searchPage } from './page.ts';
import { type SearchQuery, usesIndex } from './queries.ts';
import { InlineReader, type SearchReader, ThreadReaders } from './readers.ts';
import { attachSearchDatabase } from './schema.ts';

export interface SqliteSearchOptions {
  /** Rows one short-query request may scan before it answers with what it found and a `next` cursor. */
  shortScanRows?: number;
  /** How the index is kept up to date: on its own thread in production, inline by default. */
  indexing?: SearchIndexing;
  /** Where the SQL runs: reader threads in production, the given connection by default. */
  reader?: SearchReader;
}

/**
 * Search on the FTS5 trigram index in search.db (schema.ts), which the indexer keeps in step with the
 * store's search_log (indexing.ts); a search first waits until the index holds every create and edit
 * acknowledged before it began, so a 201 or an edit's 200 is searchable at once. A trigram index cannot answer a pattern
 * shorter than three characters; those scan the chat's own rows newest first, never outside the chat,
 * and stop at the page size or after `shortScanRows` rows, whichever comes first. A scan that stops early
 * answers a short page with a `next` cursor where it stopped, so one request never stalls a reader on
 * a large chat (node:sqlite reads are synchronous) and following `next` still finds every match. The SQL
 * (queries.ts) runs on reader threads (readers.ts) in production, on `db` itself otherwise.
 */
export class SqliteSearch implements SearchIndex {
  readonly name = 'sqlite-fts5';
  readonly #reader: SearchReader;
  readonly #shortScanRows: number;
  readonly #indexing: SearchIndexing;
  /** The reader threads, when searches run on them: the store reads its list pages on them too. */
  readonly readerThreads: ThreadReaders | undefined;

  /** `db` must come from openDatabase (chat_fold()) and have search.db attached (attachSearchDatabase). */
  constructor(db: DatabaseSync, options: SqliteSearchOptions = {}) {
    this.#indexing = options.indexing ?? new InlineIndexing(db);
    this.#reader = options.reader ?? new InlineReader(db);
    this.readerThreads = this.#reader instanceof ThreadReaders ? this.#reader : undefined;
    this.#shortScanRows = options.shortScanRows ?? 2_000;
  }

  async search(chat: Chat, query: string, page: SearchPage): Promise<Page<Message, SearchPage>> {
    const found = await this.#reader.run(await this.#ask(chat, query, page));
    return searchPage(found, chat.number, page.limit);
  }

  async searchRendered(chat: Chat, query: string, page: SearchPage): Promise<RenderedPage<SearchPage>> {
    return this.#reader.render(await this.#ask(chat, query, page), chat.number, page.limit);
  }

  /** The query of a search, once the index holds every write acknowledged before it began. */
  async #ask(chat: Chat, query: string, page: SearchPage): Promise<SearchQuery> {
    const folded = foldCase(query);
    if (usesIndex(folded)) await this.#indexing.caughtUp();
    return {
      chatId: chat.id,
      folded,
      below: (page.before ?? 4294967296) - 1,
      rows: page.limit + 1,
      scanRows: this.#shortScanRows,
    };
  }

  async ping(): Promise<void> {
    await Promise.all([this.#indexing.ping(), this.#reader.ping()]);
  }

  async close(): Promise<void> {
    await Promise.all([this.#reader.close(), this.#indexing.close()]);
  }
}

/**
 * Opens the embedded search on the store's reading connection `db`: attaches search.db (rebuilding it if it
 * does not follow this chat.db), starts its indexer thread and `readers` reader threads (none: searches
 * run on `db`). `:memory:` indexes and reads inline, at search time.
 */
export function openSqliteSearch(
  db: DatabaseSync,
  options: SqliteOptions,
  searchLog: SearchLog,
  log: Logger,
  readers = 0,
): SqliteSearch {
  attachSearchDatabase(db, options);
  if (options.dataDir === ':memory:') return new SqliteSearch(db);
  return new SqliteSearch(db, {
    indexing: new ThreadIndexing(options, searchLog, log),
    ...(readers > 0 ? { reader: new ThreadReaders(options, readers, log) } : {}),
  });
}
