import type { RenderedPage, SearchPage } from '../../domain/ports.ts';
import type { SearchQuery, SearchRows } from './queries.ts';

/**
 * The messages between the reader pool (readers.ts) and a reader thread (read-thread.ts): a search, and
 * its answer by the same id. A search asked to `render` is answered as its page's JSON (renderedSearchPage).
 */
export interface ReadRequest {
  id: number;
  query: SearchQuery;
  render?: { chatNumber: number; limit: number };
}

export type ReadAnswer =
  | { id: number; result: SearchRows | RenderedPage<SearchPage>; error?: undefined }
  | { id: number; error: string };
