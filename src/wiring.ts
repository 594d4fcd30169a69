/**
 * The one place that reads the configuration and picks the adapters. Everything else receives its
 * dependencies from here. It logs what it picked, so an operator can see which mode is running.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from './config.ts';
import type { IdempotencyGuard, SearchIndex, Sequencer, Store, WriteQueue } from './domain/ports.ts';
import { buildServer } from './http/server.ts';
import { LocalIdempotencyGuard } from './idempotency/local/guard.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { MemoryQueue } from './queue/memory/queue.ts';
import { SqliteSearch } from './search/sqlite/search.ts';
import { MemorySequencer } from './sequencer/memory/sequencer.ts';
import { ApplicationService } from './services/applications.ts';
import { ChatService } from './services/chats.ts';
import { MessageService } from './services/messages.ts';
import { openSqliteStore } from './store/sqlite/store.ts';
import { startWriter } from './worker/writer.ts';

export type Role = 'all' | 'api' | 'worker' | 'indexer';
export const ROLES: readonly Role[] = ['all', 'api', 'worker', 'indexer'];

export interface Adapters {
  store: Store;
  sequencer: Sequencer;
  queue: WriteQueue;
  search: SearchIndex;
  idempotency: IdempotencyGuard;
}

export interface Running {
  /** The HTTP server, when the role serves the API. */
  server: FastifyInstance | undefined;
  /** Stops accepting, drains the queue, closes every adapter. */
  stop(): Promise<void>;
}

/** Chooses the adapters for the configuration. Only the embedded ones exist in this version. */
export function pickAdapters(config: Config, metrics: Metrics, log: Logger): Adapters {
  const distributed = Object.entries({
    MYSQL_URL: config.mysqlUrl,
    REDIS_URL: config.redisUrl,
    AMQP_URL: config.amqpUrl,
    SEARCH_URL: config.searchUrl,
  }).filter(([, value]) => value !== undefined);
  if (distributed.length > 0) {
    throw new Error(
      `${distributed.map(([name]) => name).join(', ')} set, but this build has only the embedded adapters ` +
        '(node:sqlite, in-process queue and sequencer). Unset them to run embedded.',
    );
  }
  const { store, db } = openSqliteStore(
    { dataDir: config.dataDir, synchronous: config.sqliteSynchronous },
    log,
  );
  const queue = new MemoryQueue({
    maxDepth: config.queueMaxDepth,
    // Hand every tick's batch to the writer thread at once: it commits whatever arrived while it was
    // committing in one transaction (group commit), so it never waits on this thread. Safe because the
    // writer thread commits in order and refuses batches after a failed one (see write-thread.ts).
    pipeline: 64,
    onError: (error, attempt) => {
      metrics.writeFailures.inc();
      log.error({ err: error, attempt }, 'write batch failed; retrying');
    },
  });
  metrics.watchQueueDepth(() => queue.depth());
  const adapters: Adapters = {
    store,
    sequencer: new MemorySequencer(store),
    queue,
    search: new SqliteSearch(db),
    idempotency: new LocalIdempotencyGuard(store, config.idempotencyTtlHours * 3_600_000),
  };
  log.info(
    {
      mode: 'embedded',
      store: `${store.name} (${config.dataDir}, synchronous=${config.sqliteSynchronous}, writer thread)`,
      sequencer: adapters.sequencer.name,
      queue: queue.name,
      search: adapters.search.name,
    },
    'adapters picked',
  );
  return adapters;
}

export async function start(role: Role, config: Config, log: Logger): Promise<Running> {
  if (role !== 'all') {
    throw new Error(`role "${role}" needs the distributed adapters; the embedded build runs as "all"`);
  }
  const metrics = createMetrics();
  const adapters = pickAdapters(config, metrics, log);
  const { store, sequencer, queue, search, idempotency } = adapters;

  startWriter({ queue, store, metrics, log, maxBatch: config.writeBatchMax });
  const purge = setInterval(() => {
    const before = new Date(Date.now() - config.idempotencyTtlHours * 3_600_000).toISOString();
    store
      .purgeIdempotency(before)
      .catch((error: unknown) => log.error({ err: error }, 'idempotency purge failed'));
  }, 10 * 60_000);
  purge.unref();

  const applications = new ApplicationService(store);
  const chats = new ChatService({ applications, store, sequencer, queue, idempotency });
  const messages = new MessageService({
    applications,
    chats,
    store,
    sequencer,
    queue,
    search,
    idempotency,
    messageMaxBytes: config.messageMaxBytes,
  });
  if (config.adminToken === undefined) {
    log.warn('ADMIN_TOKEN is not set: GET /applications, which reveals every token, is open to anyone');
  }
  const server = await buildServer({
    log,
    metrics,
    applications,
    chats,
    messages,
    dependencies: Object.entries({ store, sequencer, queue, search }).map(([name, adapter]) => ({
      name,
      ping: () => adapter.ping(),
    })),
    adminToken: config.adminToken,
    requestMaxBytes: config.requestMaxBytes,
    accessLog: config.accessLog,
  });
  await server.listen({ host: config.host, port: config.port });

  return {
    server,
    async stop() {
      await server.close();
      log.debug('http server closed');
      await queue.close();
      log.debug({ depth: queue.depth() }, 'queue drained');
      clearInterval(purge);
      for (const adapter of [search, sequencer, store]) await adapter.close();
    },
  };
}
