import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

/** Every Prometheus series the service exports, in one registry per process. */
export function createMetrics() {
  const registry = new Registry();
  let queueDepth = (): number => 0;
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
    writeFailures: new Counter({
      name: 'write_batch_failures_total',
      help: 'Write batches whose transaction failed and will be retried',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
