import type { RenderedPage, SearchPage } from '../../domain/ports.ts';
import type { NumberPage } from '../../domain/types.ts';
import type { MessagePageQuery } from '../../store/sqlite/message-pages.ts';
import type { SearchQuery, SearchRows } from './queries.ts';

/**
 * The messages between the reader pool (readers.ts) and a reader thread (read-thread.ts): a search or a
 * list page of messages, and its answer by the same id. A search asked to `render` is answered as its
 * page's JSON (renderedSearchPage); a list page always is (MessagePages.rendered).
 */
export type ReadRequest =
  | { id: number; kind: 'search'; query: SearchQuery; render?: { chatNumber: number; limit: number } }
  | { id: number; kind: 'messages'; messages: MessagePageQuery };

export type ReadResult = SearchRows | RenderedPage<SearchPage> | RenderedPage<NumberPage>;

export type ReadAnswer =
  | { id: number; result: ReadResult; error?: undefined }
  | { id: number; error: string };
