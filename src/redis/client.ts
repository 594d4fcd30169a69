/**
 * The Redis plumbing the adapters share (sequencer, idempotency guard, read cache, live feed): one way to
 * make a node-redis client, what counts as "Redis is unavailable" (a 503, not a bug), a command timeout,
 * and the commands the script-running adapters use, and nothing more. Tests and a future client swap
 * (ioredis, a cluster client) touch only this folder.
 */
import {
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  createClient,
  ErrorReply,
  ReconnectStrategyError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
} from 'redis';
import { UnavailableError } from '../domain/errors.ts';
import { withTimeout } from '../timeout.ts';

/** Every command rejects with RedisUnavailableError when Redis cannot answer now. */
export interface RedisConnection {
  /** SCRIPT LOAD: caches a script on the server and returns its SHA1. */
  scriptLoad(source: string): Promise<string>;
  /** EVALSHA; rejects with `NoScriptError` when the server does not have the script cached. */
  evalSha(sha: string, keys: string[], args: string[]): Promise<unknown>;
  /** EVAL, which also caches the script on the server. */
  eval(source: string, keys: string[], args: string[]): Promise<unknown>;
  /** GET. */
  get(key: string): Promise<string | null>;
  /** SET key value NX GET (Redis 7.0+): the value already there, or null when this call set it. */
  setIfAbsent(key: string, value: string): Promise<string | null>;
  /** PING. */
  ping(): Promise<void>;
  /** Waits for pending commands, then closes the connection. */
  close(): Promise<void>;
  /** Called after the connection was lost and came back: the server may have restarted meanwhile. */
  onReconnect(listener: () => void): void;
}

/** The server has no script with that SHA1 (restarted, or SCRIPT FLUSH): send the source again. */
export class NoScriptError extends Error {}

/** Redis cannot answer now (down, reconnecting, timing out, loading its data): a 503, not a bug. */
export class RedisUnavailableError extends UnavailableError {
  constructor(cause: Error) {
    super('Redis is unavailable', { cause });
  }
}

const UNAVAILABLE = [
  ClientClosedError,
  ClientOfflineError,
  ConnectionTimeoutError,
  ReconnectStrategyError,
  SocketClosedUnexpectedlyError,
  SocketTimeoutError,
  TimeoutError,
];
/** Error replies of a server that is up but cannot serve yet (or, on Cluster, right now). */
const UNAVAILABLE_REPLIES = /^(LOADING|BUSY|READONLY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN)\b/;

function translate(error: unknown): unknown {
  if (error instanceof ErrorReply) {
    if (error.message.startsWith('NOSCRIPT')) return new NoScriptError(error.message);
    if (UNAVAILABLE_REPLIES.test(error.message)) return new RedisUnavailableError(error);
  } else if (
    UNAVAILABLE.some((type) => error instanceof type) ||
    // The socket's own failure (ECONNRESET, EPIPE...), which node-redis hands to the commands in flight.
    (error instanceof Error && typeof (error as NodeJS.ErrnoException).syscall === 'string')
  ) {
    return new RedisUnavailableError(error as Error);
  }
  return error;
}

/**
 * A command timeout of our own, a plain timer cleared on the answer: rejects with node-redis's
 * TimeoutError. node-redis's own (5 s by default) gives every command an AbortSignal.timeout, which cannot
 * be cleared: each one fires 5 s later and builds a DOMException for a command long answered. That was
 * 6 % of an API process's CPU under load. Clients made here turn it off (`commandOptions.timeout: 0`).
 */
export async function withCommandTimeout<T>(command: () => Promise<T>, timeoutMs: number): Promise<T> {
  return await withTimeout(command(), timeoutMs, () => new TimeoutError(`no answer within ${timeoutMs} ms`));
}

async function timed<T>(command: () => Promise<T>, timeoutMs: number): Promise<T> {
  try {
    return await withCommandTimeout(command, timeoutMs);
  } catch (error) {
    throw translate(error);
  }
}

