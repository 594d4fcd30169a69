/**
 * The ports: what the core needs from the outside world. Each has an embedded adapter (node:sqlite or
 * in-process) and, for the distributed mode, a networked one; both pass the same conformance suite
 * (`src/<port>/conformance.ts`).
 */
import type {
  Application,
  Chat,
  ChatCreate,
  FeedEvent,
  IdempotencyRecord,
  IndexEvent,
  Message,
  MessageCreate,
  NumberPage,
  Page,
  WriteCommand,
} from './types.ts';

export interface ApplicationCursor {
  createdAt: string;
  token: string;
}

/** The primary store. Creates of chats and messages arrive only through `persistBatch`, from the writer. */
export interface Store {
  readonly name: string;
  createApplication(input: { token: string; name: string; at: string }): Promise<Application>;
  findApplication(token: string): Promise<Application | undefined>;
  renameApplication(id: number, name: string, at: string): Promise<Application | undefined>;
  listApplications(page: {
    limit: number;
    after?: ApplicationCursor;
  }): Promise<Page<Application, ApplicationCursor>>;

  findChat(applicationId: number, number: number): Promise<Chat | undefined>;
  listChats(applicationId: number, page: NumberPage): Promise<Page<Chat, NumberPage>>;

  findMessage(chat: Chat, number: number): Promise<Message | undefined>;
  listMessages(chat: Chat, page: NumberPage): Promise<Page<Message, NumberPage>>;
  /**
   * Optional: the page `listMessages` would answer, already rendered as the API's JSON (RenderedPage). The
   * embedded store reads and renders it on its reader threads, off the HTTP thread.
   */
  listMessagesRendered?(chat: Chat, page: NumberPage): Promise<RenderedPage<NumberPage>>;
  /** Stores an edit and gives it the chat's next edit sequence number (`editSeq` of the result). */
  editMessage(chat: Chat, number: number, body: string, at: string): Promise<Message | undefined>;
  /**
   * The chat's messages edited after edit `afterSeq`, each once at its latest edit, in edit order, at most
   * `limit`: what a live stream resuming after that edit has missed.
   */
  listEdits(chat: Chat, afterSeq: number, limit: number): Promise<Message[]>;
  /** The chat's last edit sequence number (0 when nothing was edited). */
  lastEditSeq(chat: Chat): Promise<number>;

  /**
   * Persists a batch in one transaction. Idempotent: a command already stored (same parent and number) is
   * skipped, so redelivery after a crash is harmless. A message whose chat row is not stored yet creates it.
   * The same transaction adds what it stored to chats_count and messages_count, so counts equal the rows
   * at every commit: they never lag what is persisted and cannot drift.
   * A command that can never be stored (malformed, see `unstorable` in domain/commands.ts, or naming an
   * application that does not exist) is refused alone: the rest of the batch is stored, and the result
   * names the refused by their index in `commands`. Any other failure rejects, and nothing is stored.
   */
  persistBatch(commands: readonly WriteCommand[]): Promise<BatchOutcome>;

  /** Highest stored chat number of an application (0 when none): the sequencer's seed. */
  maxChatNumber(applicationId: number): Promise<number>;
  /** Highest stored message number of a chat (0 when none). */
  maxMessageNumber(applicationId: number, chatNumber: number): Promise<number>;

