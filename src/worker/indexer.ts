import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import type { IndexQueue, Store } from '../domain/ports.ts';
import type { Chat, IndexEvent } from '../domain/types.ts';
import type { Metrics } from '../metrics.ts';

/** What the indexer needs of a search engine kept outside the store (OpenSearch, Elasticsearch). */
export interface SearchWriter {
  readonly name: string;
  ensureIndex(): Promise<void>;
  indexMessages(
    docs: { chat: Chat; number: number; body: string; createdAt: string; updatedAt: string }[],
  ): Promise<{ failures: { retryable: boolean; reason?: string }[] }>;
}

export interface IndexerDeps {
  events: IndexQueue;
  store: Store;
  search: SearchWriter;
  log: Logger;
  metrics: Metrics;
  maxBatch: number;
}

/**
 * The indexer: takes index events off their queue and bulk-indexes each batch. An event names its chat by
 * (application, number); the store resolves it once (chats are never deleted or renumbered). A batch with
 * any failed document is handed back to the queue whole and indexed again later: indexing is an
 * idempotent overwrite ordered by updatedAt, so the documents that did succeed are harmless to repeat.
 * That is also how the index catches up after the engine was down: events wait in the queue.
 */
export async function startIndexer(deps: IndexerDeps): Promise<void> {
  const { events, store, search, log, metrics, maxBatch } = deps;
  const chats = new LRUCache<string, Chat>({ max: 100_000 });
  const chatOf = async (event: IndexEvent): Promise<Chat | undefined> => {
    const key = `${event.applicationId}:${event.chatNumber}`;
    let chat = chats.get(key);
    if (!chat) {
      chat = await store.findChat(event.applicationId, event.chatNumber);
      if (chat) chats.set(key, chat);
    }
    return chat;
  };
  await search.ensureIndex();
  events.consume(
    async (batch) => {
      const docs = [];
      for (const event of batch) {
        const chat = await chatOf(event);
        // The writer announces only committed messages, so the chat exists; if not, retrying will tell.
        if (!chat)
          throw new Error(`index event for an unknown chat ${event.applicationId}/${event.chatNumber}`);
        const { number, body, createdAt, updatedAt } = event;
        docs.push({ chat, number, body, createdAt, updatedAt });
      }
      const started = Date.now();
      const { failures } = await search.indexMessages(docs);
      if (failures.length > 0) {
        throw new Error(
          `${failures.length} of ${docs.length} documents not indexed: ${failures[0]?.reason ?? '?'}`,
        );
      }
      const now = Date.now();
      metrics.indexBulkDuration.observe((now - started) / 1000);
      metrics.indexBatchSize.observe(docs.length);
      for (const doc of docs) metrics.indexLag.observe((now - Date.parse(doc.updatedAt)) / 1000);
    },
    { maxBatch },
  );
  log.info({ events: events.name, search: search.name, maxBatch }, 'indexer started');
}
