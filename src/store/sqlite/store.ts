import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Logger } from 'pino';
import { numberPage, numberRange } from '../../domain/paging.ts';
import type { ApplicationCursor, BatchOutcome, RenderedPage, Store } from '../../domain/ports.ts';
import type {
  Application,
  Chat,
  IdempotencyRecord,
  Message,
  NumberPage,
  Page,
  WriteCommand,
} from '../../domain/types.ts';
import type { SearchLog } from '../../search/sqlite/indexing.ts';
import { APPLICATION, CHAT, chatsFrom, LAST_EDIT_SEQ, LAST_LOGGED, MESSAGE } from './columns.ts';
import { openDatabase, type SqliteOptions } from './database.ts';
import { type MessagePageReader, MessagePages } from './message-pages.ts';
import { InlineWriteChannel, ThreadWriteChannel, type WriteChannel } from './write-channel.ts';
import { SqliteWriter } from './writer.ts';

/**
 * The embedded primary store on node:sqlite. Reads run on the caller's connection (node:sqlite is
 * synchronous; each read is one short statement). Writes go through a WriteChannel to the SqliteWriter,
 * on its own thread in production (see `openSqliteStore`), so commits never stall the HTTP thread.
 */
export class SqliteStore implements Store {
  readonly name = 'sqlite';
  readonly #db: DatabaseSync;
  readonly #sql: ReturnType<typeof prepare>;
  readonly #writes: WriteChannel;
  readonly #pages: MessagePages;
  /** Where list pages are read and rendered, once the reader threads run (readPagesOn). */
  #pageReader: MessagePageReader | undefined;
  #logged = 0;
  #loggedRead = false;
  readonly #logListeners: ((position: number) => void)[] = [];
  /** The search_log as the search indexer sees it (search/sqlite/indexing.ts). */
  readonly searchLog: SearchLog = {
    position: () => {
      // What an earlier run logged counts too (a search right after a restart must find its messages),
      // read at first use: opening the search may just have queued every message (a rebuild).
      if (!this.#loggedRead) {
        this.#loggedRead = true;
        this.#logged = Math.max(this.#logged, (this.#sql.lastLogged.get() as { seq: number }).seq);
      }
      return this.#logged;
    },
    onAdvance: (listener) => this.#logListeners.push(listener),
    trim: (upTo) => this.#writes.call('trimSearchLog', upTo),
  };

