import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export interface BackupResult {
  target: string;
  bytes: number;
  messages: number;
}

/**
 * Writes a consistent copy of `dataDir`/chat.db to `target`, safe while the server runs and writes.
 *
 * `VACUUM INTO` reads the database in one read transaction, which in WAL mode never blocks the writer and
 * sees one committed state (SQLite's page-by-page backup API instead starts over whenever another process
 * commits, so against a busy server it may never finish). The copy is written beside the target, checked,
 * synced, and renamed into place, so a crash leaves either no target or a whole one.
 *
 * search.db is not copied: it is derived from chat.db. The copy gets a new instance id, so the server that
 * starts on it rebuilds its search index instead of trusting one that followed the original further.
 */
export function backupDatabase(dataDir: string, target: string): BackupResult {
  const destination = resolve(target);
  if (existsSync(destination)) throw new Error(`${destination} already exists; choose a new file`);
  const source = join(dataDir, 'chat.db');
  if (!existsSync(source)) throw new Error(`no database to back up: ${source} does not exist`);
  removeAbandonedCopies(destination);
  const partial = `${destination}.partial-${process.pid}`;
  // Read-only: closing a read-write connection of a stopped server would fold its WAL into chat.db.
  const db = new DatabaseSync(source, { readOnly: true });
  try {
    db.exec('PRAGMA busy_timeout = 10000');
    db.prepare('VACUUM INTO ?').run(partial);
  } catch (error) {
    removeCopy(partial);
    throw error;
  } finally {
    db.close();
  }
  let messages: number;
  try {
    const copy = new DatabaseSync(partial);
    try {
      const { quick_check: check } = copy.prepare('PRAGMA quick_check').get() as { quick_check: string };
      if (check !== 'ok') throw new Error(`the copy failed its integrity check: ${check}`);
      // A rollback journal, not a WAL beside it: the renamed file alone must hold everything.
      copy.exec('PRAGMA journal_mode = DELETE');
      copy.exec('UPDATE instance SET source = lower(hex(randomblob(16)))');
      ({ n: messages } = copy.prepare('SELECT count(*) AS n FROM messages').get() as { n: number });
    } finally {
      copy.close();
    }
    syncFile(partial);
    renameSync(partial, destination);
    syncFile(dirname(destination));
  } catch (error) {
    removeCopy(partial);
    throw error;
  }
  return { target: destination, bytes: statSync(destination).size, messages };
}

/** Unfinished copies to `destination` left by a backup that was killed: its process is gone. */
function removeAbandonedCopies(destination: string): void {
  const prefix = `${basename(destination)}.partial-`;
  const directory = dirname(destination);
  if (!existsSync(directory)) return;
  for (const name of readdirSync(directory)) {
    if (!name.startsWith(prefix)) continue;
    const pid = /^(\d+)(?:-journal|-wal|-shm)?$/.exec(name.slice(prefix.length))?.[1];
    if (pid === undefined || alive(Number(pid))) continue;
    rmSync(join(directory, name), { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists, owned by someone else.
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The unfinished copy and the files SQLite may have left beside it. */
function removeCopy(path: string): void {
  for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
}

function syncFile(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
