import type { FastifyReply, FastifyRequest } from 'fastify';
import type { NumberPage } from '../domain/types.ts';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;

export interface NumberPageQuery {
  limit?: number;
  after?: number;
  before?: number;
}

/** Query-string fragment shared by every numbered list: the cap is applied, not rejected. */
export const numberPageQuerySchema = {
  limit: {
    type: 'integer',
    minimum: 1,
    default: DEFAULT_LIMIT,
    description: `Page size (capped at ${MAX_LIMIT})`,
  },
  after: { type: 'integer', minimum: 0, maximum: 4294967295, description: 'Only numbers greater than this' },
  before: { type: 'integer', minimum: 1, maximum: 4294967296, description: 'Only numbers less than this' },
} as const;

export function pageLimit(limit: number | undefined): number {
  return Math.min(limit ?? DEFAULT_LIMIT, MAX_LIMIT);
}

export function numberPageFrom(query: NumberPageQuery): NumberPage {
  const page: NumberPage = { limit: pageLimit(query.limit) };
  if (query.before !== undefined) page.before = query.before;
  if (query.after !== undefined) page.after = query.after;
  return page;
}

/**
 * What a next page keeps of the request's parameters: its size and the search query. Anything else a client
 * added is dropped, so it cannot grow the header without bound (NGINX answers 502 to a response whose
 * headers overflow its buffer, and takes the API process out of service for a while).
 */
const KEPT = new Set(['limit', 'q', 'query']);

/** Sets `Link: <url>; rel="next"`: the request's path, its page size and query, and the next cursor. */
export function linkNext(
  request: FastifyRequest,
  reply: FastifyReply,
  next: Partial<Record<'after' | 'before' | 'cursor' | 'limit', string | number>> | undefined,
): void {
  if (!next) return;
  // URLSearchParams alone, not a URL: every change to a URL's searchParams re-serialises the whole URL,
  // which was a twentieth of the HTTP thread's time per search page.
  const at = request.url.indexOf('?');
  const path = at === -1 ? request.url : request.url.slice(0, at);
  const given = new URLSearchParams(at === -1 ? '' : request.url.slice(at + 1));
  const params = new URLSearchParams();
  // `query` is the alias of `q`: only the one the search used goes on.
  const dropped = given.has('q') ? 'query' : undefined;
  for (const [name, value] of given) if (KEPT.has(name) && name !== dropped) params.append(name, value);
  for (const [name, value] of Object.entries(next)) {
    if (value !== undefined) params.set(name, String(value));
  }
  reply.header('link', `<${path}?${params}>; rel="next"`);
}
