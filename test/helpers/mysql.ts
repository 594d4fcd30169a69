import { randomBytes } from 'node:crypto';
import { createPool, type Pool } from 'mysql2/promise';
import { migrate } from '../../src/store/mysql/migrations.ts';
import { createMysqlPool } from '../../src/store/mysql/store.ts';

/**
 * Scratch databases named `chat_test_<random>` (the test user may create `chat_%`): every test gets its
 * own, so AUTO_INCREMENT starts afresh and nothing leaks between tests. DDL is slow (each table is a file,
 * each created and dropped with fsyncs: 100-300 ms a database here), so migrated databases are prepared a
 * few at a time ahead of the tests that take them, and dropped in the background after.
 */
export class ScratchDatabases {
  readonly #url: string;
  readonly #ahead: number;
  #admin: Pool | undefined;
  readonly #prepared: Promise<string>[] = [];
  readonly #dropping = new Set<Promise<void>>();
  readonly #failures: unknown[] = [];

  constructor(url: string, ahead = 3) {
    this.#url = url;
    this.#ahead = ahead;
  }

  /** The URL of a new, migrated database. */
  migrated(): Promise<string> {
    while (this.#prepared.length <= this.#ahead) {
      const url = this.blank().then(async (url) => {
        const pool = createMysqlPool(url, { connectionLimit: 1 });
        try {
          await migrate(pool);
        } finally {
          await pool.end();
        }
        return url;
      });
      url.catch(() => {}); // awaited later, by the test that takes it (or by close)
      this.#prepared.push(url);
    }
    return this.#prepared.shift()!;
  }

  /** The URL of a new, empty database. */
  async blank(): Promise<string> {
    const name = `chat_test_${randomBytes(6).toString('hex')}`;
    await this.#connection().query('CREATE DATABASE ??', [name]);
    const url = new URL(this.#url);
    url.pathname = `/${name}`;
    return url.toString();
  }

  /** Drops the database in the background; `close` waits for it. */
  drop(url: string): void {
    const name = decodeURIComponent(new URL(url).pathname.slice(1));
    const dropping: Promise<void> = this.#connection()
      .query('DROP DATABASE IF EXISTS ??', [name])
      .then(
        () => {},
        // Kept for close(): a rejection nobody awaits yet would end the test process.
        (error: unknown) => void this.#failures.push(error),
      )
      .finally(() => this.#dropping.delete(dropping));
    this.#dropping.add(dropping);
  }

  async close(): Promise<void> {
    for (const prepared of this.#prepared.splice(0)) {
      const url = await prepared.catch(() => undefined);
      if (url) this.drop(url);
    }
    await Promise.all(this.#dropping);
    await this.#admin?.end();
    if (this.#failures.length > 0) throw new AggregateError(this.#failures, 'scratch databases left behind');
  }

  #connection(): Pool {
    this.#admin ??= createPool({ uri: this.#url, connectionLimit: this.#ahead + 1 });
    return this.#admin;
  }
}

/** A trigger that makes the database at `url` fail every insert of a message with this body. */
export async function failInsertsOf(url: string, body: string): Promise<void> {
  const pool = createMysqlPool(url);
  try {
    await pool.query(
      `CREATE TRIGGER fail_insert BEFORE INSERT ON messages FOR EACH ROW
         IF NEW.body = ? THEN SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'; END IF`,
      [body],
    );
  } finally {
    await pool.end();
  }
}
