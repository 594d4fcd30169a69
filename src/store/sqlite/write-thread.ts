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

/**
 * Search-index upkeep. Every commit adds a small FTS5 segment; FTS5's automerge keeps them in levels, but
 * a query still probes every segment, and a fully merged index answers about four times faster. So once
 * the writer has been idle for IDLE_MS, it merges in steps of MERGE_PAGES pages (tens of milliseconds
 * each), yielding between steps so that arriving writes go first, until nothing is left to merge.
 */
const IDLE_MS = 1000;
const MERGE_PAGES = 500;
const merge = db.prepare(`INSERT INTO messages_fts (messages_fts, rank) VALUES ('merge', -${MERGE_PAGES})`);
const totalChanges = db.prepare('SELECT total_changes() AS n');
let unmerged = true; // a fresh start may find an index left unmerged
let idleTimer: NodeJS.Timeout | undefined;

function afterWork(): void {
  clearTimeout(idleTimer);
  if (unmerged) idleTimer = setTimeout(mergeStep, IDLE_MS);
}

function mergeStep(): void {
  try {
    const before = (totalChanges.get() as { n: number }).n;
    merge.run();
    // The merge statement itself counts as one change; more means it rewrote segments and may go on.
    unmerged = (totalChanges.get() as { n: number }).n > before + 1;
  } catch {
    unmerged = false; // upkeep only: try again after the next commit rather than fail the writer
  }
  if (unmerged) idleTimer = setTimeout(mergeStep, 0);
}

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
  afterWork();
});
afterWork();

function commit(group: Call[]): void {
  if (group.length === 0) return;
  try {
    writer.persistBatch(group.flatMap((call) => call.args[0] as WriteCommand[]));
  } catch (error) {
    fenced = true;
    for (const call of group) port.postMessage({ id: call.id, ok: false, error });
    return;
  }
  unmerged = true;
  for (const call of group) port.postMessage({ id: call.id, ok: true });
}

function handle(call: Call): void {
  if (call.method === 'unfence') {
    fenced = false;
    return;
  }
  try {
    if (call.method === 'persistBatch') throw new Error('refused: an earlier batch failed');
    if (call.method === 'close') {
      clearTimeout(idleTimer);
      unmerged = false;
      db.close();
      port.postMessage({ id: call.id, ok: true });
      return;
    }
    const method = writer[call.method as keyof SqliteWriter] as (...args: unknown[]) => unknown;
    port.postMessage({ id: call.id, ok: true, value: method.apply(writer, call.args) });
  } catch (error) {
    port.postMessage({ id: call.id, ok: false, error });
  }
}
