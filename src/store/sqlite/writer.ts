import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Application, IdempotencyRecord, Message, WriteCommand } from '../../domain/types.ts';
import { foldCase } from '../../search/fold.ts';
import { APPLICATION, LAST_EDIT_SEQ, MESSAGE } from './columns.ts';
import { transaction } from './database.ts';

/**
 * Every write the embedded store makes, on one connection. Synchronous, as node:sqlite is; the store
 * runs it either inline (tests, `:memory:`) or on its own thread (`write-thread.ts`) so that commits and
 * their fsync never stall the thread that serves HTTP.
 */
export class SqliteWriter {
  readonly #db: DatabaseSync;
  readonly #sql: ReturnType<typeof prepare>;
  /** (application id, chat number) → chat id. Chats are never deleted, so it never goes stale. */
  readonly #chatIds = new Map<string, number>();

  constructor(db: DatabaseSync) {
    this.#db = db;
    this.#sql = prepare(db);
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
    return transaction(this.#db, () => {
      // Numbered after the chat's last edit, under the one writer's lock; a missing message writes nothing.
      const seq = (this.#sql.lastEditSeq.get(chatId) as { seq: number }).seq + 1;
      const row = this.#sql.editMessage.get(body, at, seq, chatId, number) as Message | undefined;
      if (!row) return undefined;
      this.#sql.unindexMessage.run(chatId, number);
      this.#sql.indexMessage.run(chatId, number, foldCase(body));
      row.chatNumber = chatNumber;
      return row;
    });
  }

  persistBatch(commands: readonly WriteCommand[]): void {
    // What this batch really stored, per parent: replays store nothing and add nothing.
    const newChats = new Map<number, number>();
    const newMessages = new Map<number, number>();
    const add = (counts: Map<number, number>, id: number) => counts.set(id, (counts.get(id) ?? 0) + 1);
    try {
      transaction(this.#db, () => {
        for (const command of commands) {
          if (command.kind === 'chat.create') {
            this.#storeChat(command.applicationId, command.number, command.at, newChats);
          } else {
            const chatId =
              this.#chatIds.get(`${command.applicationId}:${command.chatNumber}`) ??
              this.#storeChat(command.applicationId, command.chatNumber, command.at, newChats);
            const { body, number, at } = command;
            if (this.#sql.insertMessage.run(chatId, number, body, at, at).changes === 1) {
              this.#sql.indexMessage.run(chatId, number, foldCase(body));
              add(newMessages, chatId);
            }
          }
          if (command.idempotency) this.#storeIdempotency(command.idempotency, command.at);
        }
        for (const [id, added] of newChats) this.#sql.addChats.run(added, id);
        for (const [id, added] of newMessages) this.#sql.addMessages.run(added, id);
      });
    } catch (error) {
      // The rolled-back batch may have cached ids of chats that were never stored.
      this.#chatIds.clear();
      throw error;
    }
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
      this.#sql.backdateChat.run(at, at, id);
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
    editMessage: q(
      `UPDATE messages SET body = ?1, updated_at = ?2, edit_seq = ?3 WHERE id = ((?4 << 32) | ?5)
       RETURNING ${MESSAGE}, edit_seq AS editSeq`,
    ),
    lastEditSeq: q(LAST_EDIT_SEQ),
    chatId: q('SELECT id FROM chats WHERE application_id = ? AND number = ?'),
    insertChat: q(
      'INSERT INTO chats (application_id, number, created_at, updated_at) VALUES (?, ?, ?, ?) RETURNING id',
    ),
    backdateChat: q('UPDATE chats SET created_at = ?1, updated_at = ?2 WHERE id = ?3 AND created_at > ?1'),
    insertMessage: q(
      `INSERT INTO messages (id, chat_id, number, body, created_at, updated_at)
       VALUES ((?1 << 32) | ?2, ?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING`,
    ),
    indexMessage: q('INSERT INTO messages_fts (rowid, body) VALUES ((?1 << 32) | ?2, ?3)'),
    unindexMessage: q('DELETE FROM messages_fts WHERE rowid = ((?1 << 32) | ?2)'),
    insertIdempotency: q(
      `INSERT INTO idempotency_keys (scope, key, fingerprint, response, created_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT DO NOTHING`,
    ),
    purgeIdempotency: q('DELETE FROM idempotency_keys WHERE created_at < ?'),
    addChats: q('UPDATE applications SET chats_count = chats_count + ? WHERE id = ?'),
    addMessages: q('UPDATE chats SET messages_count = messages_count + ? WHERE id = ?'),
  };
}
