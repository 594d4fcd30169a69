/**
 * The one place that reads the configuration and picks the adapters. Everything else receives its
 * dependencies from here. It logs what it picked, so an operator can see which mode is running.
 *
 * - Embedded (no service URLs): one process, role `all`: node:sqlite store and FTS5 search, in-process
 *   queue and sequencer.
 * - Distributed (MYSQL_URL, REDIS_URL, AMQP_URL and SEARCH_URL): role `api` serves HTTP, numbers with Redis
 *   and publishes creates to RabbitMQ; `worker` persists them in MySQL and announces them to the index
 *   queue; `indexer` keeps OpenSearch in step; `all` runs the three in one process.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { openCachedStore } from './cache/redis/store.ts';
import type { Config } from './config.ts';
import { isIndexEvent } from './domain/index-events.ts';
import type {
  IdempotencyGuard,
  IndexQueue,
  MessageFeed,
  SearchIndex,
  Sequencer,
  Store,
  WriteQueue,
} from './domain/ports.ts';
import type { IndexEvent } from './domain/types.ts';
import { MemoryFeed } from './feed/memory/feed.ts';
import { openRedisFeed } from './feed/redis/feed.ts';
import { buildOperationsServer, buildServer } from './http/server.ts';
import { LocalIdempotencyGuard } from './idempotency/local/guard.ts';
import { openRedisIdempotencyGuard } from './idempotency/redis/guard.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { MemoryQueue } from './queue/memory/queue.ts';
import { openRabbitQueue, type RabbitQueue } from './queue/rabbitmq/queue.ts';
import { requeueDeadLetters } from './queue/rabbitmq/requeue.ts';
import type { Dependency } from './resources/operations/routes.ts';
import { reindex } from './search/opensearch/reindex.ts';
import { openOpenSearchIndex } from './search/opensearch/search.ts';
import { openSqliteSearch } from './search/sqlite/search.ts';
import { MemorySequencer } from './sequencer/memory/sequencer.ts';
import { openRedisSequencer, SequencerRecoveringError } from './sequencer/redis/sequencer.ts';
import { ApplicationService } from './services/applications.ts';
import { ChatService } from './services/chats.ts';
import { announcer } from './services/live/announce.ts';
import { StreamService } from './services/live/stream.ts';
import { MessageService } from './services/messages.ts';
import { storeWaits } from './services/until-stored.ts';
import { openMysqlStore } from './store/mysql/store.ts';
import { backupDatabase } from './store/sqlite/backup.ts';
import { openSqliteStore } from './store/sqlite/store.ts';
import { startIndexer } from './worker/indexer.ts';
import { startReaper } from './worker/reaper.ts';
import { startWriter } from './worker/writer.ts';

export type Role = 'all' | 'api' | 'worker' | 'indexer';
export const ROLES: readonly Role[] = ['all', 'api', 'worker', 'indexer'];

export interface Running {
  /** The HTTP server: the API, or the operations endpoints of a worker or indexer. */
  server: FastifyInstance;
  /** Stops accepting, drains what this process consumes, closes every adapter. */
  stop(): Promise<void>;
}

/** Adapters of an API process. */
interface ApiAdapters {
  store: Store;
  sequencer: Sequencer;
  queue: WriteQueue;
  search: SearchIndex;
  idempotency: IdempotencyGuard;
  indexEvents?: IndexQueue;
  feed: MessageFeed;
}

/**
 * Everything opened, with the stage it closes in: the HTTP server first (no new work), then the queues,
 * the write queue before the index queue (a draining worker still announces to the index queue, a
 * draining indexer still reads the store and writes the index), then the other clients, the store last.
 */
type Closer = { name: string; close(): Promise<void> };
const STAGES = ['http', 'writes', 'index', 'clients', 'store'] as const;
type Stage = (typeof STAGES)[number];
type Closers = Map<Stage, Closer[]>;

function closing(closers: Closers, stage: Stage, closer: Closer): void {
  closers.set(stage, [...(closers.get(stage) ?? []), closer]);
}

/** Why `role` cannot run with this configuration: the embedded mode runs only as `all`. */
export function roleProblem(role: Role, config: Config): string | undefined {
  if (role === 'all' || config.mysqlUrl !== undefined) return undefined;
  return `role "${role}" needs the distributed mode (MYSQL_URL, REDIS_URL, AMQP_URL, SEARCH_URL); embedded runs as "all"`;
}

