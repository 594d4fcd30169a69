/**
 * Entry point of a search reader thread (see readers.ts): runs searches on its own read connection, so
 * their SQL runs beside the HTTP thread instead of on it. A search asked to `render` answers its page as
 * JSON text (renderedSearchPage).
 */
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase, type SqliteOptions } from '../../store/sqlite/database.ts';
import { renderedSearchPage } from './page.ts';
import { SearchQueries } from './queries.ts';
import type { ReadAnswer, ReadRequest } from './reader-protocol.ts';

const port = parentPort!;
const options = workerData as SqliteOptions;
// The HTTP thread created and migrated both files before starting readers; this only reads them.
const db = openDatabase(options);
db.prepare('ATTACH DATABASE ? AS search').run(join(options.dataDir, 'search.db'));
const queries = new SearchQueries(db);

port.on('message', ({ id, query, render }: ReadRequest) => {
  try {
    const found = queries.run(query);
    const result = render ? renderedSearchPage(found, render.chatNumber, render.limit) : found;
    port.postMessage({ id, result } satisfies ReadAnswer);
  } catch (error) {
    port.postMessage({
      id,
      error: error instanceof Error ? error.message : String(error),
    } satisfies ReadAnswer);
  }
});
