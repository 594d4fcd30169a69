import type { NumberPage, Page } from './types.ts';

/**
 * Turns the `limit + 1` rows an adapter fetched for a keyset page into the page and its next cursor.
 * Rows must come in the order of travel: ascending for `after` (and the first page), descending for
 * `before`. Pages are always returned in ascending order. With both cursors the page reads the range between
 * them, downwards from `before`, and the next page keeps `after` as its floor.
 */
export function numberPage<T extends { number: number }>(rows: T[], page: NumberPage): Page<T, NumberPage> {
  const more = rows.length > page.limit;
  if (more) rows.length = page.limit;
  if (page.before !== undefined) {
    rows.reverse();
    if (!more) return { items: rows };
    const next: NumberPage = { limit: page.limit, before: rows[0]!.number };
    if (page.after !== undefined) next.after = page.after;
    return { items: rows, next };
  }
  return more ? { items: rows, next: { limit: page.limit, after: rows.at(-1)!.number } } : { items: rows };
}

/** The number range a keyset page reads, as inclusive bounds plus the direction to read it in. */
export function numberRange(page: NumberPage): { from: number; to: number; descending: boolean } {
  if (page.before !== undefined)
    return { from: (page.after ?? 0) + 1, to: page.before - 1, descending: true };
  return { from: (page.after ?? 0) + 1, to: MAX_NUMBER, descending: false };
}

/** Chat and message numbers are unsigned 32-bit: the SQLite adapter packs (chat, number) into one rowid. */
export const MAX_NUMBER = 4294967295;