export async function start(role: Role, config: Config, log: Logger): Promise<Running> {
  const metrics = createMetrics();
  metrics.watchStoreWaits(storeWaits);
  const closers: Closers = new Map();
  try {
    return config.mysqlUrl === undefined
      ? await startEmbedded(role, config, metrics, log, closers)
      : await startDistributed(role, config, metrics, log, closers);
  } catch (error) {
    await closeAll(closers, log);
    throw error;
  }
}

async function startEmbedded(
  role: Role,
  config: Config,
  metrics: Metrics,
  log: Logger,
  closers: Closers,
): Promise<Running> {
  const problem = roleProblem(role, config);
  if (problem) throw new Error(problem);
  const sqlite = { dataDir: config.dataDir, synchronous: config.sqliteSynchronous };
  const { store, db } = openSqliteStore(sqlite, log);
  closing(closers, 'store', store);
  const search = openSqliteSearch(db, sqlite, store.searchLog, log, config.searchReaders);
  closing(closers, 'index', search);
  if (search.readerThreads) store.readPagesOn(search.readerThreads);
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
  closing(closers, 'writes', queue);
  metrics.watchQueueDepth(() => queue.depth());
  const feed = new MemoryFeed((error) => log.error({ err: error }, 'live stream listener failed'));
  const adapters: ApiAdapters = {
    feed,
    store,
    sequencer: new MemorySequencer(store),
    queue,
    search,
    idempotency: new LocalIdempotencyGuard(store, ttlMs(config)),
  };
  // `:memory:` cannot be shared between threads: there the store writes and the search indexes and reads
  // in-line (see openSqliteStore, openSqliteSearch).
  const inMemory = config.dataDir === ':memory:';
  log.info(
    {
      mode: 'embedded',
      store: `${store.name} (${config.dataDir}, synchronous=${config.sqliteSynchronous}, ${inMemory ? 'in-line writes' : 'writer thread'}${search.readerThreads ? ', list pages on the reader threads' : ''})`,
      sequencer: adapters.sequencer.name,
      queue: queue.name,
      search: inMemory
        ? `${adapters.search.name} (in memory, indexed and read in-line)`
        : `${adapters.search.name} (search.db, indexer thread, ${config.searchReaders} reader thread(s))`,
      feed: feed.name,
    },
    'adapters picked',
  );
  startWriter({ queue, store, metrics, log, maxBatch: config.writeBatchMax, announce: announcer(feed, log) });
  purgeIdempotencyPeriodically(store, config, log, closers);
  const server = await apiServer(adapters, config, metrics, log);
  closing(closers, 'http', { name: 'http', close: () => server.close() });
  return listening(server, config, closers, log);
}

