import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { numberPage, numberRange } from '../../domain/paging.ts';
import type { ApplicationCursor, Store } from '../../domain/ports.ts';
import type {
  Application,
  Chat,
  IdempotencyRecord,
  Message,
  NumberPage,
  Page,
  TouchedParents,
  WriteCommand,
} from '../../domain/types.ts';
import { transaction } from './database.ts';

const APPLICATION = `id, token, name, chats_count AS chatsCount, created_at AS createdAt, updated_at AS updatedAt`;
const CHAT = `id, application_id AS applicationId, number, messages_count AS messagesCount,
  created_at AS createdAt, updated_at AS updatedAt`;
const MESSAGE = `number, body, created_at AS createdAt, updated_at AS updatedAt`;
// A chat's messages occupy rowids (chat_id << 32) | 1 .. (chat_id << 32) | 4294967295.
const IN_CHAT_RANGE = `id BETWEEN ((?1 << 32) | ?2) AND ((?1 << 32) | ?3)`;

/**
 * The embedded primary store on node:sqlite. node:sqlite is synchronous: every method runs to completion
 * before it returns, so transactions are short and batches bounded (the writer's maxBatch).
 */
export class SqliteStore implements Store {
  readonly name = 'sqlite';
  readonly #db: DatabaseSync;
  readonly #sql: ReturnType<typeof prepare>;
  /** (application id, chat number) → chat id, for the writer. Chats are never deleted, so it never goes stale. */
  readonly #chatIds = new Map<string, number>();

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#sql = prepare(db);
  }

  async createApplication(input: { token: string; name: string; at: string }): Promise<Application> {
    return this.#sql.insertApplication.get(
      input.token,
      input.name,
      input.at,
      input.at,
    ) as unknown as Application;
  }

  async findApplication(token: string): Promise<Application | undefined> {
    return this.#sql.applicationByToken.get(token) as Application | undefined;
  }

  async renameApplication(id: number, name: string, at: string): Promise<Application | undefined> {
    return this.#sql.renameApplication.get(name, at, id) as Application | undefined;
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
    const statement = descending ? this.#sql.chatsDescending : this.#sql.chatsAscending;
    return numberPage(statement.all(applicationId, from, to, page.limit + 1) as unknown as Chat[], page);
  }

  async findMessage(chat: Chat, number: number): Promise<Message | undefined> {
    const row = this.#sql.messageByNumber.get(chat.id, number) as Message | undefined;
    if (row) row.chatNumber = chat.number;
    return row;
  }

  async listMessages(chat: Chat, page: NumberPage): Promise<Page<Message, NumberPage>> {
    const { from, to, descending } = numberRange(page);
    const statement = descending ? this.#sql.messagesDescending : this.#sql.messagesAscending;
    const rows = statement.all(chat.id, from, to, page.limit + 1) as unknown as Message[];
    for (const row of rows) row.chatNumber = chat.number;
    return numberPage(rows, page);
  }

  async editMessage(chat: Chat, number: number, body: string, at: string): Promise<Message | undefined> {
    const row = this.#sql.editMessage.get(body, at, chat.id, number) as Message | undefined;
    if (row) row.chatNumber = chat.number;
    return row;
  }

  async persistBatch(commands: readonly WriteCommand[]): Promise<TouchedParents> {
    const touched: TouchedParents = { applicationIds: new Set(), chatIds: new Set() };
    transaction(this.#db, () => {
      for (const command of commands) {
        if (command.kind === 'chat.create') {
          this.#ensureChat(command.applicationId, command.number, command.at);
          touched.applicationIds.add(command.applicationId);
        } else {
          const chatId = this.#ensureChat(command.applicationId, command.chatNumber, command.at);
          this.#sql.insertMessage.run(chatId, command.number, command.body, command.at, command.at);
          touched.chatIds.add(chatId);
        }
        if (command.idempotency) this.#storeIdempotency(command.idempotency, command.at);
      }
    });
    return touched;
  }

  /**
   * Inserts the chat row unless it exists and returns its id. A message may reach the writer before its
   * chat (the distributed queue does not order across parents); the chat then takes the earliest time seen.
   */
  #ensureChat(applicationId: number, number: number, at: string): number {
    const key = `${applicationId}:${number}`;
    const cached = this.#chatIds.get(key);
    if (cached !== undefined) return cached;
    // RETURNING yields no row when the conflict clause's WHERE declines the update: then look it up.
    const row = (this.#sql.upsertChat.get(applicationId, number, at, at) ??
      this.#sql.chatId.get(applicationId, number)) as { id: number };
    this.#chatIds.set(key, row.id);
    return row.id;
  }

  #storeIdempotency(record: IdempotencyRecord, at: string): void {
    this.#sql.insertIdempotency.run(record.scope, record.key, record.fingerprint, record.response, at);
  }

  async refreshCounts(parents: TouchedParents): Promise<void> {
    if (parents.applicationIds.size === 0 && parents.chatIds.size === 0) return;
    transaction(this.#db, () => {
      for (const id of parents.applicationIds) this.#sql.refreshChatsCount.run(id);
      for (const id of parents.chatIds) this.#sql.refreshMessagesCount.run(id);
    });
  }

  async repairAllCounts(): Promise<number> {
    return transaction(this.#db, () => {
      const apps = this.#sql.repairChatsCounts.run().changes;
      const chats = this.#sql.repairMessagesCounts.run().changes;
      return Number(apps) + Number(chats);
    });
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

  async purgeIdempotency(before: string): Promise<number> {
    return Number(this.#sql.purgeIdempotency.run(before).changes);
  }

  async ping(): Promise<void> {
    this.#sql.ping.get();
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}

function prepare(db: DatabaseSync) {
  const q = (sql: string): StatementSync => db.prepare(sql);
  return {
    ping: q('SELECT 1'),
    insertApplication: q(
      `INSERT INTO applications (token, name, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING ${APPLICATION}`,
    ),
    applicationByToken: q(`SELECT ${APPLICATION} FROM applications WHERE token = ?`),
    renameApplication: q(
      `UPDATE applications SET name = ?, updated_at = ? WHERE id = ? RETURNING ${APPLICATION}`,
    ),
    applicationsFirst: q(`SELECT ${APPLICATION} FROM applications ORDER BY created_at, token LIMIT ?`),
    applicationsAfter: q(
      `SELECT ${APPLICATION} FROM applications WHERE (created_at, token) > (?, ?) ORDER BY created_at, token LIMIT ?`,
    ),
    chatByNumber: q(`SELECT ${CHAT} FROM chats WHERE application_id = ? AND number = ?`),
    chatId: q('SELECT id FROM chats WHERE application_id = ? AND number = ?'),
    chatsAscending: q(
      `SELECT ${CHAT} FROM chats WHERE application_id = ? AND number BETWEEN ? AND ? ORDER BY number LIMIT ?`,
    ),
    chatsDescending: q(
      `SELECT ${CHAT} FROM chats WHERE application_id = ? AND number BETWEEN ? AND ? ORDER BY number DESC LIMIT ?`,
    ),
    messageByNumber: q(`SELECT ${MESSAGE} FROM messages WHERE id = ((?1 << 32) | ?2)`),
    messagesAscending: q(`SELECT ${MESSAGE} FROM messages WHERE ${IN_CHAT_RANGE} ORDER BY id LIMIT ?4`),
    messagesDescending: q(`SELECT ${MESSAGE} FROM messages WHERE ${IN_CHAT_RANGE} ORDER BY id DESC LIMIT ?4`),
    editMessage: q(
      `UPDATE messages SET body = ?1, updated_at = ?2 WHERE id = ((?3 << 32) | ?4) RETURNING ${MESSAGE}`,
    ),
    upsertChat: q(
      `INSERT INTO chats (application_id, number, created_at, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (application_id, number) DO UPDATE SET created_at = excluded.created_at,
         updated_at = excluded.updated_at WHERE excluded.created_at < chats.created_at
       RETURNING id`,
    ),
    insertMessage: q(
      `INSERT INTO messages (id, chat_id, number, body, created_at, updated_at)
       VALUES ((?1 << 32) | ?2, ?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING`,
    ),
    insertIdempotency: q(
      `INSERT INTO idempotency_keys (scope, key, fingerprint, response, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    ),
    idempotency: q(
      'SELECT scope, key, fingerprint, response FROM idempotency_keys WHERE scope = ? AND key = ? AND created_at >= ?',
    ),
    purgeIdempotency: q('DELETE FROM idempotency_keys WHERE created_at < ?'),
    refreshChatsCount: q(
      'UPDATE applications SET chats_count = (SELECT count(*) FROM chats WHERE application_id = ?1) WHERE id = ?1',
    ),
    refreshMessagesCount: q(
      `UPDATE chats SET messages_count = (SELECT count(*) FROM messages
         WHERE id BETWEEN ((?1 << 32) | 1) AND ((?1 << 32) | 4294967295)) WHERE id = ?1`,
    ),
    repairChatsCounts: q(
      `UPDATE applications SET chats_count = c.n
       FROM (SELECT a.id, (SELECT count(*) FROM chats WHERE application_id = a.id) AS n FROM applications a) AS c
       WHERE applications.id = c.id AND applications.chats_count <> c.n`,
    ),
    repairMessagesCounts: q(
      `UPDATE chats SET messages_count = c.n
       FROM (SELECT ch.id, (SELECT count(*) FROM messages
               WHERE id BETWEEN ((ch.id << 32) | 1) AND ((ch.id << 32) | 4294967295)) AS n FROM chats ch) AS c
       WHERE chats.id = c.id AND chats.messages_count <> c.n`,
    ),
    maxChatNumber: q('SELECT coalesce(max(number), 0) AS n FROM chats WHERE application_id = ?'),
    maxMessageNumber: q(
      `SELECT coalesce((SELECT max(m.id) & 4294967295 FROM messages m
         WHERE m.id BETWEEN ((c.id << 32) | 1) AND ((c.id << 32) | 4294967295)), 0) AS n
       FROM (SELECT coalesce((SELECT id FROM chats WHERE application_id = ? AND number = ?), 0) AS id) AS c`,
    ),
  };
}
