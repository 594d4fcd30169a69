import type { Pool, PoolConnection, RowDataPacket } from 'mysql2/promise';

export interface Migration {
  version: number;
  name: string;
  /** One statement each: the pool runs without `multipleStatements`. */
  statements: readonly string[];
}

// utf8mb4 with a binary collation for every table: tokens and idempotency keys compare case-sensitively
// and byte for byte, and no text is ever "equal" to a differently cased or normalised one by accident.
// utf8mb4_bin is PAD SPACE on both MySQL and MariaDB (their NO PAD variants have different names), so a
// lookup by token also checks the exact value in JS (see MysqlStore.findApplication).
const TABLE = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin ROW_FORMAT=DYNAMIC';

/**
 * Versioned schema, applied in order; `schema_migrations` records each applied version. Append new
 * migrations; never edit a released one. MySQL commits every DDL statement on its own, so a migration cannot
 * roll back: write each statement so that running it again after a crash half-way is harmless (IF NOT
 * EXISTS; an ALTER that adds what exists is skipped, see apply), because the version row is written only
 * after the last one.
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    statements: [
      `CREATE TABLE IF NOT EXISTS applications (
        id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        token       VARCHAR(128)    NOT NULL,
        name        VARCHAR(255)    NOT NULL,
        chats_count INT UNSIGNED    NOT NULL DEFAULT 0,
        created_at  DATETIME(3)     NOT NULL,
        updated_at  DATETIME(3)     NOT NULL,
        PRIMARY KEY (id),
        UNIQUE KEY applications_by_token (token),
        -- GET /applications pages by (created_at, token): a keyset that reveals no internal id.
        KEY applications_by_creation (created_at, token)
      ) ${TABLE}`,
      `CREATE TABLE IF NOT EXISTS chats (
        id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
        application_id BIGINT UNSIGNED NOT NULL,
        number         INT UNSIGNED    NOT NULL,
        messages_count INT UNSIGNED    NOT NULL DEFAULT 0,
        created_at     DATETIME(3)     NOT NULL,
        updated_at     DATETIME(3)     NOT NULL,
        PRIMARY KEY (id),
        UNIQUE KEY chats_by_number (application_id, number),
        CONSTRAINT chats_application FOREIGN KEY (application_id) REFERENCES applications (id),
        CONSTRAINT chats_number_positive CHECK (number >= 1)
      ) ${TABLE}`,
      // The primary key (chat_id, number) is the clustered index: one chat's messages sit together in
      // number order, so a page is one range scan and the chat's maximum one index dive, with no
      // secondary index to maintain. MEDIUMTEXT: a 64 KiB body is 65 536 bytes, one more than TEXT holds.
      `CREATE TABLE IF NOT EXISTS messages (
        chat_id    BIGINT UNSIGNED NOT NULL,
        number     INT UNSIGNED    NOT NULL,
        body       MEDIUMTEXT      NOT NULL,
        created_at DATETIME(3)     NOT NULL,
        updated_at DATETIME(3)     NOT NULL,
        PRIMARY KEY (chat_id, number),
        CONSTRAINT messages_chat FOREIGN KEY (chat_id) REFERENCES chats (id),
        CONSTRAINT messages_number_positive CHECK (number >= 1)
      ) ${TABLE}`,
      // 255 + 255 characters of utf8mb4 make a 2 040-byte key, within InnoDB's 3 072 (DYNAMIC rows).
      `CREATE TABLE IF NOT EXISTS idempotency_keys (
        scope       VARCHAR(255) NOT NULL,
        \`key\`       VARCHAR(255) NOT NULL,
        fingerprint VARCHAR(255) NOT NULL,
        response    MEDIUMTEXT   NOT NULL,
        created_at  DATETIME(3)  NOT NULL,
        PRIMARY KEY (scope, \`key\`),
        KEY idempotency_keys_by_age (created_at)
      ) ${TABLE}`,
    ],
  },
  {
    // Edits are numbered per chat (the message keeps the number of its latest edit; the chat's last one is
    // the index's maximum), so a live stream can resume the edits a client missed. One statement: the column
    // defaults to 0 in place, and the index makes "edited after E in this chat" one range read.
    version: 2,
    name: 'edit sequence per chat',
    statements: [
      `ALTER TABLE messages ADD COLUMN edit_seq INT UNSIGNED NOT NULL DEFAULT 0,
        ADD INDEX messages_by_edit (chat_id, edit_seq)`,
    ],
  },
];

const CREATE_MIGRATIONS_TABLE = `CREATE TABLE IF NOT EXISTS schema_migrations (
  version    INT UNSIGNED NOT NULL,
  name       VARCHAR(255) NOT NULL,
  applied_at DATETIME(3)  NOT NULL,
  PRIMARY KEY (version)
) ${TABLE}`;

export interface MigrateOptions {
  /** How long to wait for another process that is migrating the same database (default 60 s). */
  lockTimeoutSeconds?: number;
  /** The migrations to apply (default: all of `migrations`); tests pass their own. */
  migrations?: readonly Migration[];
}