async function startDistributed(
  role: Role,
  config: Config,
  metrics: Metrics,
  log: Logger,
  closers: Closers,
): Promise<Running> {
  const name = config.deploymentName;
  // A failed handler batch counts once, in its queue's series; what is dead-lettered shows in
  // queue_dead_letters.
  const onError = (what: string, failures: { inc(): void }) => (error: unknown, source: string) => {
    if (source === 'handler') failures.inc();
    log.error({ err: error, source }, `${what}: ${source} error`);
  };
  // The two queues drain one after the other at shutdown (closeAll): each gets a quarter of the time the
  // whole shutdown has, leaving the rest for closing their consumers, the clients and the store.
  const drainTimeoutMs = Math.floor(config.shutdownTimeoutMs / 4);
  const primary = await openMysqlStore(config.mysqlUrl!);
  const store = await withReadCache(primary, config, metrics, log);
  closing(closers, 'store', store);
  const writes = await openRabbitQueue(config.amqpUrl!, {
    queue: `${name}.writes`,
    maxDepth: config.queueMaxDepth,
    drainTimeoutMs,
    connectionName: `${name} ${role} ${process.pid} writes`,
    onError: onError('write queue', metrics.writeFailures),
  });
  closing(closers, 'writes', writes);
  metrics.watchQueueDepth(() => writes.depth());
  const indexEvents = await openRabbitQueue<IndexEvent>(config.amqpUrl!, {
    queue: `${name}.index`,
    accepts: isIndexEvent,
    // A failing index batch usually means the engine is down: keep retrying (at most every 30 s) for
    // hours rather than dead-lettering after a few seconds, so the index catches up when it is back.
    maxAttempts: 1000,
    maxRetryDelayMs: 30_000,
    maxDepth: config.queueMaxDepth * 10,
    drainTimeoutMs,
    connectionName: `${name} ${role} ${process.pid} index`,
    onError: onError('index queue', metrics.indexFailures),
  });
  closing(closers, 'index', indexEvents);
  metrics.watchDeadLetters(`${name}.writes`, () => writes.deadLettered());
  metrics.watchDeadLetters(`${name}.index`, () => indexEvents.deadLettered());
  const search = openOpenSearchIndex(config.searchUrl!, {
    index: `${name}-messages`,
    refreshInterval: config.searchRefreshInterval,
  });
  closing(closers, 'clients', search);
  const dependencies: Dependency[] = [
    { name: 'store', ping: () => store.ping() },
    { name: 'queue', ping: () => writes.ping() },
    { name: 'index-queue', ping: () => indexEvents.ping() },
    { name: 'search', ping: () => search.ping() },
  ];
  const runs = (part: Role) => role === 'all' || role === part;
  // The worker announces stored creates, API processes announce edits and serve the streams.
  const feed =
    runs('api') || runs('worker')
      ? await openRedisFeed(config.redisUrl!, {
          prefix: `${name}:feed:`,
          clientName: `${name}-${role}-${process.pid}-feed`,
          onListenerError: (error) => log.error({ err: error }, 'live stream listener failed'),
          onError: (error) => log.warn({ err: error }, 'live feed: Redis connection error'),
        })
      : undefined;
  if (feed) closing(closers, 'clients', feed);

  // The API numbers with it; the worker reaps the intents it keeps (creates numbered, never published).
  const sequencer =
    runs('api') || runs('worker')
      ? await openRedisSequencer(config.redisUrl!, store, {
          prefix: `${name}:seq:`,
          beforeReseed: () => drained(writes, log),
          onSettleError: (error) =>
            log.warn({ err: error }, 'settling intents failed; the reaper will publish them again'),
        })
      : undefined;
  if (sequencer) {
    closing(closers, 'clients', sequencer);
    dependencies.push({ name: 'sequencer', ping: () => sequencer.ping() });
  }

  let server: FastifyInstance;
  if (runs('api') && sequencer) {
    await sequencerSettled(sequencer, log);
    const idempotency = await openRedisIdempotencyGuard(config.redisUrl!, store, {
      ttlMs: ttlMs(config),
      prefix: `${name}:idem:`,
      onReleaseIssue: (issue) => log.warn({ issue }, 'idempotency key release'),
    });
    closing(closers, 'clients', idempotency);
    server = await apiServer(
      { store, sequencer, queue: writes, search, idempotency, indexEvents, feed: feed! },
      config,
      metrics,
      log,
      dependencies,
    );
  } else {
    server = await buildOperationsServer({ ...httpOptions(config), log, metrics, dependencies });
  }
  log.info(
    {
      mode: 'distributed',
      deployment: name,
      store: store.name,
      readCache: config.cacheTtlSeconds > 0 ? `redis (ttl ${config.cacheTtlSeconds} s)` : 'off',
      queues: [`${name}.writes`, `${name}.index`],
      search: `${search.name} (alias ${name}-messages)`,
      sequencer: sequencer && `redis (${runs('api') ? 'numbering' : 'reaping intents'})`,
      feed: feed?.name,
    },
    'adapters picked',
  );
  if (runs('worker') && sequencer) {
    startWriter({
      queue: writes,
      store,
      metrics,
      log,
      maxBatch: config.writeBatchMax,
      indexEvents,
      announce: announcer(feed!, log),
    });
    // Stopped with the HTTP server, before the write queue it publishes to closes.
    const reaper = startReaper({ sequencer, queue: writes, metrics, log });
    closing(closers, 'http', { name: 'reaper', close: () => reaper.stop() });
  }
  if (runs('indexer')) {
    // Uncached: the indexer trusts "no such chat" (it dead-letters the event), and caches chats itself.
    await startIndexer({
      events: indexEvents,
      store: primary,
      search,
      log,
      metrics,
      maxBatch: config.writeBatchMax,
    });
  }
  if (runs('worker')) purgeIdempotencyPeriodically(store, config, log, closers);
  closing(closers, 'http', { name: 'http', close: () => server.close() });
  return listening(server, config, closers, log);
}