  /** Without a channel, writes run in-line on `db` (tests, `:memory:`). */
  constructor(db: DatabaseSync, writes: WriteChannel = new InlineWriteChannel(new SqliteWriter(db))) {
    this.#db = db;
    this.#sql = prepare(db);
    this.#pages = new MessagePages(db);
    this.#writes = writes;
    writes.onLogged((logged) => {
      if (logged <= this.#logged) return;
      this.#logged = logged;
      for (const listener of this.#logListeners) listener(logged);
    });
  }

  createApplication(input: { token: string; name: string; at: string }): Promise<Application> {
    return this.#writes.call('createApplication', input.token, input.name, input.at);
  }

  async findApplication(token: string): Promise<Application | undefined> {
    return this.#sql.applicationByToken.get(token) as Application | undefined;
  }

  renameApplication(id: number, name: string, at: string): Promise<Application | undefined> {
    return this.#writes.call('renameApplication', id, name, at);
  }

  async listApplications(page: {
    limit: number;
    after?: ApplicationCursor;
  }): Promise<Page<Application, ApplicationCursor>> {
    const rows = (page.after
      ? this.#sql.applicationsAfter.all(page.after.createdAt, page.after.token, page.limit + 1)
      : this.#sql.applicationsFirst.all(page.limit + 1)) as unknown as Application[];
    if (rows.length <= page.limit) return { items: rows };
    rows.length = page.limit;
    const last = rows.at(-1)!;
    return { items: rows, next: { createdAt: last.createdAt, token: last.token } };
  }

  async findChat(applicationId: number, number: number): Promise<Chat | undefined> {
    return this.#sql.chatByNumber.get(applicationId, number) as Chat | undefined;
  }

  async listChats(applicationId: number, page: NumberPage): Promise<Page<Chat, NumberPage>> {
    const { from, to, descending } = numberRange(page);
    if (from > to) return { items: [] };
    const statement = descending ? this.#sql.chatsDescending : this.#sql.chatsAscending;
    return numberPage(chatsFrom(statement.all(applicationId, from, to, page.limit + 1)), page);
  }

  async findMessage(chat: Chat, number: number): Promise<Message | undefined> {
    const row = this.#sql.messageByNumber.get(chat.id, number) as Message | undefined;
    if (row) row.chatNumber = chat.number;
    return row;
  }

  async listMessages(chat: Chat, page: NumberPage): Promise<Page<Message, NumberPage>> {
    return this.#pages.page({ chatId: chat.id, chatNumber: chat.number, page });
  }

  /**
   * On the reader threads when they run (a list page's SQL and serialisation were about a third of the
   * HTTP thread's time in the list benchmark), on this connection otherwise.
   */
  listMessagesRendered(chat: Chat, page: NumberPage): Promise<RenderedPage<NumberPage>> {
    const query = { chatId: chat.id, chatNumber: chat.number, page };
    return this.#pageReader
      ? this.#pageReader.renderMessages(query)
      : Promise.resolve(this.#pages.rendered(query));
  }

  /** Reads list pages on `reader` from now on (the search's reader threads, started after the store). */
  readPagesOn(reader: MessagePageReader): void {
    this.#pageReader = reader;
  }

  async listEdits(chat: Chat, afterSeq: number, limit: number): Promise<Message[]> {
    const rows = this.#sql.edits.all(chat.id, afterSeq, limit) as unknown as Message[];
    for (const row of rows) row.chatNumber = chat.number;
    return rows;
  }

  async lastEditSeq(chat: Chat): Promise<number> {
    return (this.#sql.lastEditSeq.get(chat.id) as { seq: number } | undefined)?.seq ?? 0;
  }

  editMessage(chat: Chat, number: number, body: string, at: string): Promise<Message | undefined> {
    return this.#writes.call('editMessage', chat.id, chat.number, number, body, at);
  }

  async persistBatch(commands: readonly WriteCommand[]): Promise<BatchOutcome> {
    return { refused: await this.#writes.call('persistBatch', commands) };
  }

  async maxChatNumber(applicationId: number): Promise<number> {
    return (this.#sql.maxChatNumber.get(applicationId) as { n: number }).n;
  }

  async maxMessageNumber(applicationId: number, chatNumber: number): Promise<number> {
    return (this.#sql.maxMessageNumber.get(applicationId, chatNumber) as { n: number }).n;
  }

  async findIdempotency(
    scope: string,
    key: string,
    notBefore: string,
  ): Promise<IdempotencyRecord | undefined> {
    return this.#sql.idempotency.get(scope, key, notBefore) as IdempotencyRecord | undefined;
  }

  purgeIdempotency(before: string): Promise<number> {
    return this.#writes.call('purgeIdempotency', before);
  }

  async ping(): Promise<void> {
    this.#sql.ping.get();
    await this.#writes.ping();
  }

  async close(): Promise<void> {
    await this.#writes.close();
    if (this.#db.isOpen) this.#db.close();
  }
}

function prepare(db: DatabaseSync) {
  const q = (sql: string): StatementSync => db.prepare(sql);
  /** Rows as arrays, for the list pages (see columns.ts). */
  const arrays = (sql: string): StatementSync => {
    const statement = db.prepare(sql);
    statement.setReturnArrays(true);
    return statement;
  };
  return {
    ping: q('SELECT 1'),
    lastLogged: q(LAST_LOGGED),
    applicationByToken: q(`SELECT ${APPLICATION} FROM applications WHERE token = ?`),
    applicationsFirst: q(`SELECT ${APPLICATION} FROM applications ORDER BY created_at, token LIMIT ?`),
    applicationsAfter: q(
      `SELECT ${APPLICATION} FROM applications WHERE (created_at, token) > (?, ?) ORDER BY created_at, token LIMIT ?`,
    ),
    chatByNumber: q(`SELECT ${CHAT} FROM chats WHERE application_id = ? AND number = ?`),
    chatsAscending: arrays(
      `SELECT ${CHAT} FROM chats WHERE application_id = ? AND number BETWEEN ? AND ? ORDER BY number LIMIT ?`,
    ),
    chatsDescending: arrays(
      `SELECT ${CHAT} FROM chats WHERE application_id = ? AND number BETWEEN ? AND ? ORDER BY number DESC LIMIT ?`,
    ),
    messageByNumber: q(`SELECT ${MESSAGE} FROM messages WHERE id = ((?1 << 32) | ?2)`),
    edits: q(
      `SELECT ${MESSAGE}, edit_seq AS editSeq FROM messages WHERE chat_id = ? AND edit_seq > ? ORDER BY edit_seq LIMIT ?`,
    ),
    lastEditSeq: q(LAST_EDIT_SEQ),
    idempotency: q(
      'SELECT scope, key, fingerprint, response FROM idempotency_keys WHERE scope = ? AND key = ? AND created_at >= ?',
    ),
    maxChatNumber: q('SELECT coalesce(max(number), 0) AS n FROM chats WHERE application_id = ?'),
    maxMessageNumber: q(
      `SELECT coalesce((SELECT max(m.id) & 4294967295 FROM messages m
         WHERE m.id BETWEEN ((c.id << 32) | 1) AND ((c.id << 32) | 4294967295)), 0) AS n
       FROM (SELECT coalesce((SELECT id FROM chats WHERE application_id = ? AND number = ?), 0) AS id) AS c`,
    ),
  };
}

/**
 * Opens the embedded store for a server: migrates the database, reads on this thread, writes on a
 * dedicated thread. `:memory:` cannot be shared between threads, so it writes in-line.
 */
export function openSqliteStore(
  options: SqliteOptions,
  log: Logger,
): { store: SqliteStore; db: DatabaseSync } {
  const db = openDatabase(options);
  if (options.dataDir === ':memory:') return { store: new SqliteStore(db), db };
  return { store: new SqliteStore(db, new ThreadWriteChannel(options, log)), db };
}
