/**
 * Entry point of the search indexer thread (see indexing.ts): follows search_log into search.db on its
 * own connection, beside the store's writer thread, so that index upkeep never delays a group commit.
 *
 * Messages in: `{ committed: seq }` (the store has logged entries up to seq: wake up) and `{ close: true }`.
 * Messages out: `{ indexed: seq }` after every step (each wake-up gets one), and `{ closed: true }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase, type SqliteOptions } from '../../store/sqlite/database.ts';
import { SearchIndexer } from './indexer.ts';
import { attachSearchDatabase } from './schema.ts';

const port = parentPort!;
const options = workerData as SqliteOptions;
const db = openDatabase(options);
attachSearchDatabase(db, options);
const indexer = new SearchIndexer(db);

/** Entries per transaction: large enough to amortise FTS5's per-commit cost, small enough to yield often. */
const STEP = 2000;
/**
 * Once idle for IDLE_MS, merge the index in steps of MERGE_PAGES pages (tens of milliseconds each),
 * yielding between steps so that new entries go first, until nothing is left to merge.
 */
const IDLE_MS = 1000;
const MERGE_PAGES = 500;

let scheduled = false;
let closed = false;
let unmerged = true; // a fresh start may find an index left unmerged
let idleTimer: NodeJS.Timeout | undefined;

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(run);
}

function run(): void {
  scheduled = false;
  if (closed) return;
  clearTimeout(idleTimer);
  // A failure here ends the thread (uncaught): the main thread starts a new one, which resumes at the
  // committed watermark.
  const indexed = indexer.step(STEP);
  port.postMessage({ indexed: indexer.indexed });
  if (indexed > 0) unmerged = true;
  // A full step may have left more behind; a short one read everything committed when it started, and
  // the main thread, seeing the answer, wakes it again if more was committed since.
  if (indexed === STEP) schedule();
  else if (unmerged) idleTimer = setTimeout(mergeStep, IDLE_MS);
}

function mergeStep(): void {
  if (closed) return;
  try {
    unmerged = indexer.mergeStep(MERGE_PAGES);
  } catch {
    unmerged = false; // upkeep only: try again after the next step rather than fail the indexer
  }
  if (unmerged) idleTimer = setTimeout(mergeStep, 0);
}

port.on('message', (message: { committed?: number; close?: boolean }) => {
  if (message.close) {
    closed = true;
    clearTimeout(idleTimer);
    db.close();
    port.postMessage({ closed: true });
    port.close();
    return;
  }
  // Always answered (by the step it schedules), even when there is nothing new: the main thread sends
  // the next wake-up only after an answer.
  schedule();
});
schedule();
