/** Entry point of the SQLite writer thread (see write-channel.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase, type SqliteOptions } from './database.ts';
import { SqliteWriter } from './writer.ts';

const db = openDatabase(workerData as SqliteOptions);
const writer = new SqliteWriter(db);

parentPort!.on('message', (message: { id: number; method: string; args: unknown[] }) => {
  try {
    if (message.method === 'close') {
      db.close();
      parentPort!.postMessage({ id: message.id, ok: true });
      return;
    }
    const method = writer[message.method as keyof SqliteWriter] as (...args: unknown[]) => unknown;
    const value = method.apply(writer, message.args);
    parentPort!.postMessage({ id: message.id, ok: true, value });
  } catch (error) {
    parentPort!.postMessage({ id: message.id, ok: false, error });
  }
});
