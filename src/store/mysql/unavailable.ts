import type { Pool } from 'mysql2/promise';
import { UnavailableError } from '../../domain/errors.ts';
import { withTimeout } from '../../timeout.ts';

/** MySQL cannot answer now (down, restarting, out of connections, read-only): a 503, not a bug. */
export class MysqlUnavailableError extends UnavailableError {
  constructor(cause: Error) {
    super('the database is unavailable', { cause });
  }
}

/**
 * Server errors of a server that is up but cannot serve this now: too many connections (1040), shutting
 * down (1053), a lock wait or deadlock that outlasted the store's retries (1205, 1213), read-only during a
 * failover (1290), the query or connection killed (1317, 1927), the connection dropped for inactivity
 * (4031, MySQL 8).
 */
const UNAVAILABLE_ERRNOS = new Set([1040, 1053, 1205, 1213, 1290, 1317, 1927, 4031]);
/** mysql2's pool refusing work: closed (shutting down) or its wait queue full. */
const POOL_REFUSALS = new Set(['Pool is closed.', 'Queue limit reached.']);

export function translateMysqlError(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof UnavailableError) return error;
  const { fatal, errno, syscall } = error as Error & { fatal?: unknown; errno?: unknown; syscall?: unknown };
  // mysql2 marks an error that broke the connection `fatal` (ECONNREFUSED, PROTOCOL_CONNECTION_LOST, …).
  if (
    fatal === true ||
    typeof syscall === 'string' ||
    (typeof errno === 'number' && UNAVAILABLE_ERRNOS.has(errno)) ||
    POOL_REFUSALS.has(error.message)
  )
    return new MysqlUnavailableError(error);
  return error;
}

function isRead(statement: unknown): boolean {
  return typeof statement === 'string' && /^\s*SELECT\b/i.test(statement);
}

/**
 * The pool, with the rejections of `execute`, `query` and `getConnection` translated (translateMysqlError):
 * one place instead of a catch at every call of the store. Statements inside a transaction run on its
 * connection; MysqlStore translates what a transaction throws as a whole. A SELECT also gives up after
 * `readTimeoutMs`; the statement itself runs on, and its connection returns to the pool when it is
 * answered (a read changes nothing, so its late answer is harmless). Writes are not timed: one still
 * running may yet commit, which a 503 sent meanwhile would hide from its client.
 */
export function translatingPool(pool: Pool, readTimeoutMs: number): Pool {
  const timed = new Set<PropertyKey>(['execute', 'query']);
  const translated = new Set<PropertyKey>([...timed, 'getConnection']);
  const timedOut = () => new MysqlUnavailableError(new Error(`no answer within ${readTimeoutMs} ms`));
  return new Proxy(pool, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function') return value;
      if (!translated.has(key)) return value.bind(target);
      return (...args: unknown[]) => {
        const answer = value.apply(target, args) as Promise<unknown>;
        return (
          timed.has(key) && isRead(args[0]) ? withTimeout(answer, readTimeoutMs, timedOut) : answer
        ).catch((error: unknown) => {
          throw translateMysqlError(error);
        });
      };
    },
  });
}
