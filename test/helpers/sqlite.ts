import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';

/** A trigger that makes the database fail every insert of a message with this body. */
export function failInsertsOf(db: DatabaseSync, body: string): void {
  db.exec(`CREATE TRIGGER fail_insert BEFORE INSERT ON messages WHEN NEW.body = '${body.replaceAll("'", "''")}'
    BEGIN SELECT RAISE(ABORT, 'injected failure'); END`);
}

/**
 * The same in the chat.db of `dataDir`, from a connection of its own: the writer thread's connection sees
 * the new schema at its next statement.
 */
export function failInsertsIn(dataDir: string, body: string): void {
  const db = new DatabaseSync(join(dataDir, 'chat.db'));
  try {
    failInsertsOf(db, body);
  } finally {
    db.close();
  }
}
