/** A stand-in reader thread for readers.test.ts: answers every search with no rows, and exits on "exit". */
import { parentPort } from 'node:worker_threads';
import type { ReadAnswer, ReadRequest } from '../reader-protocol.ts';

parentPort!.on('message', ({ id, query }: ReadRequest) => {
  if (query.folded === 'exit') process.exit(1);
  parentPort!.postMessage({ id, result: { rows: [] } } satisfies ReadAnswer);
});