/**
 * The distributed store behind the Redis read cache (CACHE_TTL_SECONDS > 0), in every role: the API
 * reads through it and invalidates after its edits and renames, the worker invalidates after each batch
 * it commits (see src/cache/redis/store.ts). Redis failures never fail a read or a write: they are
 * counted, and logged at most every 10 s.
 */
async function withReadCache(store: Store, config: Config, metrics: Metrics, log: Logger): Promise<Store> {
  if (config.cacheTtlSeconds === 0) return store;
  let lastLog = 0;
  try {
    return await openCachedStore(config.redisUrl!, store, {
      prefix: `${config.deploymentName}:cache:`,
      ttlMs: config.cacheTtlSeconds * 1000,
      events: {
        read: (view, result) => metrics.cacheReads.inc({ view, result }),
        failed(operation, error) {
          metrics.cacheFailures.inc({ operation });
          if (Date.now() - lastLog < 10_000) return;
          lastLog = Date.now();
          log.warn({ err: error, operation }, 'read cache: Redis failed; the store answers');
        },
      },
    });
  } catch (error) {
    await store.close();
    throw error;
  }
}

async function apiServer(
  adapters: ApiAdapters,
  config: Config,
  metrics: Metrics,
  log: Logger,
  dependencies: Dependency[] = defaultDependencies(adapters),
): Promise<FastifyInstance> {
  const { store, sequencer, queue, search, idempotency, indexEvents, feed } = adapters;
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
    ...(indexEvents && { indexEvents }),
    announce: announcer(feed, log),
  });
  const stream = new StreamService({
    applications,
    sequencer,
    store,
    feed,
    gapWaitMs: config.streamGapWaitMs,
    onGapSkipped: (chat, from, to) => {
      metrics.gapsSkipped.inc(to - from + 1);
      log.warn({ chat, from, to }, 'live stream moved past message numbers that were never stored');
    },
    onError: (error) => log.error({ err: error }, 'live stream could not read the store'),
  });
  if (config.adminToken === undefined) {
    log.warn('ADMIN_TOKEN is not set: GET /applications, which reveals every token, is open to anyone');
  }
  if (config.corsOrigins)
    log.info({ origins: config.corsOrigins }, 'CORS: browsers may call the API from these origins');
  return buildServer({
    ...httpOptions(config),
    log,
    metrics,
    applications,
    chats,
    messages,
    stream,
    live: { heartbeatMs: config.streamHeartbeatMs, maxBufferedBytes: config.streamMaxBufferedBytes },
    dependencies,
    adminToken: config.adminToken,
    corsOrigins: config.corsOrigins,
  });
}

function defaultDependencies(adapters: ApiAdapters): Dependency[] {
  const { store, sequencer, queue, search } = adapters;
  return Object.entries({ store, sequencer, queue, search }).map(([name, adapter]) => ({
    name,
    ping: () => adapter.ping(),
  }));
}

function httpOptions(config: Config) {
  return {
    requestMaxBytes: config.requestMaxBytes,
    requestTimeoutMs: config.requestTimeoutMs,
    accessLog: config.accessLog,
  };
}

async function listening(
  server: FastifyInstance,
  config: Config,
  closers: Closers,
  log: Logger,
): Promise<Running> {
  await server.listen({ host: config.host, port: config.port });
  return { server, stop: () => closeAll(closers, log) };
}

/** Closes stage by stage (see Closer); each closer once, even if stop is called twice. */
async function closeAll(closers: Closers, log: Logger): Promise<void> {
  for (const stage of STAGES) {
    const due = closers.get(stage) ?? [];
    closers.delete(stage);
    for (const closer of due) {
      await closer
        .close()
        .catch((error: unknown) => log.error({ err: error, what: closer.name }, 'close failed'));
      log.debug({ what: closer.name }, 'closed');
    }
  }
}

function ttlMs(config: Config): number {
  return config.idempotencyTtlHours * 3_600_000;
}

function purgeIdempotencyPeriodically(store: Store, config: Config, log: Logger, closers: Closers): void {
  const timer = setInterval(() => {
    const before = new Date(Date.now() - ttlMs(config)).toISOString();
    store
      .purgeIdempotency(before)
      .catch((error: unknown) => log.error({ err: error }, 'idempotency purge failed'));
  }, 10 * 60_000);
  timer.unref();
  closing(closers, 'http', { name: 'idempotency purge', close: async () => clearInterval(timer) });
}

