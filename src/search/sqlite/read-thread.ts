/**
 * Entry point of a reader thread (see readers.ts): runs searches and list pages of messages on its own read
 * connection, so their SQL runs beside the HTTP thread instead of on it. A search asked to `render`
 * answers its page as JSON text (renderedSearchPage), a list page always does (MessagePages.rendered).
 */
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase, type SqliteOptions } from '../../store/sqlite/database.ts';
import { MessagePages } from '../../store/sqlite/message-pages.ts';
import { renderedSearchPage } from './page.ts';
import { SearchQueries } from './queries.ts';
import type { ReadAnswer, ReadRequest, ReadResult } from './reader-protocol.ts';

const port = parentPort!;
const options = workerData as SqliteOptions;
// The HTTP thread created and migrated both files before starting readers; this only reads them.
const db = openDatabase(options);
db.prepare('ATTACH DATABASE ? AS search').run(join(options.dataDir, 'search.db'));
const queries = new SearchQueries(db);
const pages = new MessagePages(db);

function answer(request: ReadRequest): ReadResult {
  if (request.kind === 'messages') return pages.rendered(request.messages);
  const { query, render } = request;
  const found = queries.run(query);
  return render ? renderedSearchPage(found, render.chatNumber, render.limit) : found;
}

port.on('message', (request: ReadRequest) => {
  const { id } = request;
  try {
    port.postMessage({ id, result: answer(request) } satisfies ReadAnswer);
  } catch (error) {
    port.postMessage({
      id,
      error: error instanceof Error ? error.message : String(error),
    } satisfies ReadAnswer);
  }
});
