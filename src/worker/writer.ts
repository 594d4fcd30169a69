import type { Logger } from 'pino';
import type { Store, WriteQueue } from '../domain/ports.ts';
import type { WriteCommand } from '../domain/types.ts';
import type { Metrics } from '../metrics.ts';

export interface WriterDeps {
  queue: WriteQueue;
  store: Store;
  metrics: Metrics;
  log: Logger;
  maxBatch: number;
}

/** The writer: takes batches off the queue and persists each in one transaction (group commit). */
export function startWriter(deps: WriterDeps): void {
  const { queue, store, metrics, maxBatch } = deps;
  queue.consume(
    async (batch: WriteCommand[]) => {
      await store.persistBatch(batch);
      const now = Date.now();
      metrics.batchSize.observe(batch.length);
      for (const command of batch) metrics.persistLag.observe((now - Date.parse(command.at)) / 1000);
    },
    { maxBatch },
  );
  deps.log.info({ queue: queue.name, store: store.name, maxBatch }, 'writer started');
}