/**
 * Waits, before serving, until the sequencer numbers: a first start (or a start after Redis lost its data)
 * passes its re-seed gate first, and answering 503 to the first clients for that is needless.
 */
async function sequencerSettled(sequencer: Sequencer, log: Logger): Promise<void> {
  const deadline = Date.now() + 150_000;
  for (;;) {
    try {
      await sequencer.chatExists(0, 1); // application 0 never exists: this only reads (and seeds) a counter
      return;
    } catch (error) {
      if (!(error instanceof SequencerRecoveringError) || Date.now() > deadline) throw error;
      log.info('waiting for the sequencer to finish re-seeding before serving');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/**
 * The sequencer's gate after Redis lost its counters: the store's maxima are only safe to seed from once
 * every create numbered before the loss has been persisted. Such a create is, when this runs, either still
 * being published by some API process (which ends, confirmed or failed, within the queue's publish
 * timeout), or in the queue, or in a batch the worker is committing (the store's seed reads wait for that
 * batch: see MysqlStore.maxChatNumber). So: wait out the publish timeout, then until the broker reports the
 * queue empty on two refreshes in a row.
 */
async function drained(writes: RabbitQueue, log: Logger): Promise<void> {
  log.warn('sequencer lost its counters: waiting for the write queue to drain before re-seeding');
  const publishesEnded = Date.now() + writes.publishTimeoutMs + 1_000;
  const deadline = publishesEnded + 120_000;
  let emptyInARow = 0;
  while (emptyInARow < 2 || Date.now() < publishesEnded) {
    if (Date.now() > deadline) throw new Error('the write queue did not drain within 120 s');
    // Only the broker's own answer counts: a refresh that failed leaves an old snapshot behind.
    const ready = await writes.refreshDepth();
    emptyInARow = ready !== undefined && writes.depth() === 0 ? emptyInARow + 1 : 0;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  log.warn('write queue drained: re-seeding the sequencer from the store');
}

/**
 * `requeue-dead-letters`: moves the dead letters of both queues back to them (see requeueDeadLetters).
 * The commands resolve to 0 when done and 2 when not applicable here; main.ts logs a failure and exits 1.
 */
export async function runRequeue(config: Config, log: Logger): Promise<number> {
  if (config.amqpUrl === undefined) {
    log.error(
      'requeue-dead-letters works on the distributed mode queues: set AMQP_URL (and the other service URLs)',
    );
    return 2;
  }
  for (const queue of [`${config.deploymentName}.writes`, `${config.deploymentName}.index`]) {
    const moved = await requeueDeadLetters(config.amqpUrl, queue);
    log.info({ queue, moved }, `requeue: ${moved} dead letters moved back to ${queue}`);
  }
  return 0;
}

/** `backup <file>`: a consistent copy of the embedded database (see backupDatabase). */
export function runBackup(config: Config, target: string | undefined, log: Logger): number {
  if (config.mysqlUrl !== undefined) {
    log.error(
      'backup copies the embedded database (DATA_DIR/chat.db); in the distributed mode back up MariaDB with its own tools (mariadb-dump --single-transaction, or mariadb-backup)',
    );
    return 2;
  }
  if (target === undefined || target === '') {
    log.error('usage: backup <file> (a new file: the copy of DATA_DIR/chat.db)');
    return 2;
  }
  log.info(backupDatabase(config.dataDir, target), 'backup written');
  return 0;
}

/** `reindex`: rebuilds the search index of this deployment from MySQL (see search/opensearch/reindex.ts). */
export async function runReindex(config: Config, log: Logger): Promise<number> {
  if (config.mysqlUrl === undefined || config.searchUrl === undefined) {
    log.error(
      'reindex rebuilds the distributed mode search index from MySQL: set MYSQL_URL and SEARCH_URL (and the other service URLs); the embedded index (search.db) rebuilds itself from chat.db at start whenever it is missing',
    );
    return 2;
  }
  const store = await openMysqlStore(config.mysqlUrl);
  try {
    await reindex({
      url: config.searchUrl,
      alias: `${config.deploymentName}-messages`,
      refreshInterval: config.searchRefreshInterval,
      messages: store,
      log,
    });
    return 0;
  } finally {
    await store.close();
  }
}
