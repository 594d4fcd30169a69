import { setTimeout as sleep } from 'node:timers/promises';
import {
  createPool,
  type Pool,
  type PoolConnection,
  type ResultSetHeader,
  type RowDataPacket,
} from 'mysql2/promise';
import { unstorable } from '../../domain/commands.ts';
import { ValidationError } from '../../domain/errors.ts';
import { numberPage, numberRange } from '../../domain/paging.ts';
import type {
  ApplicationCursor,
  BatchOutcome,
  MessageScan,
  MessageScanCursor,
  ScannedMessage,
  Store,
} from '../../domain/ports.ts';
import { isCanonicalTime } from '../../domain/time.ts';
import type {
  Application,
  Chat,
  IdempotencyRecord,
  Message,
  NumberPage,
  Page,
  WriteCommand,
} from '../../domain/types.ts';
import { withTimeout } from '../../timeout.ts';
import { planBatch, UnknownApplicationError, writeBatch } from './batch.ts';
import { migrate } from './migrations.ts';
import {
  APPLICATION_COLUMNS,
  type ApplicationRow,
  CHAT_COLUMNS,
  type ChatRow,
  fromSqlTime,
  MESSAGE_COLUMNS,
  type MessageRow,
  type ScanRow,
  toApplication,
  toChat,
  toMessage,
  toSqlTime,
} from './rows.ts';
import { MysqlUnavailableError, translateMysqlError, translatingPool } from './unavailable.ts';

export interface MysqlStoreOptions {
  /** Connections in the pool (default 10). */
  connectionLimit?: number;
  /** Attempts of a transaction that lost a deadlock or timed out waiting for a lock (default 5). */
  maxAttempts?: number;
  /**
   * A read (a SELECT outside a transaction) without an answer after this long rejects with
   * MysqlUnavailableError, a 503 (default 5 000): a stalled server must not hold requests until the proxy
   * in front gives up on them, and on the process.
   */
  readTimeoutMs?: number;
  /**
   * The same for the API's writes (default 10 000): a statement outside a transaction that is not a SELECT,
   * and an edit's transaction, whose connection is then closed (the server rolls back what it has not
   * committed). The worker's batches are not timed: they wait for the server, and are retried if it fails.
   */
  writeTimeoutMs?: number;
}

// Every session gets the same behaviour whatever the server's defaults:
// - READ COMMITTED: persistBatch's locking protocol (batch.ts) relies on each statement seeing the latest
//   commits, and on the absence of gap locks, which at REPEATABLE READ make concurrent inserts deadlock.
// - A fixed sql_mode: strict, so an over-long or out-of-range value is an error rather than silently cut;
//   and without NO_BACKSLASH_ESCAPES or ANSI_QUOTES, which would change how query() escapes values.
// - UTC: DATETIME ignores it, but NOW() and friends in ad-hoc SQL then agree with the stored times.
const SESSION_SETUP = [
  'SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED',
  `SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION', time_zone = '+00:00'`,
];

// ER_LOCK_WAIT_TIMEOUT and ER_LOCK_DEADLOCK: the transaction lost a race, not a bug; running it again is
// safe because it is idempotent and the rollback undid all of it.
const RETRYABLE = new Set([1205, 1213]);

/**
 * Creates a pool whose sessions are set up as the store needs. Fixed-shape reads use execute() (prepared
 * once per connection); statements whose shape depends on the batch (multi-row inserts, IN lists) use
 * query() with client-side escaping, since preparing each shape would soon exhaust the server's
 * max_prepared_stmt_count. Both take values only as parameters.
 */
export function createMysqlPool(url: string, options: MysqlStoreOptions = {}): Pool {
  const pool = createPool({
    uri: url,
    connectionLimit: options.connectionLimit ?? 10,
    // The tables' own collation, so that no comparison mixes two.
    charset: 'UTF8MB4_BIN',
    // DATETIME values arrive as text, converted to ISO in rows.ts: never a JS Date in the local time zone.
    dateStrings: true,
    // Only applies to JS Dates passed as values, which the store never does; UTC should one slip in.
    timezone: 'Z',
    enableKeepAlive: true,
  });
  // Runs on each new connection before anything else it is asked to do (commands queue in order).
  pool.pool.on('connection', (connection) => {
    for (const statement of SESSION_SETUP)
      connection.query(statement, (error: Error | null) => {
        // A session without these settings must not serve anything: the next command then fails.
        if (error) connection.destroy();
      });
  });
  return pool;
}

