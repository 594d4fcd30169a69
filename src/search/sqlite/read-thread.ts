/**
 * Entry point of a search reader thread (see readers.ts): runs searches on its own read connection, so
 * their SQL runs beside the HTTP thread instead of on it.
 *
 * Messages in: `{ id, query: SearchQuery }`. Messages out: `{ id, result: SearchRows }` or `{ id, error }`.
 */
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase, type SqliteOptions } from '../../store/sqlite/database.ts';
import { SearchQueries, type SearchQuery } from './queries.ts';

const port = parentPort!;
const options = workerData as SqliteOptions;
// The HTTP thread created and migrated both files before starting readers; this only reads them.
const db = openDatabase(options);
db.prepare('ATTACH DATABASE ? AS search').run(join(options.dataDir, 'search.db'));
const queries = new SearchQueries(db);

port.on('message', ({ id, query }: { id: number; query: SearchQuery }) => {
  try {
    port.postMessage({ id, result: queries.run(query) });
  } catch (error) {
    port.postMessage({ id, error: error instanceof Error ? error.message : String(error) });
  }
});