/**
 * Applies the migrations the database lacks, in order, and returns the versions it applied. Several
 * processes may start at once: a named lock (GET_LOCK, held by this session only, so released by the server
 * if the process dies) lets one migrate while the others wait, then find nothing left to do.
 */
export async function migrate(pool: Pool, options: MigrateOptions = {}): Promise<number[]> {
  const list = [...(options.migrations ?? migrations)].sort((a, b) => a.version - b.version);
  const connection = await pool.getConnection();
  let locked = false;
  try {
    const [[session]] = await connection.query<RowDataPacket[]>('SELECT DATABASE() AS db');
    if (!session?.db) throw new Error('the MySQL URL names no database');
    // GET_LOCK names are server-wide: scope the lock to this database. MySQL limits names to 64 characters.
    const [[lock]] = await connection.query<RowDataPacket[]>(
      "SELECT GET_LOCK(LEFT(CONCAT('chat.migrate.', DATABASE()), 64), ?) AS got",
      [options.lockTimeoutSeconds ?? 60],
    );
    if (lock?.got !== 1) throw new Error(`timed out waiting for the migration lock of ${session.db}`);
    locked = true;
    await connection.query(CREATE_MIGRATIONS_TABLE);
    const [rows] = await connection.query<RowDataPacket[]>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((row) => Number(row.version)));
    const done: number[] = [];
    // Versions the database has and this build does not know are left alone: during a rolling deploy the
    // previous build still runs against the newer schema.
    for (const migration of list) {
      if (applied.has(migration.version)) continue;
      await apply(connection, migration);
      done.push(migration.version);
    }
    return done;
  } finally {
    await unlock(connection, locked);
  }
}

async function unlock(connection: PoolConnection, locked: boolean): Promise<void> {
  try {
    if (locked) await connection.query("SELECT RELEASE_LOCK(LEFT(CONCAT('chat.migrate.', DATABASE()), 64))");
    connection.release();
  } catch {
    // A session that cannot release the lock must not go back to the pool still holding it; closing the
    // connection releases it.
    connection.destroy();
  }
}

/**
 * ER_DUP_FIELDNAME, ER_DUP_KEYNAME: what an ALTER adds exists already. DDL commits on its own, so a process
 * that died after a statement and before its migration's version row runs it again; this makes that
 * harmless on MySQL and MariaDB alike (ADD COLUMN IF NOT EXISTS is MariaDB's only).
 */
const ALREADY_THERE = new Set([1060, 1061]);

async function apply(connection: PoolConnection, migration: Migration): Promise<void> {
  for (const statement of migration.statements) {
    await connection.query(statement).catch((error: unknown) => {
      if (!ALREADY_THERE.has((error as { errno?: number }).errno ?? 0)) throw error;
    });
  }
  await connection.query(
    'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, UTC_TIMESTAMP(3))',
    [migration.version, migration.name],
  );
}
