/**
 * The OpenSearch index behind the SearchIndex port: one document per message, id `${chatId}:${number}`.
 *
 * Readers and writers only ever name the alias (default `chat-messages`); the data lives in a versioned
 * index (`chat-messages-v1`, or `chat-messages-v<version>-<time>` once rebuilt). After a mapping change,
 * `reindex` (reindex.ts) creates an index with the new mapping, refills it from the primary store (this
 * OpenSearch build has no _reindex) and swaps the alias in one _aliases call, without touching readers.
 */

/**
 * Bump when the mapping, the settings or foldCase change in a way that needs a new index (and a refill).
 * 2: foldCase folds final sigma (search/fold.ts); an index made by version 1 needs `reindex`.
 */
export const INDEX_VERSION = 2;

export const DEFAULT_ALIAS = 'chat-messages';

export function concreteIndexName(alias: string, version = INDEX_VERSION): string {
  return `${alias}-v${version}`;
}

/** The document as stored; `folded` is what is searched, the other strings are returned verbatim. */
export interface MessageDocument {
  chat_id: number;
  number: number;
  /** foldCase(body), NUL replaced (see foldedField in search.ts). */
  folded: string;
  body: string;
  created_at: string;
  updated_at: string;
}

export interface IndexSettingsOptions {
  /** Primary shards. Searches are routed by chat id, so each one reads a single shard whatever this is. */
  shards?: number;
  /**
   * How soon writes become searchable (`index.refresh_interval`, default 1s). Also how long a write with
   * refresh 'wait_for' waits; tests shorten it.
   */
  refreshInterval?: string;
}

export function indexSettings(options: IndexSettingsOptions = {}): Record<string, unknown> {
  return {
    number_of_shards: options.shards ?? 1,
    ...(options.refreshInterval === undefined ? {} : { refresh_interval: options.refreshInterval }),
    // No replica on a single node (the index stays green), one as soon as a second node joins.
    auto_expand_replicas: '0-1',
    // Segments sorted by chat, newest message first: a query sorted [chat_id asc, number desc] (a prefix of
    // this sort) stops collecting after `size` hits instead of visiting every match of the chat.
    'sort.field': ['chat_id', 'number'],
    'sort.order': ['asc', 'desc'],
  };
}

export const MESSAGE_MAPPINGS = {
  // A misspelt field is a bug to surface, not a new field to map dynamically.
  dynamic: 'strict',
  // Every request names the chat as routing: one chat's messages live on one shard and a search reads only
  // that shard. Required, so a write that forgets it fails instead of landing on the wrong shard.
  _routing: { required: true },
  // `folded` must stay in _source: on 2.19 the wildcard query verifies candidates against the _source value
  // (excluding it made every wildcard query match nothing, silently).
  properties: {
    chat_id: { type: 'long' },
    number: { type: 'long' },
    // Trigram-indexed, and every candidate verified against the whole value: exact substring matching,
    // case-sensitive because the query is not case_insensitive (folding is ours, see fold.ts).
    // doc_values off: a SortedSet doc value must be <= 32766 bytes ("DocValuesField "folded" is too large"),
    // bodies may be 64 KiB, and 2.19 does not read them for wildcard verification anyway.
    folded: { type: 'wildcard', doc_values: false },
    // Returned from _source only, never searched.
    body: { type: 'text', index: false },
    // _source keeps the exact strings the domain gave (returned byte-identical). The date type validates
    // them and allows range queries (catch-up, audits); sub-millisecond digits are accepted.
    created_at: { type: 'date', format: 'strict_date_optional_time', index: false, doc_values: false },
    updated_at: { type: 'date', format: 'strict_date_optional_time' },
  },
} as const;
