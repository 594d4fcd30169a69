import { Client, errors } from '@opensearch-project/opensearch';
import { UnavailableError } from '../../domain/errors.ts';
import type { SearchIndex, SearchPage } from '../../domain/ports.ts';
import type { Chat, IndexDoc, Message, Page } from '../../domain/types.ts';
import { foldCase } from '../fold.ts';
import {
  concreteIndexName,
  DEFAULT_ALIAS,
  type IndexSettingsOptions,
  indexSettings,
  MESSAGE_MAPPINGS,
  type MessageDocument,
} from './mapping.ts';

export interface OpenSearchIndexOptions extends IndexSettingsOptions {
  /** The alias every request names (default `chat-messages`); ensureIndex creates `<alias>-v<INDEX_VERSION>` behind it. */
  index?: string;
  /** Milliseconds before a request is abandoned (then: UnavailableError). Default 10 s. */
  requestTimeout?: number;
  /** Client-side retries on connection errors. Default 1: the caller (HTTP 503, the indexer) retries too. */
  maxRetries?: number;
}

/**
 * A search someone is waiting for: 5 s and no retry of the client's own, so a stalled engine is a 503
 * within seconds (the client retries), well inside the proxy's read timeout. Bulks keep the defaults.
 */
const SEARCH_REQUEST = { requestTimeout: 5_000, maxRetries: 0 } as const;

export interface IndexFailure {
  doc: IndexDoc;
  /** HTTP status of the item (0 when it was refused before sending). */
  status: number;
  type: string;
  reason: string;
  /** Worth sending again later (overload, a missing index that ensureIndex will create, a node failure). */
  retryable: boolean;
}

export interface IndexResult {
  /** Items not stored; the rest of the batch was. */
  failures: IndexFailure[];
  /** Items skipped because the index already holds that message with a later updatedAt: not failures. */
  superseded: number;
}

export interface IndexOptions {
  /**
   * false (default): visible within the index's refresh interval (SEARCH_REFRESH_INTERVAL). 'wait_for': resolve once a search
   * sees the documents (tests; costly under load). true: force a refresh (avoid).
   */
  refresh?: boolean | 'wait_for';
  /** A concrete index to write to instead of the alias (reindex fills a new index before the swap). */
  index?: string;
}

/**
 * Longest query piece (in code points) sent to OpenSearch as a wildcard pattern. Lucene determinizes the
 * pattern `*q*` with a fixed work limit; a run of 400 equal characters already exceeds it ("Determinizing
 * automaton with 802 states … would require more than 10000 effort"), 256 still passed. Queries may be 1024
 * code points long, so a longer query is searched by a piece and the adapter checks the full query itself.
 */
const MAX_PATTERN_CODE_POINTS = 128;

/** Candidates fetched per request for a query OpenSearch cannot answer exactly (see wildcardPattern). */
const LOOSE_CANDIDATES = 50;

const SOURCE_FIELDS = ['number', 'body', 'created_at', 'updated_at'];

/**
 * The SearchIndex port on OpenSearch 2.x, plus the writes the indexer makes (ensureIndex, indexMessages).
 *
 * A match is `foldCase(body).includes(foldCase(query))`, exactly: the adapter folds both sides itself and
 * asks OpenSearch for a case-sensitive wildcard `*q*` on the `wildcard` field `folded`, which narrows the
 * candidates by trigrams and then verifies each against the whole value. OpenSearch's own
 * case-insensitivity (Java Locale.ROOT lowercasing) is never used: it differs from foldCase on final sigma,
 * dotted I and letters newer than the JDK's tables. Never query_string: user text is not a query language.
 */
export class OpenSearchIndex implements SearchIndex {
  readonly name = 'opensearch';
  /** The alias every read and write names. */
  readonly alias: string;
  readonly #client: Client;
  readonly #settings: IndexSettingsOptions;

