/**
 * Configuration from the environment, validated once at start. Every variable is listed in the README's
 * configuration table; keep the two in step.
 */
import { availableParallelism } from 'node:os';
import { MESSAGE_MAX_BYTES_LIMIT } from './domain/commands.ts';
import type { CorsOrigins } from './http/cors.ts';

export interface Config {
  host: string;
  port: number;
  dataDir: string;
  adminToken: string | undefined;
  /** Origins browsers may call the API from (unset: only its own). */
  corsOrigins: CorsOrigins | undefined;
  messageMaxBytes: number;
  requestMaxBytes: number;
  /** How long a request (headers and body) may take to arrive before it is answered 408. */
  requestTimeoutMs: number;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  accessLog: boolean;
  sqliteSynchronous: 'FULL' | 'NORMAL';
  writeBatchMax: number;
  /** Embedded search: threads running search SQL beside the HTTP thread (0: on it). */
  searchReaders: number;
  queueMaxDepth: number;
  idempotencyTtlHours: number;
  shutdownTimeoutMs: number;
  /** Live streams: heartbeat interval, per-client buffer cap, how long a missing number is waited for. */
  streamHeartbeatMs: number;
  streamMaxBufferedBytes: number;
  streamGapWaitMs: number;
  /** Distributed mode: how soon an indexed message becomes searchable (OpenSearch refresh_interval). */
  searchRefreshInterval: string;
  /** Distributed mode: longest life of a cached read in Redis (0: no cache). */
  cacheTtlSeconds: number;
  /** Names this deployment's queues, Redis keys and search index, so several can share the services. */
  deploymentName: string;
  /** The distributed mode's services: all four set, or none (embedded). */
  mysqlUrl: string | undefined;
  redisUrl: string | undefined;
  amqpUrl: string | undefined;
  searchUrl: string | undefined;
}

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Env = Record<string, string | undefined>;

