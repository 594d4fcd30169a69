import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { unstorable } from '../../domain/commands.ts';
import type { Application, IdempotencyRecord, Message, WriteCommand } from '../../domain/types.ts';
import { APPLICATION, LAST_EDIT_SEQ, LAST_LOGGED, MESSAGE } from './columns.ts';
import { transaction } from './database.ts';

/**
 * Every write the embedded store makes, on one connection. Synchronous, as node:sqlite is; the store
 * runs it either inline (tests, `:memory:`) or on its own thread (`write-thread.ts`) so that commits and
 * their fsync never stall the thread that serves HTTP. Every message stored or edited is appended to
 * search_log in the same transaction; the search indexer follows that log on its own connection.
 */
export class SqliteWriter {
  readonly #db: DatabaseSync;
  readonly #sql: ReturnType<typeof prepare>;
  /** (application id, chat number) → chat id. Chats are never deleted, so it never goes stale. */
  readonly #chatIds = new Map<string, number>();
  readonly #applicationIds = new Set<number>();
  #logged: number;

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#sql = prepare(db);
    this.#logged = (this.#sql.lastLogged.get() as { seq: number }).seq;
  }

  createApplication(token: string, name: string, at: string): Application {
    return this.#sql.insertApplication.get(token, name, at, at) as unknown as Application;
  }

  renameApplication(id: number, name: string, at: string): Application | undefined {
    return this.#sql.renameApplication.get(name, at, id) as Application | undefined;
  }

  editMessage(
    chatId: number,
    chatNumber: number,
    number: number,
    body: string,
    at: string,
  ): Message | undefined {
    const edited = transaction(this.#db, () => {
      // Numbered after the chat's last edit, under the one writer's lock; a missing message writes nothing.
      const seq = (this.#sql.lastEditSeq.get(chatId) as { seq: number }).seq + 1;
      const row = this.#sql.editMessage.get(body, at, seq, chatId, number) as Message | undefined;
      if (!row) return undefined;
      row.chatNumber = chatNumber;
      return { row, logged: this.#log(chatId, number, 1) };
    });
    if (!edited) return undefined;
    this.#logged = edited.logged;
    return edited.row;
  }

  /** See Store.persistBatch: `refused` names the commands that can never be stored, by index. */
  persistBatch(commands: readonly WriteCommand[]): Map<number, string> {
    const refused = unstorable(commands);
    for (const [i, command] of commands.entries()) {
      if (!refused.has(i) && !this.#applicationExists(command.applicationId))
        refused.set(i, `application ${command.applicationId} does not exist`);
    }
    // What this batch really stored, per parent: replays store nothing and add nothing.
    const newChats = new Map<number, number>();
    const newMessages = new Map<number, number>();
    const add = (counts: Map<number, number>, id: number) => counts.set(id, (counts.get(id) ?? 0) + 1);
    let logged = this.#logged;
    try {
      transaction(this.#db, () => {
        for (const [i, command] of commands.entries()) {
          if (refused.has(i)) continue;
          if (command.kind === 'chat.create') {
            this.#storeChat(command.applicationId, command.number, command.at, newChats);
          } else {
            const chatId =
              this.#chatIds.get(`${command.applicationId}:${command.chatNumber}`) ??
              this.#storeChat(command.applicationId, command.chatNumber, command.at, newChats);
            const { body, number, at } = command;
            if (this.#sql.insertMessage.run(chatId, number, body, at, at).changes === 1) {
              logged = this.#log(chatId, number, 0);
              add(newMessages, chatId);
            }
          }
          if (command.idempotency) this.#storeIdempotency(command.idempotency, command.at);
        }
        const now = new Date().toISOString();
        for (const [id, added] of newChats) this.#sql.addChats.run(added, now, id);
        for (const [id, added] of newMessages) this.#sql.addMessages.run(added, now, id);
      });
    } catch (error) {
      // The rolled-back batch may have cached ids of chats that were never stored.
      this.#chatIds.clear();
      throw error;
    }
    this.#logged = logged;
    return refused;
  }

  /** Whether the application is stored; applications are never deleted, so a yes is remembered. */
  #applicationExists(id: number): boolean {
    if (this.#applicationIds.has(id)) return true;
    if (!this.#sql.applicationExists.get(id)) return false;
    this.#applicationIds.add(id);
    return true;
  }

  /** The last search_log entry committed: the search index is complete once it holds that one. */
  get logged(): number {
    return this.#logged;
  }

  /**
   * Forgets the log entries before `upTo` (which the index holds). The entry at `upTo` stays: the log's
   * rowids are not AUTOINCREMENT, so an emptied log would number its next entry 1 again, behind the index.
   */
  trimSearchLog(upTo: number): void {
    this.#sql.trimSearchLog.run(upTo);
  }

  /** Appends a stored or edited message to the search log (see search/sqlite/indexer.ts); returns its seq. */
  #log(chatId: number, number: number, edit: 0 | 1): number {
    return Number(this.#sql.logMessage.run(chatId, number, edit).lastInsertRowid);
  }

  purgeIdempotency(before: string): number {
    return Number(this.#sql.purgeIdempotency.run(before).changes);
  }

  /**
   * Stores the chat unless it exists, and returns its id. A message may reach the writer before its chat
   * (the distributed queue does not order across parents): the chat is created then, and keeps the
   * earliest time either command carries.
   */
  #storeChat(applicationId: number, number: number, at: string, newChats: Map<number, number>): number {
    const existing = this.#sql.chatId.get(applicationId, number) as { id: number } | undefined;
    let id: number;
    if (existing) {
      id = existing.id;
      this.#sql.backdateChat.run(at, id);
    } else {
      id = (this.#sql.insertChat.get(applicationId, number, at, at) as { id: number }).id;
      newChats.set(applicationId, (newChats.get(applicationId) ?? 0) + 1);
    }
    this.#chatIds.set(`${applicationId}:${number}`, id);
    return id;
  }

  #storeIdempotency(record: IdempotencyRecord, at: string): void {
    this.#sql.insertIdempotency.run(record.scope, record.key, record.fingerprint, record.response, at);
  }
}

export type WriteMethod = {
  [K in keyof SqliteWriter]: SqliteWriter[K] extends (...args: never[]) => unknown ? K : never;
}[keyof SqliteWriter];

function prepare(db: DatabaseSync) {
  const q = (sql: string): StatementSync => db.prepare(sql);
  return {
    insertApplication: q(
      `INSERT INTO applications (token, name, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING ${APPLICATION}`,
    ),
    renameApplication: q(
      `UPDATE applications SET name = ?, updated_at = ? WHERE id = ? RETURNING ${APPLICATION}`,
    ),
    // updated_at at least a millisecond past the one before, whatever the clock did (see MysqlStore).
    editMessage: q(
      `UPDATE messages SET body = ?1, edit_seq = ?3,
         updated_at = max(?2, strftime('%Y-%m-%dT%H:%M:%fZ', updated_at, '+0.001 seconds'))
       WHERE id = ((?4 << 32) | ?5)
       RETURNING ${MESSAGE}, edit_seq AS editSeq`,
    ),
    lastEditSeq: q(LAST_EDIT_SEQ),
    applicationExists: q('SELECT 1 FROM applications WHERE id = ?'),
    chatId: q('SELECT id FROM chats WHERE application_id = ? AND number = ?'),
    insertChat: q(
      'INSERT INTO chats (application_id, number, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING id',
    ),
    // Creation only: updated_at already says when the chat last changed (its messages_count, see addMessages).
    backdateChat: q('UPDATE chats SET created_at = ?1 WHERE id = ?2 AND created_at > ?1'),
    insertMessage: q(
      `INSERT INTO messages (id, chat_id, number, body, created_at, updated_at)
       VALUES ((?1 << 32) | ?2, ?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING`,
    ),
    logMessage: q('INSERT INTO search_log (message_id, edit) VALUES ((?1 << 32) | ?2, ?3)'),
    lastLogged: q(LAST_LOGGED),
    trimSearchLog: q('DELETE FROM search_log WHERE seq < ?'),
    insertIdempotency: q(
      // A replay keeps the stored record; a create that reused the key after it expired (before the purge
      // removed it) replaces it, or its retries would not find it once out of the guard's memory.
      `INSERT INTO idempotency_keys (scope, key, fingerprint, response, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (scope, key) DO UPDATE SET fingerprint = excluded.fingerprint, response = excluded.response,
         created_at = excluded.created_at
       WHERE excluded.created_at > idempotency_keys.created_at`,
    ),
    purgeIdempotency: q('DELETE FROM idempotency_keys WHERE created_at < ?'),
    // A count is part of its parent's representation, so updated_at moves with it (never backwards: a
    // rename may carry a later time from another clock).
    addChats: q(
      'UPDATE applications SET chats_count = chats_count + ?1, updated_at = max(updated_at, ?2) WHERE id = ?3',
    ),
    addMessages: q(
      'UPDATE chats SET messages_count = messages_count + ?1, updated_at = max(updated_at, ?2) WHERE id = ?3',
    ),
  };
}