  findIdempotency(scope: string, key: string, notBefore: string): Promise<IdempotencyRecord | undefined>;
  purgeIdempotency(before: string): Promise<number>;

  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Where a scan of every message resumes: after this message of this chat (internal id). */
export interface MessageScanCursor {
  chatId: number;
  number: number;
}

/** One message with its chat, as a full scan hands it out (for rebuilding a search index). */
export interface ScannedMessage {
  chat: Chat;
  number: number;
  body: string;
  createdAt: string;
  updatedAt: string;
}

/**
 * Every stored message, in (chat id, number) order, page by page: what `reindex` copies into a new search
 * index. Only the distributed store has it; the embedded index (search.db) is rebuilt from chat.db at start.
 */
export interface MessageScan {
  scanMessages(page: {
    limit: number;
    after?: MessageScanCursor;
    /** Only messages whose updatedAt is at or after this time (the rest are passed over). */
    since?: string;
  }): Promise<Page<ScannedMessage, MessageScanCursor>>;
}

/**
 * Hands out chat numbers per application and message numbers per chat: exactly 1..n, each once.
 * It also knows which chat numbers were handed out, so a message can be posted to a chat whose row the
 * writer has not stored yet, and a message to a chat number never handed out is refused.
 */
export interface Sequencer {
  readonly name: string;
  /**
   * The next chat number. `intent` is the create about to be published under that number (written with
   * number 0, see domain/commands.ts): a sequencer shared by several processes keeps it, in the same
   * atomic step as the number, until `settle` says its command reached the queue. A create whose process
   * died, or whose publish failed, in between is then still published by `overdue`'s caller, instead of
   * leaving its number unused for ever (a gap).
   */
  nextChatNumber(applicationId: number, intent?: ChatCreate): Promise<number>;
  nextMessageNumber(applicationId: number, chatNumber: number, intent?: MessageCreate): Promise<number>;
  /**
   * The create numbered with an intent is durable in the queue: the intent may go. Best effort and never
   * rejects: an intent that stays is published a second time by the reaper, which persisting makes a
   * no-op (the store skips a number it holds).
   */
  settle(command: WriteCommand): void;
  /**
   * Intents kept for at least `olderThanMs` and never settled, oldest first, at most `limit`, with their
   * numbers. The reaper (worker role) publishes them, then settles them.
   */
  overdue(olderThanMs: number, limit: number): Promise<WriteCommand[]>;
  chatExists(applicationId: number, chatNumber: number): Promise<boolean>;
  /** Whether this message number of the chat was handed out (it may not be stored yet). */
  messageExists(applicationId: number, chatNumber: number, number: number): Promise<boolean>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

export interface ConsumeOptions {
  /** Largest batch handed to the handler. */
  maxBatch: number;
}

/**
 * What a handler may report of a batch it handled: the items that can never be handled, by their position
 * in the batch, with why. The queue sets them aside at once (distributed: the dead-letter queue, an alarm
 * in the metrics; embedded: their `publish` rejects with QueueItemRefusedError) instead of retrying them;
 * every other item of the batch counts as handled.
 */
export interface BatchOutcome {
  refused: ReadonlyMap<number, string>;
}

export type BatchHandler<T> = (batch: T[]) => Promise<undefined | BatchOutcome>;

/**
 * A durable hand-off between roles: creates from the API to the writer (`WriteQueue`), index events from
 * the writer to the indexer (`IndexQueue`). `publish` resolves only once the item is durable (embedded:
 * handled by the consumer; distributed: confirmed by the broker). Delivery is at-least-once: a batch
 * whose handler throws is delivered again. A failing batch makes `ping` fail until a batch succeeds; an
 * item the handler refuses (see BatchOutcome) does not.
 */
export interface Queue<T> {
  readonly name: string;
  publish(item: T): Promise<void>;
  consume(handler: BatchHandler<T>, options: ConsumeOptions): void;
  /** Items accepted and not yet handled. */
  depth(): number;
  /** True while the queue accepts more work; false under backpressure or while closing. */
  accepting(): boolean;
  ping(): Promise<void>;
  /** Stops accepting, waits until everything accepted was handled, then releases resources. */
  close(): Promise<void>;
}

export type WriteQueue = Queue<WriteCommand>;
export type IndexQueue = Queue<IndexEvent>;

export interface SearchPage {
  limit: number;
  /** Only messages numbered below this (the next page of a newest-first listing). */
  before?: number;
}

/**
 * A page of messages already rendered as the API answers it: the JSON array of their MessageViews
 * (domain/views.ts), in order, with the cursor of the next page.
 */
export interface RenderedPage<C> {
  json: string;
  next?: C;
}

/**
 * Substring search over the current bodies of one chat's messages, newest first. A page may hold fewer
 * than `limit` results while `next` is set (an adapter may bound the work of one request); following
 * `next` until it is absent yields every match exactly once.
 */
export interface SearchIndex {
  readonly name: string;
  search(chat: Chat, query: string, page: SearchPage): Promise<Page<Message, SearchPage>>;
  /**
   * Optional: the page `search` would answer, already rendered as the API's JSON (RenderedPage). The
   * embedded search renders on its reader threads, off the HTTP thread, which only sends the bytes.
   */
  searchRendered?(chat: Chat, query: string, page: SearchPage): Promise<RenderedPage<SearchPage>>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** A reserved idempotency key: its holder runs the create, then releases it. */
export interface IdempotencyHold {
  /**
   * Ends the hold. `answer` is the record of a create that succeeded (its command is already durable and
   * carries the same record to the store); from now on the guard answers it, even before the writer has
   * stored it. Without `answer` (the create failed) the key is free again.
   */
  release(answer?: IdempotencyRecord): Promise<void>;
  /**
   * Ends the hold of a create whose outcome is unknown (CreateOutcomeUnknownError): it may be stored later,
   * with its record. A shared guard leaves the key held until its lease runs out, so a retry with the same
   * key waits, then finds the stored record rather than creating a second time. The in-process guard
   * frees the key: an in-process create whose hand-off failed is never stored.
   */
  abandon(): Promise<void>;
}

/** Serialises concurrent creates that carry the same idempotency key and finds earlier answers. */
export interface IdempotencyGuard {
  /**
   * Resolves to the earlier answer when the key was used before (or by a concurrent request that has
   * since finished); otherwise reserves the key for this caller until it releases the hold.
   */
  acquire(scope: string, key: string): Promise<IdempotencyRecord | IdempotencyHold>;
}

/** Receives one chat's feed events; `resync` says events may have been lost (a reconnection). */
export interface FeedListener {
  event(event: FeedEvent): void;
  resync(): void;
}

export interface FeedSubscription {
  unsubscribe(): Promise<void>;
}

/**
 * Live fan-out of stored messages, per chat, to whoever listens now: best effort, no history (missed
 * events are recovered from the store). Events published in one `publish` call reach a listener in that
 * order; nothing is promised across publishers.
 */
export interface MessageFeed {
  readonly name: string;
  publish(events: readonly FeedEvent[]): Promise<void>;
  /** Resolves once events published from now on reach `listener`. */
  subscribe(applicationId: number, chatNumber: number, listener: FeedListener): Promise<FeedSubscription>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Where a sequencer starts counting: the highest numbers already stored (the store answers). */
export type SequenceSeed = Pick<Store, 'maxChatNumber' | 'maxMessageNumber'>;

/** Where an idempotency guard finds the answer of a create once it is stored (the store answers). */
export type IdempotencyLookup = Pick<Store, 'findIdempotency'>;