  constructor(url: string, options: OpenSearchIndexOptions = {}) {
    this.alias = options.index ?? DEFAULT_ALIAS;
    this.#settings = {};
    if (options.shards !== undefined) this.#settings.shards = options.shards;
    if (options.refreshInterval !== undefined) this.#settings.refreshInterval = options.refreshInterval;
    this.#client = new Client({
      node: url,
      requestTimeout: options.requestTimeout ?? 10_000,
      maxRetries: options.maxRetries ?? 1,
    });
  }

  async search(chat: Chat, query: string, page: SearchPage): Promise<Page<Message, SearchPage>> {
    const folded = foldCase(query);
    const pattern = wildcardPattern(folded);
    // Candidates beyond a page when OpenSearch's pattern is looser than the query: fewer round trips for a
    // client walking `next` through candidates that turn out not to match.
    const size = pattern.exact ? page.limit + 1 : Math.max(page.limit + 1, LOOSE_CANDIDATES);
    const hits = await this.#candidates(chat, pattern.value, page.before, size);
    const messages = hits.map((source) => toMessage(chat, source));
    if (pattern.exact) {
      // OpenSearch verified the whole query: every hit matches.
      if (messages.length <= page.limit) return { items: messages };
      messages.length = page.limit;
      return { items: messages, next: { limit: page.limit, before: messages.at(-1)!.number } };
    }
    // OpenSearch matched a looser pattern; keep the hits that hold the query. A page may come out short
    // (even empty) while candidates remain: `next` continues below the last candidate examined.
    const matches = messages.filter((m) => foldCase(m.body).includes(folded));
    if (matches.length > page.limit) {
      matches.length = page.limit;
      return { items: matches, next: { limit: page.limit, before: matches.at(-1)!.number } };
    }
    if (hits.length === size)
      return { items: matches, next: { limit: page.limit, before: hits.at(-1)!.number } };
    return { items: matches };
  }

  /** Newest first, at most `size`: the chat's documents below `before` whose `folded` matches `pattern`. */
  async #candidates(
    chat: Chat,
    pattern: string | undefined,
    before: number | undefined,
    size: number,
  ): Promise<Omit<MessageDocument, 'chat_id' | 'folded'>[]> {
    const filter: Record<string, unknown>[] = [{ term: { chat_id: chat.id } }];
    if (before !== undefined) filter.push({ range: { number: { lt: before } } });
    if (pattern !== undefined)
      filter.push({ wildcard: { folded: { value: pattern, case_insensitive: false } } });
    const response = await this.#call(() =>
      this.#client.search(
        {
          index: this.alias,
          routing: String(chat.id),
          // A partial answer would silently drop matches: fail instead (and see the checks below).
          allow_partial_search_results: false,
          body: {
            size,
            track_total_hits: false,
            _source: SOURCE_FIELDS,
            query: { bool: { filter } },
            // chat_id first makes this a prefix of the index sort, so collection stops after `size` hits.
            sort: [{ chat_id: { order: 'asc' } }, { number: { order: 'desc' } }],
          },
        },
        SEARCH_REQUEST,
      ),
    );
    const body = response.body;
    if (body.timed_out || (body._shards?.failed ?? 0) > 0)
      throw new UnavailableError('search engine answered partially (timed out or a shard failed)');
    return body.hits.hits.map((hit) => hit._source as Omit<MessageDocument, 'chat_id' | 'folded'>);
  }

  /** Cluster health: rejects with UnavailableError when unreachable or red (some primary shard missing). */
  async ping(): Promise<void> {
    const response = await this.#call(() => this.#client.cluster.health({}));
    if (response.body.status === 'red') throw new UnavailableError('search engine cluster health is red');
  }

  async close(): Promise<void> {
    await this.#client.close();
  }

  /**
   * Creates `<alias>-v<INDEX_VERSION>` with the mapping and the alias, unless the alias exists. Safe to call
   * from several indexers at once.
   */
  async ensureIndex(): Promise<void> {
    if (await this.#aliasExists()) {
      // A dynamic setting: an index made with another interval takes the configured one.
      const interval = this.#settings.refreshInterval;
      if (interval !== undefined) {
        await this.#call(() =>
          this.#client.indices.putSettings({
            index: this.alias,
            body: { index: { refresh_interval: interval } },
          }),
        );
      }
      return;
    }
    const index = concreteIndexName(this.alias);
    try {
      await this.#call(() =>
        this.#client.indices.create({
          index,
          body: {
            settings: indexSettings(this.#settings),
            mappings: MESSAGE_MAPPINGS as Record<string, unknown>,
            aliases: { [this.alias]: {} },
          },
        }),
      );
    } catch (error) {
      // Another indexer created it first; or the index exists without the alias (removed by hand, or a
      // half-done migration): point the alias back at it.
      if (errorType(error) !== 'resource_already_exists_exception') throw error;
      if (!(await this.#aliasExists()))
        await this.#call(() => this.#client.indices.putAlias({ index, name: this.alias }));
    }
  }

  /**
   * Indexes (creates or overwrites) messages with one _bulk request. The document id `${chatId}:${number}`
   * makes a redelivered event an idempotent overwrite and an edit an overwrite with the new body.
   *
   * Ordering without scripts: the document version is external, derived from updatedAt (microseconds since
   * the epoch), with `external_gte`. OpenSearch stores an item only if its version is >= the stored one, so
   * a late event carrying an older body (a redelivered create after an edit, or two edits handled out of
   * order) is refused with a version conflict and the newer body stays; equal updatedAt overwrites, so
   * redelivery of the same event succeeds. Two edits within the same microsecond are ordered by arrival.
   * Refused items are counted as `superseded`, not failures.
   *
   * Rejects with UnavailableError when the engine cannot be reached (retry the whole batch); per-item
   * failures come back in the result (retry those marked retryable). Requires the alias (ensureIndex):
   * `require_alias` stops a write from auto-creating an index with a dynamic mapping that searches badly
   * (unless `options.index` names the concrete index, which reindex created with the mapping).
   */
  async indexMessages(docs: readonly IndexDoc[], options: IndexOptions = {}): Promise<IndexResult> {
    const failures: IndexFailure[] = [];
    const sent: IndexDoc[] = [];
    const body: Record<string, unknown>[] = [];
    for (const doc of docs) {
      const version = versionOf(doc.updatedAt);
      if (version === undefined) {
        failures.push({
          doc,
          status: 0,
          type: 'invalid_updated_at',
          reason: `updatedAt ${JSON.stringify(doc.updatedAt)} is not an ISO date-time after 1970`,
          retryable: false,
        });
        continue;
      }
      sent.push(doc);
      body.push(
        {
          index: {
            _id: `${doc.chat.id}:${doc.number}`,
            routing: String(doc.chat.id),
            version,
            version_type: 'external_gte',
          },
        },
        {
          chat_id: doc.chat.id,
          number: doc.number,
          folded: foldedField(doc.body),
          body: doc.body,
          created_at: doc.createdAt,
          updated_at: doc.updatedAt,
        } satisfies MessageDocument,
      );
    }
    if (sent.length === 0) return { failures, superseded: 0 };
    const response = await this.#call(() =>
      this.#client.bulk({
        index: options.index ?? this.alias,
        require_alias: options.index === undefined,
        refresh: options.refresh ?? false,
        body,
      }),
    );
    let superseded = 0;
    if (response.body.errors) {
      for (const [i, item] of response.body.items.entries()) {
        const result = item.index;
        if (!result?.error) continue;
        const type = result.error.type ?? 'unknown';
        if (type === 'version_conflict_engine_exception') {
          superseded++;
          continue;
        }
        const status = result.status ?? 0;
        failures.push({
          doc: sent[i]!,
          status,
          type,
          reason: result.error.reason ?? '',
          retryable: status === 429 || status >= 500 || INDEX_STATES.has(type),
        });
      }
    }
    return { failures, superseded };
  }

  async #aliasExists(): Promise<boolean> {
    const response = await this.#call(() => this.#client.indices.existsAlias({ name: this.alias }));
    return response.body === true;
  }

  /** Runs a request, turning "the engine cannot answer now" into UnavailableError (503 + Retry-After). */
  async #call<T>(request: () => Promise<T>): Promise<T> {
    try {
      return await request();
    } catch (error) {
      throw unavailable(error, this.alias) ?? error;
    }
  }
}

