import { setTimeout as delay } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import type { Logger } from 'pino';
import { UnavailableError } from '../domain/errors.ts';
import { indexEventsIn } from '../domain/index-events.ts';
import type { IndexQueue, Store } from '../domain/ports.ts';
import type { Chat, IndexDoc, MessageIndex } from '../domain/types.ts';
import type { Metrics } from '../metrics.ts';

/** What the indexer needs of a search engine kept outside the store (OpenSearch, Elasticsearch). */
export interface SearchWriter {
  readonly name: string;
  ensureIndex(): Promise<void>;
  /** Failures name their document; the rest of the docs were indexed. */
  indexMessages(
    docs: IndexDoc[],
  ): Promise<{ failures: { doc: IndexDoc; retryable: boolean; reason?: string }[] }>;
}

export interface IndexerDeps {
  events: IndexQueue;
  /** The primary store itself, not a read cache: an unknown chat must really be unknown (see below). */
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
 * never deleted or renumbered). Indexing is an idempotent overwrite ordered by updatedAt, so a batch can
 * be handed back and indexed again whole. While the engine is unavailable a bulk is first retried in place
 * for up to `holdMs`; after that the batch goes back to the queue, where events wait until the engine is
 * back. An event that can never be indexed (its chat is not in the store, or the engine refuses its
 * document for good) does not hold anything back: the rest is indexed, and the queue message carrying it
 * is refused, which dead-letters it (an alarm in the metrics, kept for an operator to inspect).
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
   * Sends one bulk; resolves with the documents the engine refused for good, and why. Rejects only when
   * the engine stayed unavailable past `holdMs`: then the rest of the batch would fail the same way.
   */
  const bulk = async (docs: IndexDoc[]): Promise<Map<IndexDoc, string>> => {
    const holdUntil = Date.now() + holdMs;
    const refused = new Map<IndexDoc, string>();
    let sending = docs;
    for (let pause = 250; ; pause = Math.min(pause * 2, 2_000)) {
      const started = Date.now();
      let problem: string;
      try {
        const { failures } = await search.indexMessages(sending);
        const retry = new Set<IndexDoc>();
        for (const failure of failures) {
          if (failure.retryable) retry.add(failure.doc);
          else refused.set(failure.doc, failure.reason ?? '?');
        }
        const now = Date.now();
        metrics.indexBulkDuration.observe((now - started) / 1000);
        metrics.indexBatchSize.observe(sending.length);
        for (const doc of sending) {
          if (!refused.has(doc) && !retry.has(doc))
            metrics.indexLag.observe((now - Date.parse(doc.updatedAt)) / 1000);
        }
        if (retry.size === 0) return refused;
        const reason = failures.find((failure) => failure.retryable)?.reason ?? '?';
        problem = `${retry.size} of ${sending.length} documents not indexed: ${reason}`;
        sending = [...retry];
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
      /** Which queue message of the batch each document came from. */
      const carriedBy = new Map<IndexDoc, number>();
      const refused = new Map<number, string>();
      for (const [i, item] of batch.entries()) {
        for (const event of indexEventsIn(item)) {
          const chat = await chatOf(event);
          // The writer announces only messages it committed, with their chat, and chats are never deleted:
          // an event whose chat the primary store does not have cannot be indexed however often it is tried.
          if (!chat) {
            if (!refused.has(i))
              refused.set(i, `index event for an unknown chat ${event.applicationId}/${event.chatNumber}`);
            continue;
          }
          const { number, body, createdAt, updatedAt } = event;
          const doc = { chat, number, body, createdAt, updatedAt };
          docs.push(doc);
          carriedBy.set(doc, i);
        }
      }
      for (let from = 0; from < docs.length; from += maxBatch) {
        for (const [doc, reason] of await bulk(docs.slice(from, from + maxBatch))) {
          const i = carriedBy.get(doc)!;
          if (!refused.has(i))
            refused.set(i, `${search.name} refused message ${doc.chat.id}:${doc.number}: ${reason}`);
        }
      }
      return { refused };
    },
    { maxBatch: QUEUE_MESSAGES_PER_BATCH },
  );
  log.info({ events: events.name, search: search.name, maxBatch }, 'indexer started');
}
