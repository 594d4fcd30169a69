/** Entry point of the SQLite writer thread (see write-channel.ts). */
import { parentPort, receiveMessageOnPort, workerData } from 'node:worker_threads';
import type { WriteCommand } from '../../domain/types.ts';
import { openDatabase, type SqliteOptions } from './database.ts';
import { SqliteWriter } from './writer.ts';

interface Call {
  id?: number;
  method: string;
  args: unknown[];
}

const port = parentPort!;
const db = openDatabase(workerData as SqliteOptions);
const writer = new SqliteWriter(db);
/** Upper bound of commands in one transaction, so a commit never holds the write lock for long. */
const MAX_GROUP = 5000;
/**
 * Set when a batch fails: every batch already sent after it is refused, so no later batch commits ahead
 * of one that has to be retried (that would leave a gap in the numbers if the process then crashed).
 * The channel sends 'unfence' as soon as it sees the failure; batches sent after that are retries.
 */
let fenced = false;

port.on('message', (first: Call) => {
  // Group commit: every persistBatch call that arrived while the previous transaction was committing is
  // taken off the port now and committed in one transaction. Other calls keep their place in the order.
  let group: Call[] = [];
  let size = 0;
  for (
    let call: Call | undefined = first;
    call;
    call = receiveMessageOnPort(port)?.message as Call | undefined
  ) {
    if (call.method === 'persistBatch' && !fenced) {
      group.push(call);
      size += (call.args[0] as WriteCommand[]).length;
      if (size < MAX_GROUP) continue;
    }
    commit(group);
    group = [];
    size = 0;
    if (call.method !== 'persistBatch' || fenced) handle(call);
  }
  commit(group);
});

function commit(group: Call[]): void {
  if (group.length === 0) return;
  let refused: Map<number, string>;
  try {
    refused = writer.persistBatch(group.flatMap((call) => call.args[0] as WriteCommand[]));
  } catch (error) {
    fenced = true;
    for (const call of group) port.postMessage({ id: call.id, ok: false, error });
    return;
  }
  // Each call hears of its own refused commands, by their index in its own batch.
  let offset = 0;
  for (const call of group) {
    const size = (call.args[0] as WriteCommand[]).length;
    const own = new Map<number, string>();
    for (const [i, why] of refused) if (i >= offset && i < offset + size) own.set(i - offset, why);
    offset += size;
    port.postMessage({ id: call.id, ok: true, value: own, logged: writer.logged });
  }
}

function handle(call: Call): void {
  if (call.method === 'unfence') {
    fenced = false;
    return;
  }
  try {
    if (call.method === 'persistBatch') throw new Error('refused: an earlier batch failed');
    if (call.method === 'close') {
      db.close();
      port.postMessage({ id: call.id, ok: true });
      return;
    }
    const method = writer[call.method as keyof SqliteWriter] as (...args: unknown[]) => unknown;
    const value = method.apply(writer, call.args);
    port.postMessage({ id: call.id, ok: true, value, logged: writer.logged });
  } catch (error) {
    port.postMessage({ id: call.id, ok: false, error });
  }
}
