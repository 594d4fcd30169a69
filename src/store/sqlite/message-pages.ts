import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { numberPage, numberRange } from '../../domain/paging.ts';
import type { RenderedPage } from '../../domain/ports.ts';
import type { Message, NumberPage, Page } from '../../domain/types.ts';
import { renderedPage } from '../../domain/views.ts';
import { MESSAGE, messagesFrom } from './columns.ts';

// A chat's messages occupy rowids (chat_id << 32) | 1 .. (chat_id << 32) | 4294967295.
const IN_CHAT_RANGE = `id BETWEEN ((?1 << 32) | ?2) AND ((?1 << 32) | ?3)`;

/** A chat's list page, as the store reads it: the chat's id and the number the client knows it by. */
export interface MessagePageQuery {
  chatId: number;
  chatNumber: number;
  page: NumberPage;
}

/**
 * Keyset pages of one chat's messages on one connection: the HTTP thread's (SqliteStore) or a reader
 * thread's (search/sqlite/read-thread.ts), which also renders them.
 */
export class MessagePages {
  readonly #ascending: StatementSync;
  readonly #descending: StatementSync;

  constructor(db: DatabaseSync) {
    // Rows as arrays (see columns.ts).
    this.#ascending = db.prepare(
      `SELECT ${MESSAGE} FROM messages WHERE ${IN_CHAT_RANGE} ORDER BY id LIMIT ?4`,
    );
    this.#ascending.setReturnArrays(true);
    this.#descending = db.prepare(
      `SELECT ${MESSAGE} FROM messages WHERE ${IN_CHAT_RANGE} ORDER BY id DESC LIMIT ?4`,
    );
    this.#descending.setReturnArrays(true);
  }

  page({ chatId, chatNumber, page }: MessagePageQuery): Page<Message, NumberPage> {
    const { from, to, descending } = numberRange(page);
    if (from > to) return { items: [] };
    const statement = descending ? this.#descending : this.#ascending;
    return numberPage(messagesFrom(statement.all(chatId, from, to, page.limit + 1), chatNumber), page);
  }

  /**
   * The same page rendered as the API answers it (RenderedPage): on a reader thread, the serialisation
   * leaves the HTTP thread and one string travels to it instead of a clone of every row.
   */
  rendered(query: MessagePageQuery): RenderedPage<NumberPage> {
    return renderedPage(this.page(query));
  }
}

/** Where SqliteStore reads and renders list pages when it has one: the reader threads (search/sqlite/readers.ts). */
export interface MessagePageReader {
  renderMessages(query: MessagePageQuery): Promise<RenderedPage<NumberPage>>;
}
