import type { Logger } from 'pino';
import { indexBatches } from '../domain/index-events.ts';
import type { IndexQueue, Store, WriteQueue } from '../domain/ports.ts';
import type { FeedEvent, MessageIndex, WriteCommand } from '../domain/types.ts';
import type { Metrics } from '../metrics.ts';
import type { Announce } from '../services/live/announce.ts';

export interface WriterDeps {
  queue: WriteQueue;
  store: Store;
  metrics: Metrics;
  log: Logger;
  maxBatch: number;
  /**
   * Distributed mode: where committed messages are announced for the search index. A batch counts as
   * handled only once its events are durable too, so an event lost with a crash is re-sent with the
   * batch's redelivery (persisting it again is a no-op).
   */
  indexEvents?: IndexQueue;
  /** Live subscribers hear of each message once its batch is committed (and, distributed, indexed). */
  announce?: Announce;
}

/** The writer: takes batches off the queue and persists each in one transaction (group commit). */
export function startWriter(deps: WriterDeps): void {
  const { queue, store, metrics, maxBatch, indexEvents } = deps;
  queue.consume(
    async (batch: WriteCommand[]) => {
      const outcome = await store.persistBatch(batch);
      const { refused } = outcome;
      let stored = batch;
      if (refused.size > 0) {
        stored = batch.filter((_, i) => !refused.has(i));
        metrics.refusedCommands.inc(refused.size);
        // Which command, not its body: that stays in the dead letters (distributed), out of the logs.
        for (const [i, reason] of refused) {
          const command = batch[i]!;
          const { kind, applicationId, number } = command;
          const chatNumber = command.kind === 'message.create' ? command.chatNumber : undefined;
          deps.log.error(
            { command: { kind, applicationId, chatNumber, number }, reason },
            'write command refused: it can never be stored',
          );
        }
      }
      if (indexEvents) {
        const events = stored.flatMap((command) => indexEventOf(command) ?? []);
        await Promise.all(indexBatches(events).map((e) => indexEvents.publish(e)));
      }
      deps.announce?.(stored.flatMap((command) => feedEventOf(command) ?? []));
      const now = Date.now();
      metrics.batchSize.observe(batch.length);
      for (const command of stored) metrics.persistLag.observe((now - Date.parse(command.at)) / 1000);
      return refused.size > 0 ? outcome : undefined;
    },
    { maxBatch },
  );
  deps.log.info(
    { queue: queue.name, store: store.name, maxBatch, indexEvents: indexEvents?.name },
    'writer started',
  );
}

function indexEventOf(command: WriteCommand): MessageIndex | undefined {
  if (command.kind !== 'message.create') return undefined;
  const { applicationId, chatNumber, number, body, at } = command;
  return { kind: 'message.index', applicationId, chatNumber, number, body, createdAt: at, updatedAt: at };
}

function feedEventOf(command: WriteCommand): FeedEvent | undefined {
  if (command.kind !== 'message.create') return undefined;
  const { applicationId, chatNumber, number, body, at } = command;
  return {
    kind: 'created',
    applicationId,
    message: { chatNumber, number, body, createdAt: at, updatedAt: at },
  };
}