export interface NodeRedisOptions {
  /** CLIENT SETNAME, to find this connection in CLIENT LIST. */
  clientName?: string;
  /**
   * Connection errors. node-redis reconnects by itself, and while it does, every command rejects (the
   * offline queue is off), so callers see the outage; this only lets the owner log it.
   */
  onError?: (error: Error) => void;
  /**
   * A command without an answer after this long rejects (RedisUnavailableError): a hung Redis is a 503,
   * not a request that hangs. Default 5 000.
   */
  commandTimeoutMs?: number;
}

/** About 1.5 s of connection attempts at start-up (50, 100, 200, 400, 800 ms apart). */
const STARTUP_RETRIES = 5;

export type NodeRedisClientOptions = Pick<NodeRedisOptions, 'clientName' | 'onError'>;

/**
 * A node-redis client as every adapter here wants one: commands fail at once while Redis is away (no
 * offline queue) instead of waiting in a queue, no command timeout of node-redis's own (withCommandTimeout
 * instead), and reconnection for as long as it takes once it was up. `connect()` gives up after
 * STARTUP_RETRIES failed attempts, rejecting with RedisUnavailableError: a process that cannot reach Redis
 * when it starts says so instead of hanging in its start-up (or, for a connection opened on first use,
 * in the request that needed it).
 */
export function createNodeRedisClient(url: string, options: NodeRedisClientOptions = {}) {
  let connected = false;
  const client = createClient({
    url,
    ...(options.clientName === undefined ? {} : { name: options.clientName }),
    disableOfflineQueue: true,
    commandOptions: { timeout: 0 },
    socket: {
      reconnectStrategy: (retries, cause) =>
        !connected && retries >= STARTUP_RETRIES ? cause : Math.min(50 * 2 ** retries, 2000),
    },
  });
  // Without a listener an 'error' event would throw and end the process.
  client.on('error', options.onError ?? (() => {}));
  return {
    client,
    /** Not timed: connecting has its own bounds (the socket's connect timeout, STARTUP_RETRIES). */
    async connect(): Promise<void> {
      await client.connect().catch((error: unknown) => {
        throw translate(error);
      });
      connected = true;
    },
  };
}

export async function connectNodeRedis(
  url: string,
  options: NodeRedisOptions = {},
): Promise<RedisConnection> {
  const timeoutMs = options.commandTimeoutMs ?? 5_000;
  const run = <T>(command: () => Promise<T>) => timed(command, timeoutMs);
  const { client, connect } = createNodeRedisClient(url, options);
  await connect();

  return {
    scriptLoad: (source) => run(() => client.scriptLoad(source)),
    evalSha: (sha, keys, args) => run(() => client.evalSha(sha, { keys, arguments: args })),
    eval: (source, keys, args) => run(() => client.eval(source, { keys, arguments: args })),
    async get(key) {
      const value = await run(() => client.get(key));
      return value === null ? null : String(value);
    },
    async setIfAbsent(key, value) {
      const previous = await run(() => client.set(key, value, { condition: 'NX', GET: true }));
      return previous === null ? null : String(previous);
    },
    async ping() {
      await run(() => client.ping());
    },
    async close() {
      await client.close();
    },
    onReconnect(listener) {
      // connect() above already saw the first 'ready', so every later one follows a reconnection.
      client.on('ready', listener);
    },
  };
}

/**
 * Connects, then sets up what uses the connection (`open`: construct it, load its scripts); a set-up that
 * fails closes the connection instead of leaving it open behind a rejected start.
 */
export async function openOnNodeRedis<T>(
  url: string,
  options: NodeRedisOptions,
  open: (redis: RedisConnection) => Promise<T>,
): Promise<T> {
  const redis = await connectNodeRedis(url, options);
  try {
    return await open(redis);
  } catch (error) {
    await redis.close();
    throw error;
  }
}
