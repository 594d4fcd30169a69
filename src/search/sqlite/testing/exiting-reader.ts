/** A stand-in reader thread for readers.test.ts: answers every search with no rows, and exits on "exit". */
import { parentPort } from 'node:worker_threads';
import type { ReadAnswer, ReadRequest } from '../reader-protocol.ts';

parentPort!.on('message', (request: ReadRequest) => {
  if (request.kind === 'search' && request.query.folded === 'exit') process.exit(1);
  parentPort!.postMessage({ id: request.id, result: { rows: [] } } satisfies ReadAnswer);
});