/**
 * Item failures that say something of the index, not of the document: a missing index (ensureIndex creates
 * it), a closed one, a write block. The indexer retries those; any other 4xx refuses the document for good
 * (the indexer dead-letters its event).
 */
const INDEX_STATES = new Set([
  'index_not_found_exception',
  'index_closed_exception',
  'cluster_block_exception',
]);

export function openOpenSearchIndex(url: string, options: OpenSearchIndexOptions = {}): OpenSearchIndex {
  return new OpenSearchIndex(url, options);
}

/**
 * Stands in for NUL in `folded`. The 2.19 wildcard tokenizer pads values with NUL and stops at the first
 * trigram holding two of them, so a NUL among the first two characters, or two NULs within three, leaves the
 * rest of the body unindexed (measured: "a\0after" is not found by `*after*`, "ab\0after" is). A
 * private-use character has no such meaning; queries holding it or NUL are checked by the adapter.
 */
export const NUL_STAND_IN = '\uE000';

/** The value of `folded`: foldCase(body), NUL replaced by NUL_STAND_IN. */
export function foldedField(body: string): string {
  return foldCase(body).replaceAll('\0', NUL_STAND_IN);
}

/**
 * The wildcard pattern `*q*` for a folded query, and whether OpenSearch's answer to it is exactly the set of
 * matches. When it is not, it is a superset (every character is either itself or `?`, which matches any one
 * code point, or the pattern is a prefix of the query) and search() checks each candidate's body:
 * - `*` and `?` are escaped with `\` (both phases honour that);
 * - `\` becomes `?`: an escaped backslash (`\\`) matches nothing on 2.19, its trigram phase looks for the
 *   two-character term (measured: `*k\\s*` does not find "back\slash");
 * - NUL and NUL_STAND_IN become `?`: `folded` holds NUL_STAND_IN for both;
 * - at most MAX_PATTERN_CODE_POINTS code points (longer queries: a prefix of the query).
 * An empty query has no pattern: every message matches.
 */
