import type { Pool } from 'mysql2/promise';
import { UnavailableError } from '../../domain/errors.ts';
import { withTimeout } from '../../timeout.ts';

/** MySQL cannot answer now (down, restarting, out of connections, read-only): a 503, not a bug. */
export class MysqlUnavailableError extends UnavailableError {
  /** `write`: a write that may yet apply (it timed out, not failed), which the client should repeat. */
  constructor(cause: Error, write = false) {
    super(
      write
        ? 'the database did not answer in time; the change may still be applied: repeat it'
        : 'the database is unavailable',
      { cause },
    );
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

export interface StatementTimeouts {
  /** A SELECT without an answer after this long rejects with MysqlUnavailableError. */
  readMs: number;
  /** Any other statement, the same, with a message that says the change may still be applied. */
  writeMs: number;
}

/**
 * The pool, with the rejections of `execute`, `query` and `getConnection` translated (translateMysqlError):
 * one place instead of a catch at every call of the store. Statements inside a transaction run on its
 * connection; MysqlStore translates (and times) what a transaction throws as a whole. A statement outside a
 * transaction gives up after its timeout: a stalled server must not hold requests until the proxy in front
 * gives up on them, and on the process. The statement itself runs on, and its connection returns to the
 * pool when it is answered: a late read changes nothing; a late write may yet apply, which the 503 says
 * (every write the API makes this way is a repeatable one, or as unknown after a proxy's 504 as after it).
 */
export function translatingPool(pool: Pool, timeouts: StatementTimeouts): Pool {
  const timedOut = (ms: number, write: boolean) => () =>
    new MysqlUnavailableError(new Error(`no answer within ${ms} ms`), write);
  const translate = (error: unknown) => {
    throw translateMysqlError(error);
  };
  // Made once here, not at every property read: every store call goes through one of them.
  const wrapped = new Map<PropertyKey, unknown>();
  for (const key of ['execute', 'query', 'getConnection'] as const) {
    const method = pool[key].bind(pool) as (...args: unknown[]) => Promise<unknown>;
    wrapped.set(key, (...args: unknown[]) => {
      const answer = method(...args);
      if (key === 'getConnection') return answer.catch(translate);
      const read = isRead(args[0]);
      const ms = read ? timeouts.readMs : timeouts.writeMs;
      return withTimeout(answer, ms, timedOut(ms, !read)).catch(translate);
    });
  }
  return new Proxy(pool, {
    get(target, key) {
      if (wrapped.has(key)) return wrapped.get(key);
      const value: unknown = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
