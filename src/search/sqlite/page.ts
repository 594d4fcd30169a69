import type { RenderedPage, SearchPage } from '../../domain/ports.ts';
import type { Message, Page } from '../../domain/types.ts';
import { renderedPage } from '../../domain/views.ts';
import { messagesFrom } from '../../store/sqlite/columns.ts';
import type { SearchRows } from './queries.ts';

/**
 * The page a search's rows make: `limit` messages at most (the query reads one more, to know whether more
 * remain) and the cursor of the next page. A bounded scan that stopped above the chat's first message
 * continues below where it stopped.
 */
export function searchPage(found: SearchRows, chatNumber: number, limit: number): Page<Message, SearchPage> {
  const { rows, floor } = found;
  const more = rows.length > limit;
  const items = messagesFrom(more ? rows.slice(0, limit) : rows, chatNumber);
  if (more) return { items, next: { limit, before: items.at(-1)!.number } };
  if (floor !== undefined && floor > 1) return { items, next: { limit, before: floor } };
  return { items };
}

/**
 * The same page rendered as the API answers it (RenderedPage). Done on a reader thread, this takes the
 * serialisation off the HTTP thread, and one string travels to it instead of a clone of every row. A
 * string, not UTF-8 bytes: bytes would travel by transfer, but every transferred ArrayBuffer is external
 * memory to V8 on the HTTP thread, and in the search benchmark at 10 connections that took p99 from 4-6 to
 * 9-12 ms (more frequent full collections, it seems), more than the encoding it saved.
 */
export function renderedSearchPage(
  found: SearchRows,
  chatNumber: number,
  limit: number,
): RenderedPage<SearchPage> {
  return renderedPage(searchPage(found, chatNumber, limit));
}