function wildcardPattern(folded: string): { value: string | undefined; exact: boolean } {
  if (folded.length === 0) return { value: undefined, exact: true };
  let codePoints = [...folded];
  let exact = codePoints.length <= MAX_PATTERN_CODE_POINTS;
  if (!exact) codePoints = codePoints.slice(0, MAX_PATTERN_CODE_POINTS);
  const literal = codePoints.map((c) => {
    if (c === '*' || c === '?') return `\\${c}`;
    if (c === '\\' || c === '\0' || c === NUL_STAND_IN) {
      exact = false;
      return '?';
    }
    return c;
  });
  return { value: `*${literal.join('')}*`, exact };
}

/** updatedAt as microseconds since the epoch (a safe integer until year 2255), or undefined if invalid. */
export function versionOf(updatedAt: string): number | undefined {
  const ms = Date.parse(updatedAt);
  if (!Number.isFinite(ms) || ms < 0) return undefined;
  // Date.parse keeps milliseconds; digits 4-6 of the fraction (MySQL DATETIME(6)) order edits within one.
  const fraction = /T[^.]*\.(\d+)/.exec(updatedAt)?.[1] ?? '';
  const micros = Number(fraction.slice(3, 6).padEnd(3, '0'));
  return ms * 1000 + micros;
}

function toMessage(chat: Chat, source: Omit<MessageDocument, 'chat_id' | 'folded'>): Message {
  return {
    chatNumber: chat.number,
    number: source.number,
    body: source.body,
    createdAt: source.created_at,
    updatedAt: source.updated_at,
  };
}

function errorType(error: unknown): string | undefined {
  if (!(error instanceof errors.ResponseError)) return undefined;
  const body = error.body as { error?: { type?: string } } | undefined;
  return body?.error?.type;
}

/** The UnavailableError for errors that mean "not now" rather than "wrong request"; undefined otherwise. */
function unavailable(error: unknown, alias: string): UnavailableError | undefined {
  if (
    error instanceof errors.ConnectionError ||
    error instanceof errors.NoLivingConnectionsError ||
    error instanceof errors.TimeoutError ||
    error instanceof errors.RequestAbortedError
  )
    return new UnavailableError('search engine unreachable', { cause: error });
  if (error instanceof errors.ResponseError) {
    const status = error.statusCode;
    if (status === 429 || status === 408 || status >= 500)
      return new UnavailableError(`search engine answered ${status}`, { cause: error });
    // Before the indexer's first ensureIndex there is nothing to search yet.
    if (errorType(error) === 'index_not_found_exception')
      return new UnavailableError(`search index ${alias} does not exist yet`);
  }
  return undefined;
}