/**
 * The primary store on MariaDB (tested on 10.11) or MySQL 8 (written for, not yet tested), over a mysql2
 * pool. Reads are single statements on any pooled connection; see batch.ts for the write path.
 */
export class MysqlStore implements Store, MessageScan {
  readonly name = 'mysql';
  readonly #pool: Pool;
  readonly #maxAttempts: number;
  readonly #writeTimeoutMs: number;
  #closing: Promise<void> | undefined;

  constructor(pool: Pool, options: MysqlStoreOptions = {}) {
    this.#writeTimeoutMs = options.writeTimeoutMs ?? 10_000;
    this.#pool = translatingPool(pool, {
      readMs: options.readTimeoutMs ?? 5_000,
      writeMs: this.#writeTimeoutMs,
    });
    this.#maxAttempts = options.maxAttempts ?? 5;
  }

  async createApplication(input: { token: string; name: string; at: string }): Promise<Application> {
    const at = toSqlTime(input.at);
    const [result] = await this.#pool.execute<ResultSetHeader>(
      'INSERT INTO applications (token, name, created_at, updated_at) VALUES (?, ?, ?, ?)',
      [input.token, input.name, at, at],
    );
    // Everything but the id is what was sent (toSqlTime accepts only the form it reads back as): no read-back.
    return {
      id: result.insertId,
      token: input.token,
      name: input.name,
      chatsCount: 0,
      createdAt: input.at,
      updatedAt: input.at,
    };
  }

  async findApplication(token: string): Promise<Application | undefined> {
    const [rows] = await this.#pool.execute<ApplicationRow[]>(
      `SELECT ${APPLICATION_COLUMNS} FROM applications WHERE token = ?`,
      [token],
    );
    // PAD SPACE collations compare 'abc' equal to 'abc  ': only the exact token counts.
    const row = rows.find((candidate) => candidate.token === token);
    return row && toApplication(row);
  }

  async renameApplication(id: number, name: string, at: string): Promise<Application | undefined> {
    await this.#pool.execute('UPDATE applications SET name = ?, updated_at = ? WHERE id = ?', [
      name,
      toSqlTime(at),
      id,
    ]);
    return this.#applicationById(id);
  }

  async listApplications(page: {
    limit: number;
    after?: ApplicationCursor;
  }): Promise<Page<Application, ApplicationCursor>> {
    let rows: ApplicationRow[];
    if (page.after) {
      // The cursor comes back from a client; the server only issues canonical times.
      if (!isCanonicalTime(page.after.createdAt))
        throw new ValidationError('cursor is not a cursor this server issued');
      const createdAt = toSqlTime(page.after.createdAt);
      // Spelled out rather than as a row comparison, which not every MySQL version turns into a range scan.
      [rows] = await this.#pool.execute<ApplicationRow[]>(
        `SELECT ${APPLICATION_COLUMNS} FROM applications
         WHERE created_at > ? OR (created_at = ? AND token > ?)
         ORDER BY created_at, token LIMIT ?`,
        [createdAt, createdAt, page.after.token, page.limit + 1],
      );
    } else {
      [rows] = await this.#pool.execute<ApplicationRow[]>(
        `SELECT ${APPLICATION_COLUMNS} FROM applications ORDER BY created_at, token LIMIT ?`,
        [page.limit + 1],
      );
    }
    const items = rows.map(toApplication);
    if (items.length <= page.limit) return { items };
    items.length = page.limit;
    const last = items.at(-1)!;
    return { items, next: { createdAt: last.createdAt, token: last.token } };
  }

  async findChat(applicationId: number, number: number): Promise<Chat | undefined> {
    const [rows] = await this.#pool.execute<ChatRow[]>(
      `SELECT ${CHAT_COLUMNS} FROM chats WHERE application_id = ? AND number = ?`,
      [applicationId, number],
    );
    return rows[0] && toChat(rows[0]);
  }

  async listChats(applicationId: number, page: NumberPage): Promise<Page<Chat, NumberPage>> {
    const { from, to, descending } = numberRange(page);
    if (from > to) return { items: [] };
    const [rows] = await this.#pool.execute<ChatRow[]>(
      `SELECT ${CHAT_COLUMNS} FROM chats WHERE application_id = ? AND number BETWEEN ? AND ?
       ORDER BY number ${descending ? 'DESC' : 'ASC'} LIMIT ?`,
      [applicationId, from, to, page.limit + 1],
    );
    return numberPage(rows.map(toChat), page);
  }

  async findMessage(chat: Chat, number: number): Promise<Message | undefined> {
    const [rows] = await this.#pool.execute<MessageRow[]>(
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? AND number = ?`,
      [chat.id, number],
    );
    return rows[0] && toMessage(rows[0], chat.number);
  }

  async listMessages(chat: Chat, page: NumberPage): Promise<Page<Message, NumberPage>> {
    const { from, to, descending } = numberRange(page);
    if (from > to) return { items: [] };
    const [rows] = await this.#pool.execute<MessageRow[]>(
      `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? AND number BETWEEN ? AND ?
       ORDER BY number ${descending ? 'DESC' : 'ASC'} LIMIT ?`,
      [chat.id, from, to, page.limit + 1],
    );
    return numberPage(
      rows.map((row) => toMessage(row, chat.number)),
      page,
    );
  }

  async editMessage(chat: Chat, number: number, body: string, at: string): Promise<Message | undefined> {
    // The chat row's lock (held to the commit; the writer's batches take it too) orders the chat's edits:
    // each reads the last number under it, so sequence numbers commit in their own order. updated_at
    // follows the same order, at least a millisecond past the one before: `at` was read in an API process
    // before the lock, and the search index keeps the document with the latest updated_at, so an edit that
    // commits last must carry the latest time.
    return this.#transaction(async (connection) => {
      await connection.execute('SELECT id FROM chats WHERE id = ? FOR UPDATE', [chat.id]);
      const seq = (await lastEditSeq(connection, chat.id)) + 1;
      const [result] = await connection.execute<ResultSetHeader>(
        `UPDATE messages SET body = ?, edit_seq = ?,
           updated_at = GREATEST(CAST(? AS DATETIME(3)), updated_at + INTERVAL 1000 MICROSECOND)
         WHERE chat_id = ? AND number = ?`,
        [body, seq, toSqlTime(at), chat.id, number],
      );
      if (result.affectedRows === 0) return undefined; // no such message: nothing was written
      const [rows] = await connection.execute<MessageRow[]>(
        `SELECT ${MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? AND number = ?`,
        [chat.id, number],
      );
      return { ...toMessage(rows[0]!, chat.number), editSeq: seq };
    }, this.#writeTimeoutMs);
  }

  async listEdits(chat: Chat, afterSeq: number, limit: number): Promise<Message[]> {
    const [rows] = await this.#pool.execute<(MessageRow & { edit_seq: number })[]>(
      `SELECT ${MESSAGE_COLUMNS}, edit_seq FROM messages WHERE chat_id = ? AND edit_seq > ?
       ORDER BY edit_seq LIMIT ?`,
      [chat.id, afterSeq, limit],
    );
    return rows.map((row) => ({ ...toMessage(row, chat.number), editSeq: Number(row.edit_seq) }));
  }

  lastEditSeq(chat: Chat): Promise<number> {
    return lastEditSeq(this.#pool, chat.id);
  }

  async persistBatch(commands: readonly WriteCommand[]): Promise<BatchOutcome> {
    const refused = unstorable(commands);
    for (;;) {
      const storable = commands.filter((_, i) => !refused.has(i));
      if (storable.length === 0) return { refused };
      const plan = planBatch(storable);
      try {
        await this.#transaction((connection) => writeBatch(connection, plan));
        return { refused };
      } catch (error) {
        // Rolled back. Again without the commands of those applications: each round refuses at least one.
        if (!(error instanceof UnknownApplicationError)) throw error;
        const unknown = new Set(error.applicationIds);
        for (const [i, command] of commands.entries())
          if (unknown.has(command.applicationId))
            refused.set(i, `application ${command.applicationId} does not exist`);
      }
    }
  }

  async scanMessages(page: {
    limit: number;
    after?: MessageScanCursor;
    since?: string;
  }): Promise<Page<ScannedMessage, MessageScanCursor>> {
    const { chatId, number } = page.after ?? { chatId: 0, number: 0 };
    // The primary key's order, spelled out (see listApplications); the filter on updated_at reads the same
    // range and sends only what matches, so a catch-up pass costs one scan and no index on updated_at
    // (which every insert and edit would pay for).
    const [rows] = await this.#pool.execute<ScanRow[]>(
      `SELECT m.chat_id AS id, c.application_id, c.number, c.messages_count, c.created_at, c.updated_at,
              m.number AS message_number, m.body, m.created_at AS message_created_at,
              m.updated_at AS message_updated_at
       FROM messages m JOIN chats c ON c.id = m.chat_id
       WHERE (m.chat_id > ? OR (m.chat_id = ? AND m.number > ?)) AND m.updated_at >= ?
       ORDER BY m.chat_id, m.number LIMIT ?`,
      [chatId, chatId, number, toSqlTime(page.since ?? '1000-01-01T00:00:00.000Z'), page.limit + 1],
    );
    const items = rows.slice(0, page.limit).map((row) => ({
      chat: toChat(row),
      number: Number(row.message_number),
      body: row.body,
      createdAt: fromSqlTime(row.message_created_at),
      updatedAt: fromSqlTime(row.message_updated_at),
    }));
    const last = items.at(-1);
    if (rows.length <= page.limit || !last) return { items };
    return { items, next: { chatId: last.chat.id, number: last.number } };
  }

  // The seeds of the distributed sequencer. They take shared locks on the parent rows, in the order of
  // persistBatch's locking protocol (application, then chat; see batch.ts), so they wait for every batch
  // that is storing children of that parent at that moment and read its numbers once committed. That
  // matters after Redis lost its counters: the sequencer re-seeds once the write queue is drained, and
  // a batch the worker has taken off the queue but not committed yet is not in the queue any more.
  async maxChatNumber(applicationId: number): Promise<number> {
    return this.#transaction(async (connection) => {
      await connection.execute('SELECT id FROM applications WHERE id = ? LOCK IN SHARE MODE', [
        applicationId,
      ]);
      const [rows] = await connection.execute<RowDataPacket[]>(
        'SELECT COALESCE(MAX(number), 0) AS n FROM chats WHERE application_id = ?',
        [applicationId],
      );
      return Number(rows[0]?.n ?? 0);
    });
  }

  async maxMessageNumber(applicationId: number, chatNumber: number): Promise<number> {
    return this.#transaction(async (connection) => {
      // The application too: a batch inserting the chat itself holds the application's lock, not the chat's.
      await connection.execute('SELECT id FROM applications WHERE id = ? LOCK IN SHARE MODE', [
        applicationId,
      ]);
      const [chats] = await connection.execute<RowDataPacket[]>(
        'SELECT id FROM chats WHERE application_id = ? AND number = ? LOCK IN SHARE MODE',
        [applicationId, chatNumber],
      );
      const chatId = chats[0]?.id;
      if (chatId === undefined) return 0;
      // MAX over the primary key (chat_id, number) is one dive to the end of the chat's range.
      const [rows] = await connection.execute<RowDataPacket[]>(
        'SELECT COALESCE(MAX(number), 0) AS n FROM messages WHERE chat_id = ?',
        [chatId],
      );
      return Number(rows[0]?.n ?? 0);
    });
  }

  async findIdempotency(
    scope: string,
    key: string,
    notBefore: string,
  ): Promise<IdempotencyRecord | undefined> {
    const [rows] = await this.#pool.execute<RowDataPacket[]>(
      `SELECT scope, \`key\`, fingerprint, response FROM idempotency_keys
       WHERE scope = ? AND \`key\` = ? AND created_at >= ?`,
      [scope, key, toSqlTime(notBefore)],
    );
    // Exact match only, as in findApplication (PAD SPACE).
    const row = rows.find((candidate) => candidate.scope === scope && candidate.key === key);
    return row && { scope: row.scope, key: row.key, fingerprint: row.fingerprint, response: row.response };
  }

  async purgeIdempotency(before: string): Promise<number> {
    const cutoff = toSqlTime(before);
    let purged = 0;
    // In slices, so that a large purge never holds many row locks (or a long undo log) at once.
    for (;;) {
      const [result] = await this.#retrying(() =>
        this.#pool.execute<ResultSetHeader>('DELETE FROM idempotency_keys WHERE created_at < ? LIMIT 5000', [
          cutoff,
        ]),
      );
      purged += result.affectedRows;
      if (result.affectedRows < 5000) return purged;
    }
  }

  async ping(): Promise<void> {
    await this.#pool.query('SELECT 1');
  }

  close(): Promise<void> {
    this.#closing ??= this.#pool.end();
    return this.#closing;
  }

  async #applicationById(id: number): Promise<Application | undefined> {
    const [rows] = await this.#pool.execute<ApplicationRow[]>(
      `SELECT ${APPLICATION_COLUMNS} FROM applications WHERE id = ?`,
      [id],
    );
    return rows[0] && toApplication(rows[0]);
  }

  /**
   * Runs `work` in one transaction on one connection, again from the start when it loses a lock race. With
   * `timeoutMs`, an attempt without an answer by then closes its connection and rejects with
   * MysqlUnavailableError (a commit already sent may still apply).
   */
  #transaction<T>(work: (connection: PoolConnection) => Promise<T>, timeoutMs?: number): Promise<T> {
    return this.#retrying(() => {
      let connection: PoolConnection | undefined;
      let timedOut = false;
      const attempt = async () => {
        connection = await this.#pool.getConnection();
        if (timedOut) {
          // Given after the attempt gave up (every connection was busy): not needed any more.
          connection.release();
          throw new Error('the transaction gave up before it began');
        }
        try {
          await connection.beginTransaction();
          const result = await work(connection);
          await connection.commit();
          connection.release();
          return result;
        } catch (error) {
          try {
            await connection.rollback();
            connection.release();
          } catch {
            // The connection is broken (or the rollback failed): never hand it back to the pool.
            connection.destroy();
          }
          throw error;
        }
      };
      if (timeoutMs === undefined) return attempt();
      return withTimeout(attempt(), timeoutMs, () => {
        timedOut = true;
        connection?.destroy();
        return new MysqlUnavailableError(
          new Error(`transaction without an answer within ${timeoutMs} ms`),
          true,
        );
      });
    });
  }

  async #retrying<T>(attempt: () => Promise<T>): Promise<T> {
    for (let round = 1; ; round++) {
      try {
        return await attempt();
      } catch (error) {
        const errno = (error as { errno?: unknown }).errno;
        if (round >= this.#maxAttempts || typeof errno !== 'number' || !RETRYABLE.has(errno))
          throw translateMysqlError(error);
        // Jittered backoff, so the batches that collided do not collide again in step.
        await sleep(Math.random() * 5 * 2 ** round);
      }
    }
  }
}

/** The chat's last edit sequence number: one dive to the end of its range of messages_by_edit. */
async function lastEditSeq(db: Pool | PoolConnection, chatId: number): Promise<number> {
  const [rows] = await db.execute<RowDataPacket[]>(
    'SELECT COALESCE(MAX(edit_seq), 0) AS seq FROM messages WHERE chat_id = ?',
    [chatId],
  );
  return Number(rows[0]?.seq ?? 0);
}

/** Opens the store: creates the pool and brings the schema up to date (see migrations.ts). */
export async function openMysqlStore(url: string, options: MysqlStoreOptions = {}): Promise<MysqlStore> {
  const pool = createMysqlPool(url, options);
  try {
    await migrate(pool);
  } catch (error) {
    await pool.end().catch(() => {});
    // mysql2's own message can be a bare `connect ECONNREFUSED 127.0.0.1:3306`: say what was being opened.
    throw new Error(`mysql: cannot open the store and migrate it: ${(error as Error).message}`, {
      cause: error,
    });
  }
  return new MysqlStore(pool, options);
}