export function loadConfig(env: Env = process.env): Config {
  const problems: string[] = [];
  const read = new Reader(env, problems);
  const config: Config = {
    host: read.string('HOST', '127.0.0.1'),
    port: read.integer('PORT', 3000, 0, 65535),
    dataDir: read.string('DATA_DIR', './data'),
    adminToken: read.optional('ADMIN_TOKEN'),
    corsOrigins: corsOrigins(read.optional('CORS_ORIGINS'), problems),
    messageMaxBytes: read.integer('MESSAGE_MAX_BYTES', 65536, 1, MESSAGE_MAX_BYTES_LIMIT),
    requestMaxBytes: read.integer('REQUEST_MAX_BYTES', 1048576, 1024, 64 * 1024 * 1024),
    requestTimeoutMs: read.integer('REQUEST_TIMEOUT_MS', 30_000, 1_000, 600_000),
    logLevel: read.choice('LOG_LEVEL', 'info', [
      'fatal',
      'error',
      'warn',
      'info',
      'debug',
      'trace',
      'silent',
    ]),
    accessLog: read.boolean('ACCESS_LOG', false),
    sqliteSynchronous: read.choice('SQLITE_SYNCHRONOUS', 'FULL', ['FULL', 'NORMAL']),
    writeBatchMax: read.integer('WRITE_BATCH_MAX', 500, 1, 10_000),
    searchReaders: read.integer('SEARCH_READERS', Math.min(4, availableParallelism()), 0, 64),
    queueMaxDepth: read.integer('QUEUE_MAX_DEPTH', 20_000, 1, 10_000_000),
    idempotencyTtlHours: read.integer('IDEMPOTENCY_TTL_HOURS', 24, 1, 24 * 30),
    shutdownTimeoutMs: read.integer('SHUTDOWN_TIMEOUT_MS', 15_000, 100, 600_000),
    streamHeartbeatMs: read.integer('STREAM_HEARTBEAT_MS', 15_000, 100, 3_600_000),
    streamMaxBufferedBytes: read.integer('STREAM_MAX_BUFFERED_BYTES', 1_048_576, 65_536, 1024 * 1024 * 1024),
    streamGapWaitMs: read.integer('STREAM_GAP_WAIT_MS', 30_000, 0, 3_600_000),
    searchRefreshInterval: read.string('SEARCH_REFRESH_INTERVAL', '500ms'),
    cacheTtlSeconds: read.integer('CACHE_TTL_SECONDS', 60, 0, 86_400),
    deploymentName: read.string('DEPLOYMENT_NAME', 'chat'),
    mysqlUrl: read.optional('MYSQL_URL'),
    redisUrl: read.optional('REDIS_URL'),
    amqpUrl: read.optional('AMQP_URL'),
    searchUrl: read.optional('SEARCH_URL'),
  };
  if (config.adminToken !== undefined && config.adminToken.length < 16) {
    problems.push('ADMIN_TOKEN: must be at least 16 characters');
  }
  // Any web page could otherwise read GET /applications, every tenant's token, through its visitors'
  // browsers, including from an API that only they can reach (an intranet, localhost).
  if (config.corsOrigins === '*' && config.adminToken === undefined) {
    problems.push('CORS_ORIGINS: * needs ADMIN_TOKEN set (or list the origins instead)');
  }
  if (config.requestMaxBytes < config.messageMaxBytes) {
    problems.push('REQUEST_MAX_BYTES: must be at least MESSAGE_MAX_BYTES');
  }
  const services = {
    MYSQL_URL: config.mysqlUrl,
    REDIS_URL: config.redisUrl,
    AMQP_URL: config.amqpUrl,
    SEARCH_URL: config.searchUrl,
  };
  const missing = Object.entries(services)
    .filter(([, value]) => value === undefined)
    .map(([name]) => name);
  if (missing.length > 0 && missing.length < 4) {
    problems.push(
      `${missing.join(', ')}: the distributed mode needs all of MYSQL_URL, REDIS_URL, AMQP_URL and SEARCH_URL (set none to run embedded)`,
    );
  }
  if (!/^[a-z][a-z0-9-]{0,39}$/.test(config.deploymentName)) {
    problems.push(
      'DEPLOYMENT_NAME: lowercase letters, digits and dashes, starting with a letter, at most 40',
    );
  }
  if (!/^[1-9][0-9]{0,5}(ms|s)$/.test(config.searchRefreshInterval)) {
    problems.push('SEARCH_REFRESH_INTERVAL: a duration such as 500ms or 1s');
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

/** `*`, or a comma-separated list of origins, each exactly as a browser sends it in `Origin`. */
function corsOrigins(raw: string | undefined, problems: string[]): CorsOrigins | undefined {
  if (raw === undefined) return undefined;
  if (raw.trim() === '*') return '*';
  const origins = raw.split(',').map((entry) => entry.trim());
  const wrong = origins.filter((origin) => {
    try {
      return new URL(origin).origin !== origin;
    } catch {
      return true;
    }
  });
  if (wrong.length > 0) {
    problems.push(
      `CORS_ORIGINS: ${wrong.map((w) => JSON.stringify(w)).join(', ')} is not an origin: scheme, lowercase host and port only, such as https://app.example.com (no path, no trailing slash), or *`,
    );
  }
  return origins;
}

class Reader {
  readonly #env: Env;
  readonly #problems: string[];
  constructor(env: Env, problems: string[]) {
    this.#env = env;
    this.#problems = problems;
  }

  optional(name: string): string | undefined {
    const value = this.#env[name];
    return value === undefined || value === '' ? undefined : value;
  }

  string(name: string, fallback: string): string {
    return this.optional(name) ?? fallback;
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || value < min || value > max) {
      this.#problems.push(`${name}: must be an integer from ${min} to ${max} (got ${JSON.stringify(raw)})`);
      return fallback;
    }
    return value;
  }

  boolean(name: string, fallback: boolean): boolean {
    const raw = this.optional(name)?.toLowerCase();
    if (raw === undefined) return fallback;
    if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
    if (['0', 'false', 'no', 'off'].includes(raw)) return false;
    this.#problems.push(`${name}: must be true or false (got ${JSON.stringify(raw)})`);
    return fallback;
  }

  choice<T extends string>(name: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    const match = allowed.find((value) => value.toLowerCase() === raw.toLowerCase());
    if (match === undefined) {
      this.#problems.push(`${name}: must be one of ${allowed.join(', ')} (got ${JSON.stringify(raw)})`);
      return fallback;
    }
    return match;
  }
}
