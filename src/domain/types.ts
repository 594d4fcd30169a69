/**
 * Domain records as the core sees them. Internal ids (`id`, `applicationId`, `chatId`) never leave the
 * process boundary: the HTTP layer serialises through response schemas that do not name them.
 */

export interface Application {
  id: number;
  token: string;
  name: string;
  chatsCount: number;
  createdAt: string;
  updatedAt: string;
}

export interface Chat {
  id: number;
  applicationId: number;
  number: number;
  messagesCount: number;
  createdAt: string;
  updatedAt: string;
}

export interface Message {
  chatNumber: number;
  number: number;
  body: string;
  createdAt: string;
  updatedAt: string;
  /**
   * Set on what editMessage and listEdits return: the chat's edit sequence number of the message's latest
   * edit (edits of one chat are numbered 1, 2, 3… in commit order), so a live stream can resume its edits.
   */
  editSeq?: number;
}

/** An idempotent create's stored answer, persisted in the same transaction as the create itself. */
export interface IdempotencyRecord {
  scope: string;
  key: string;
  /** Hash of the request that used the key first; a different request under the same key is refused. */
  fingerprint: string;
  /** The JSON body of the original 201. */
  response: string;
}

export interface ChatCreate {
  kind: 'chat.create';
  applicationId: number;
  number: number;
  at: string;
  idempotency?: IdempotencyRecord;
}

export interface MessageCreate {
  kind: 'message.create';
  applicationId: number;
  chatNumber: number;
  number: number;
  body: string;
  at: string;
  idempotency?: IdempotencyRecord;
}

/** What travels through the write queue from the API to the writer. Plain JSON: it crosses processes. */
export type WriteCommand = ChatCreate | MessageCreate;

/**
 * A message's current text, for a search index kept outside the store (distributed mode): emitted by the
 * writer after a create committed and by the API after an edit. Indexing is an idempotent overwrite, and
 * `updatedAt` orders events, so replays and late arrivals are harmless.
 */
export interface MessageIndex {
  kind: 'message.index';
  applicationId: number;
  chatNumber: number;
  number: number;
  body: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * Several messages' index events in one queue message: the writer sends one per committed batch (in
 * pieces of bounded size), so the broker moves one message per batch rather than one per create.
 */
export interface MessageIndexBatch {
  kind: 'message.index.batch';
  events: MessageIndex[];
}

export type IndexEvent = MessageIndex | MessageIndexBatch;

/** One message as the indexer hands it to a search engine: its chat resolved, the current body. */
export interface IndexDoc {
  chat: Chat;
  number: number;
  body: string;
  createdAt: string;
  updatedAt: string;
}

/** Keyset page request over a parent's 1..n numbers. At most one of `after` / `before` is set. */
export interface NumberPage {
  limit: number;
  after?: number;
  before?: number;
}

export interface Page<T, C> {
  items: T[];
  /** Cursor of the following page in the direction of travel, when more remains. */
  next?: C;
}

/**
 * A message as live subscribers see it: `created` once its create is stored, `edited` once an edit is
 * stored. Plain JSON: in the distributed mode it crosses processes (the worker announces creates, the API
 * process that stored an edit announces it).
 */
export interface FeedEvent {
  kind: 'created' | 'edited';
  applicationId: number;
  message: Message;
}
