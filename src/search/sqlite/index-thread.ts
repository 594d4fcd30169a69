/**
 * Entry point of the search indexer thread (see indexing.ts): follows search_log into search.db on its
 * own connection, beside the store's writer thread, so that index upkeep never delays a group commit.
 *
 * Messages in: `{ committed: seq, now?: true }` (the store has logged entries up to seq: wake up; `now`: a
 * search is waiting) and `{ close: true }`. Messages out: `{ indexed: seq }` after every step (each
 * wake-up gets one at least), and `{ closed: true }`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase, type SqliteOptions } from '../../store/sqlite/database.ts';
import { SearchIndexer } from './indexer.ts';
import { attachSearchDatabase } from './schema.ts';

const port = parentPort!;
const { gatherMs, ...options } = workerData as SqliteOptions & { gatherMs: number };
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

/** The next step: at once, or after gathering (see ThreadIndexingOptions.gatherMs). */
let next: { gathering: boolean; cancel(): void } | undefined;
let closed = false;
let unmerged = true; // a fresh start may find an index left unmerged
let idleTimer: NodeJS.Timeout | undefined;

function schedule(now: boolean): void {
  if (next && (next.gathering === false || !now)) return;
  next?.cancel();
  if (now || gatherMs === 0) {
    const immediate = setImmediate(run);
    next = { gathering: false, cancel: () => clearImmediate(immediate) };
  } else {
    const timer = setTimeout(run, gatherMs);
    next = { gathering: true, cancel: () => clearTimeout(timer) };
  }
}

function run(): void {
  next = undefined;
  if (closed) return;
  clearTimeout(idleTimer);
  // A failure here ends the thread (uncaught): the main thread starts a new one, which resumes at the
  // committed watermark.
  const indexed = indexer.step(STEP);
  port.postMessage({ indexed: indexer.indexed });
  if (indexed > 0) unmerged = true;
  // A full step may have left more behind; a short one read everything committed when it started, and
  // the main thread, seeing the answer, wakes it again if more was committed since.
  if (indexed === STEP) schedule(true);
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

port.on('message', (message: { committed?: number; now?: boolean; close?: boolean }) => {
  if (message.close) {
    closed = true;
    next?.cancel();
    clearTimeout(idleTimer);
    db.close();
    port.postMessage({ closed: true });
    port.close();
    return;
  }
  // Always answered (by the step it schedules), even when there is nothing new: the main thread sends
  // the next wake-up only after an answer. A full step's worth need not gather more.
  const behind = (message.committed ?? 0) - indexer.indexed;
  schedule(message.now === true || behind >= STEP);
});
schedule(true);
