import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { foldCase } from '../../search/fold.ts';
import { migrations } from './migrations.ts';

export type Synchronous = 'FULL' | 'NORMAL';

export interface SqliteOptions {
  /** Directory holding chat.db; ':memory:' for a throw-away database (tests). */
  dataDir: string;
  /** FULL: a commit survives power loss; NORMAL: it survives a process crash (WAL), not power loss. */
  synchronous: Synchronous;
}

/** Opens (creating if needed) the database, sets the pragmas the design relies on, and migrates it. */
export function openDatabase(options: SqliteOptions): DatabaseSync {
  let path = ':memory:';
  if (options.dataDir !== ':memory:') {
    mkdirSync(options.dataDir, { recursive: true });
    path = join(options.dataDir, 'chat.db');
  }
  // node:sqlite's default busy timeout is 0, which turns any lock wait into "database is locked".
  const db = new DatabaseSync(path, { enableForeignKeyConstraints: true, timeout: 5000 });
  db.exec('PRAGMA journal_mode = WAL');
  db.exec(`PRAGMA synchronous = ${options.synchronous}`);
  db.exec('PRAGMA temp_store = MEMORY');
  db.exec('PRAGMA cache_size = -65536'); // 64 MiB page cache
  // SQLite's lower() folds ASCII only; search folds with the one rule every adapter shares.
  db.function('chat_fold', { deterministic: true }, (text) => foldCase(String(text)));
  migrate(db);
  return db;
}

function migrate(db: DatabaseSync): void {
  const row = db.prepare('PRAGMA user_version').get() as { user_version: number };
  for (let version = row.user_version; version < migrations.length; version++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(migrations[version]!);
      db.exec(`PRAGMA user_version = ${version + 1}`);
      db.exec('COMMIT');
    } catch (error) {
      db.exec('ROLLBACK');
      throw error;
    }
  }
}

/** Runs `work` in one IMMEDIATE transaction (takes the write lock up front, so it never upgrades). */
export function transaction<T>(db: DatabaseSync, work: () => T): T {
  db.exec('BEGIN IMMEDIATE');
  try {
    const result = work();
    db.exec('COMMIT');
    return result;
  } catch (error) {
    if (db.isTransaction) db.exec('ROLLBACK');
    throw error;
  }
}
