import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Every Prometheus series the service exports, in one registry per process. */
export function createMetrics() {
  const registry = new Registry();
  let queueDepth = (): number => 0;
  let storeWaits = (): number => 0;
  const deadLetterSources = new Map<string, () => Promise<number>>();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests answered, by route template, method and status',
      labelNames: ['route', 'method', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency, by route template, method and status',
      labelNames: ['route', 'method', 'status'] as const,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    queueDepthGauge: new Gauge({
      name: 'write_queue_depth',
      help: 'Creates accepted and not yet persisted',
      registers: [registry],
      collect() {
        this.set(queueDepth());
      },
    }),
    /** Points the queue-depth gauge at the queue this process uses. */
    watchQueueDepth(read: () => number): void {
      queueDepth = read;
    },
    storeWaitsGauge: new Gauge({
      name: 'store_waits',
      help: 'Reads and edits waiting now for a chat or message answered 201 and not stored yet',
      registers: [registry],
      collect() {
        this.set(storeWaits());
      },
    }),
    /** Points the store_waits gauge at its count. */
    watchStoreWaits(read: () => number): void {
      storeWaits = read;
    },
    deadLetters: new Gauge({
      name: 'queue_dead_letters',
      help: 'Messages in a dead-letter queue: each one failed every attempt and needs an operator (alert on > 0)',
      labelNames: ['queue'] as const,
      registers: [registry],
      async collect() {
        // Both queues at once; a broker that does not answer leaves the last value (/readyz reports the
        // broker itself).
        await Promise.all(
          [...deadLetterSources].map(([queue, read]) =>
            read().then(
              (count) => this.set({ queue }, count),
              () => {},
            ),
          ),
        );
      },
    }),
    /** Reports the dead letters of `queue` in queue_dead_letters. */
    watchDeadLetters(queue: string, read: () => Promise<number>): void {
      deadLetterSources.set(queue, read);
    },
    persistLag: new Histogram({
      name: 'persist_lag_seconds',
      help: 'Time from a create being accepted to its batch being committed',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    batchSize: new Histogram({
      name: 'write_batch_size',
      help: 'Commands per committed write batch',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    indexBatchSize: new Histogram({
      name: 'index_batch_size',
      help: 'Messages per bulk request the indexer sent to the search engine',
      buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000],
      registers: [registry],
    }),
    indexBulkDuration: new Histogram({
      name: 'index_bulk_duration_seconds',
      help: 'Time the search engine took to answer a successful bulk request',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    indexLag: new Histogram({
      name: 'index_lag_seconds',
      help: 'Time from a message being created or edited to the search engine acknowledging it (searchable after its next refresh)',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    indexBulkRetries: new Counter({
      name: 'index_bulk_retries_total',
      help: 'Bulk requests the indexer sent again after a pause because the search engine was unavailable or overloaded',
      registers: [registry],
    }),
    streamsOpen: new Gauge({
      name: 'live_streams_open',
      help: 'Server-Sent Events streams (GET …/messages/stream) open now',
      registers: [registry],
    }),
    streamsClosed: new Counter({
      name: 'live_streams_closed_total',
      help: 'Live streams ended, by reason: client_closed, slow_consumer, shutting_down, unavailable',
      labelNames: ['reason'] as const,
      registers: [registry],
    }),
    gapsSkipped: new Counter({
      name: 'live_gaps_skipped_total',
      help: 'Message numbers a live stream moved past after STREAM_GAP_WAIT_MS without finding them stored',
      registers: [registry],
    }),
    cacheReads: new Counter({
      name: 'cache_reads_total',
      help: 'Reads through the Redis read cache, by view and result (hit, miss, or error: Redis failed and the store answered)',
      labelNames: ['view', 'result'] as const,
      registers: [registry],
    }),
    cacheFailures: new Counter({
      name: 'cache_failures_total',
      help: 'Redis read cache commands that failed, by operation (an invalidate failure leaves views stale up to CACHE_TTL_SECONDS)',
      labelNames: ['operation'] as const,
      registers: [registry],
    }),
    writeFailures: new Counter({
      name: 'write_batch_failures_total',
      help: 'Write batches whose transaction failed and will be retried',
      registers: [registry],
    }),
    indexFailures: new Counter({
      name: 'index_batch_failures_total',
      help: 'Index event batches the indexer could not index (the engine away for longer than it holds a batch); retried through the delay queues',
      registers: [registry],
    }),
    refusedCommands: new Counter({
      name: 'write_commands_refused_total',
      help: 'Create commands the store refused because they can never be stored (malformed, or naming an unknown application): dead-lettered (distributed) or answered 500 (embedded)',
      registers: [registry],
    }),
    reapedCreates: new Counter({
      name: 'reaped_creates_total',
      help: 'Creates published by the reaper: numbered, but their API process died or their publish failed',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
