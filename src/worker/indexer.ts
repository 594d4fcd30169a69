import { setTimeout as delay } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { UnavailableError } from '../domain/errors.ts';
import { indexEventsIn } from '../domain/index-events.ts';
import type { IndexQueue, Store } from '../domain/ports.ts';
import type { Chat, MessageIndex } from '../domain/types.ts';
import type { Metrics } from '../metrics.ts';

/** What the indexer needs of a search engine kept outside the store (OpenSearch, Elasticsearch). */
export interface SearchWriter {
  readonly name: string;
  ensureIndex(): Promise<void>;
  indexMessages(docs: IndexDoc[]): Promise<{ failures: { retryable: boolean; reason?: string }[] }>;
}

interface IndexDoc {
  chat: Chat;
  number: number;
  body: string;
  createdAt: string;
  updatedAt: string;
}

export interface IndexerDeps {
  events: IndexQueue;
  store: Store;
  search: SearchWriter;
  log: Logger;
  metrics: Metrics;
  /** Documents per bulk request at most. */
  maxBatch: number;
  /** How long a bulk is retried in place while the engine is unavailable (default 30 s). */
  holdMs?: number;
}

/**
 * Queue messages per handler batch. Most carry a whole write batch (up to 100 events and 256 KiB of
 * bodies, see index-events.ts), so a handler batch is up to a few thousand documents (sent in bulks of
 * `maxBatch`), and the prefetch (twice this) bounds the indexer's memory to a few tens of MiB.
 */
const QUEUE_MESSAGES_PER_BATCH = 64;

/**
 * The indexer: takes index events off their queue and bulk-indexes each batch, in bulks of `maxBatch`
 * documents. An event names its chat by (application, number); the store resolves it once (chats are
 * never deleted or renumbered). A batch with any failed document is handed back to the queue whole and
 * indexed again later: indexing is an idempotent overwrite ordered by updatedAt, so the documents that
 * did succeed are harmless to repeat. While the engine is unavailable a bulk is first retried in place for
 * up to `holdMs`; after that the batch goes back to the queue, where events wait until the engine is back.
 */
export async function startIndexer(deps: IndexerDeps): Promise<void> {
  const { events, store, search, log, metrics, maxBatch } = deps;
  const holdMs = deps.holdMs ?? 30_000;
  const chats = new LRUCache<string, Chat>({ max: 100_000 });
  const chatOf = async (event: MessageIndex): Promise<Chat | undefined> => {
    const key = `${event.applicationId}:${event.chatNumber}`;
    let chat = chats.get(key);
    if (!chat) {
      chat = await store.findChat(event.applicationId, event.chatNumber);
      if (chat) chats.set(key, chat);
    }
    return chat;
  };
  await search.ensureIndex();
  /**
   * Sends one bulk; resolves with what the engine refused for good (undefined: all indexed). Rejects only
   * when the engine stayed unavailable past `holdMs`: then the rest of the batch would fail the same way.
   */
  const bulk = async (docs: IndexDoc[]): Promise<string | undefined> => {
    const holdUntil = Date.now() + holdMs;
    for (let pause = 250; ; pause = Math.min(pause * 2, 2_000)) {
      const started = Date.now();
      let problem: string;
      try {
        const { failures } = await search.indexMessages(docs);
        if (failures.length === 0) {
          const now = Date.now();
          metrics.indexBulkDuration.observe((now - started) / 1000);
          metrics.indexBatchSize.observe(docs.length);
          for (const doc of docs) metrics.indexLag.observe((now - Date.parse(doc.updatedAt)) / 1000);
          return undefined;
        }
        problem = `${failures.length} of ${docs.length} documents not indexed: ${failures[0]?.reason ?? '?'}`;
        if (failures.some((failure) => !failure.retryable)) return problem;
      } catch (error) {
        if (!(error instanceof UnavailableError)) throw error;
        problem = error.message;
      }
      // The engine is down or overloaded. Short outages are waited out here, holding the batch (unacked),
      // so the index catches up within a pause of the engine's return; longer ones hand the batch back to
      // the queue's delay queues, whose backoff grows to 30 s.
      if (Date.now() + pause > holdUntil) throw new Error(problem);
      log.warn({ problem, retryInMs: pause }, 'search engine not indexing; holding the batch');
      metrics.indexBulkRetries.inc();
      await delay(pause);
    }
  };
  events.consume(
    async (batch) => {
      const docs: IndexDoc[] = [];
      const problems: string[] = [];
      for (const event of batch.flatMap(indexEventsIn)) {
        const chat = await chatOf(event);
        // The writer announces only committed messages, so the chat exists; if not, retrying will tell.
        // The batch's other messages are indexed meanwhile: one bad event must not hold them back.
        if (!chat) {
          problems.push(`index event for an unknown chat ${event.applicationId}/${event.chatNumber}`);
          continue;
        }
        const { number, body, createdAt, updatedAt } = event;
        docs.push({ chat, number, body, createdAt, updatedAt });
      }
      for (let from = 0; from < docs.length; from += maxBatch) {
        const refused = await bulk(docs.slice(from, from + maxBatch));
        if (refused) problems.push(refused);
      }
      // Handed back whole: indexing again what did succeed is a harmless overwrite.
      if (problems.length > 0)
        throw new Error(
          `${problems.length} problem(s) in an index batch: ${problems.slice(0, 3).join('; ')}`,
        );
    },
    { maxBatch: QUEUE_MESSAGES_PER_BATCH },
  );
  log.info({ events: events.name, search: search.name, maxBatch }, 'indexer started');
}
