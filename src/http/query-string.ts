/**
 * Whether the query string of `url` decodes: fastify keeps an undecodable escape (`q=caf%E9`, a lone
 * surrogate's `%ED%A0%80`) as literal text, so such a search would look for those characters, and its
 * `Link` (re-encoded by URLSearchParams) for U+FFFD instead. The path's escapes are checked by fastify
 * (400); this holds the query string to the same rule.
 */
export function wellFormedQuery(url: string): boolean {
  const query = url.indexOf('?');
  if (query === -1 || url.indexOf('%', query) === -1) return true;
  try {
    decodeURIComponent(url.slice(query + 1));
    return true;
  } catch {
    return false;
  }
}
