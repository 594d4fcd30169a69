import { LRUCache } from 'lru-cache';
import type { ApplicationCursor, BatchOutcome, Store } from '../../domain/ports.ts';
import type {
  Application,
  Chat,
  IdempotencyRecord,
  Message,
  NumberPage,
  Page,
  WriteCommand,
} from '../../domain/types.ts';
import { type NodeRedisOptions, openOnNodeRedis } from '../../redis/client.ts';
import { ViewCache, type ViewCacheOptions } from './cache.ts';
import type { CacheRedis } from './scripts.ts';

export interface CachedStoreOptions extends ViewCacheOptions {
  /** Prepended to every key; without braces (they would move the Cluster hash tag). */
  prefix: string;
}

/**
 * The Store port with a Redis read cache in front of the reads the API makes on every request
 * (application, chat and message views and pages), and invalidation behind every write that changes them.
 *
 * A decorator of the Store rather than a cache inside the services: every write goes through a Store, so
 * whichever process writes (the worker's persistBatch, the API's edit and rename) invalidates in the
 * same place, after the inner store committed, and the key layout is known to this file only.
 *
 * Keys: `<prefix>{a:<app>}` holds the application's views (the application, its chats one by one and its
 * chat pages); `<prefix>{a:<app>}:c:<chat>` a chat's messages and message pages. A message create changes
 * its chat's messages_count, so it invalidates both. The hash tag keeps an application's keys in one
 * Cluster slot.
 *
 * Not cached: the application list (an admin endpoint; creating an application would have to invalidate
 * every page), the sequencer's maxima and idempotency records (they must be read fresh).
 */
export class CachedStore implements Store {
  readonly name: string;
  readonly #inner: Store;
  readonly #cache: ViewCache;
  readonly #prefix: string;
  /** token → id. Tokens never change and applications are never deleted: entries never go stale. */
  readonly #ids = new LRUCache<string, number>({ max: 100_000 });
  #closing: Promise<void> | undefined;

  constructor(inner: Store, cache: ViewCache, prefix: string) {
    this.name = `${inner.name} + redis cache`;
    this.#inner = inner;
    this.#cache = cache;
    this.#prefix = prefix;
  }

  createApplication(input: { token: string; name: string; at: string }): Promise<Application> {
    return this.#inner.createApplication(input);
  }

  async findApplication(token: string): Promise<Application | undefined> {
    const id = this.#ids.get(token);
    // The views are keyed by id: the first lookup of a token in this process asks the store.
    if (id === undefined) {
      const app = await this.#inner.findApplication(token);
      if (app) this.#ids.set(token, app.id);
      return app;
    }
    return this.#cache.read('application', this.#application(id), 'app', () =>
      this.#inner.findApplication(token),
    );
  }

  async renameApplication(id: number, name: string, at: string): Promise<Application | undefined> {
    const app = await this.#inner.renameApplication(id, name, at);
    // Before answering, or not at all: the client that renamed reads its rename back.
    if (app) await this.#cache.invalidate([this.#application(id)], { required: true });
    return app;
  }

  listApplications(page: {
    limit: number;
    after?: ApplicationCursor;
  }): Promise<Page<Application, ApplicationCursor>> {
    return this.#inner.listApplications(page);
  }

  findChat(applicationId: number, number: number): Promise<Chat | undefined> {
    return this.#cache.read('chat', this.#application(applicationId), `chat:${number}`, () =>
      this.#inner.findChat(applicationId, number),
    );
  }

  async listChats(applicationId: number, page: NumberPage): Promise<Page<Chat, NumberPage>> {
    const found = await this.#cache.read(
      'chats',
      this.#application(applicationId),
      `chats:${pageKey(page)}`,
      () => this.#inner.listChats(applicationId, page),
    );
    return found ?? { items: [] };
  }

  findMessage(chat: Chat, number: number): Promise<Message | undefined> {
    return this.#cache.read('message', this.#chat(chat.applicationId, chat.number), `message:${number}`, () =>
      this.#inner.findMessage(chat, number),
    );
  }

  async listMessages(chat: Chat, page: NumberPage): Promise<Page<Message, NumberPage>> {
    const found = await this.#cache.read(
      'messages',
      this.#chat(chat.applicationId, chat.number),
      `messages:${pageKey(page)}`,
      () => this.#inner.listMessages(chat, page),
    );
    return found ?? { items: [] };
  }

  async editMessage(chat: Chat, number: number, body: string, at: string): Promise<Message | undefined> {
    const message = await this.#inner.editMessage(chat, number, body, at);
    // Before answering, or not at all: the client that edited reads its edit back.
    if (message)
      await this.#cache.invalidate([this.#chat(chat.applicationId, chat.number)], { required: true });
    return message;
  }

  // Read once per stream (re)start, and must be current: not cached.
  listEdits(chat: Chat, afterSeq: number, limit: number): Promise<Message[]> {
    return this.#inner.listEdits(chat, afterSeq, limit);
  }

  lastEditSeq(chat: Chat): Promise<number> {
    return this.#inner.lastEditSeq(chat);
  }

  async persistBatch(commands: readonly WriteCommand[]): Promise<BatchOutcome> {
    const outcome = await this.#inner.persistBatch(commands);
    // Refused commands included: invalidating one more view costs nothing.
    await this.#cache.invalidate(
      commands.flatMap((command) =>
        command.kind === 'chat.create'
          ? [this.#application(command.applicationId)]
          : [this.#application(command.applicationId), this.#chat(command.applicationId, command.chatNumber)],
      ),
    );
    return outcome;
  }

  maxChatNumber(applicationId: number): Promise<number> {
    return this.#inner.maxChatNumber(applicationId);
  }

  maxMessageNumber(applicationId: number, chatNumber: number): Promise<number> {
    return this.#inner.maxMessageNumber(applicationId, chatNumber);
  }

  findIdempotency(scope: string, key: string, notBefore: string): Promise<IdempotencyRecord | undefined> {
    return this.#inner.findIdempotency(scope, key, notBefore);
  }

  purgeIdempotency(before: string): Promise<number> {
    return this.#inner.purgeIdempotency(before);
  }

  /** The store's health only: the cache being down does not make reads fail, so it is not a dependency. */
  ping(): Promise<void> {
    return this.#inner.ping();
  }

  /** The cache's own Redis connection (a test waits on it to see Redis back); not part of `ping`. */
  pingCache(): Promise<void> {
    return this.#cache.ping();
  }

  close(): Promise<void> {
    this.#closing ??= this.#cache.close().finally(() => this.#inner.close());
    return this.#closing;
  }

  #application(applicationId: number): string {
    return `${this.#prefix}{a:${applicationId}}`;
  }

  #chat(applicationId: number, chatNumber: number): string {
    return `${this.#prefix}{a:${applicationId}}:c:${chatNumber}`;
  }
}

function pageKey(page: NumberPage): string {
  return `${page.limit}:${page.after ?? ''}:${page.before ?? ''}`;
}

export interface OpenCachedStoreOptions extends CachedStoreOptions, NodeRedisOptions {}

/** Connects to Redis, loads the cache's scripts and wraps `inner`. */
export async function openCachedStore(
  url: string,
  inner: Store,
  options: OpenCachedStoreOptions,
): Promise<CachedStore> {
  return openOnNodeRedis(url, options, async (redis: CacheRedis) => {
    const cache = new ViewCache(redis, options);
    await cache.load();
    return new CachedStore(inner, cache, options.prefix);
  });
}
