/**
 * Rebuilds the OpenSearch index from the primary store without downtime (`node src/main.ts reindex`):
 *
 * 1. create a new physical index `<alias>-v<version>-<time>` with the current mapping, refresh off;
 * 2. copy every message from MySQL into it, in primary-key order, in bulk batches (searches meanwhile
 *    still read the old index through the alias, and the indexer keeps writing to it);
 * 3. turn refresh back on, refresh, and move the alias to the new index in one _aliases call;
 * 4. catch up: copy again every message updated at or after the copy's start, less an overlap, so what the
 *    indexer wrote to the old index during the copy (creates and edits) is in the new one too;
 * 5. delete the old index.
 *
 * Why a catch-up pass rather than having the indexer write to both indices: the indexer runs in other
 * processes that would have to learn of the reindex, and be known to have learnt it, before the copy
 * starts; the pass needs nobody's cooperation. Re-sending is harmless: documents carry external versions
 * from updated_at, so an older copy never overwrites a newer event and an equal one is the same text.
 *
 * The overlap covers what updated_at does not: a create's updated_at is the time the API accepted it, and
 * the worker may persist it later (a backlog in the write queue), after the copy passed its place. Any
 * message persisted within `overlapMs` of its acceptance is caught; a backlog longer than that during a
 * reindex needs a second run.
 */
import { Client, errors } from '@opensearch-project/opensearch';
import type { Logger } from 'pino';
import type { MessageScan, MessageScanCursor } from '../../domain/ports.ts';
import { concreteIndexName, type IndexSettingsOptions, indexSettings, MESSAGE_MAPPINGS } from './mapping.ts';
import { OpenSearchIndex } from './search.ts';

export interface ReindexOptions extends IndexSettingsOptions {
  /** The search engine's URL. */
  url: string;
  /** The alias readers and the indexer use (`<DEPLOYMENT_NAME>-messages`). */
  alias: string;
  messages: MessageScan;
  log: Logger;
  /** Messages per bulk request (default 1 000). */
  batchSize?: number;
  /** How far before the copy's start the catch-up pass begins (ms; default 10 minutes). */
  overlapMs?: number;
  /** Called after each batch is copied (tests use it to write while the copy runs). */
  onBatch?: (copied: number) => Promise<void> | void;
}

export interface ReindexReport {
  index: string;
  copied: number;
  caughtUp: number;
  removed: string[];
}

/** Attempts of a batch whose items failed (overload, a node restarting) before the reindex gives up. */
const BATCH_ATTEMPTS = 5;

export async function reindex(options: ReindexOptions): Promise<ReindexReport> {
  const { alias, log } = options;
  const admin = new Client({ node: options.url, requestTimeout: 60_000 });
  const writer = new OpenSearchIndex(options.url, { index: alias, requestTimeout: 60_000 });
  const index = `${concreteIndexName(alias)}-${Date.now()}`;
  const since = new Date(Date.now() - (options.overlapMs ?? 10 * 60_000)).toISOString();
  let swapped = false;
  try {
    await admin.indices.create({
      index,
      body: {
        settings: { ...indexSettings(options), refresh_interval: '-1' },
        mappings: MESSAGE_MAPPINGS as Record<string, unknown>,
      },
    });
    log.info({ index, alias }, 'reindex: new index created; copying every message from the store');
    const copied = await copy(options, writer, index, undefined);
    await admin.indices.putSettings({
      index,
      body: { index: { refresh_interval: options.refreshInterval ?? '1s' } }, // 1s: OpenSearch's default
    });
    await admin.indices.refresh({ index });
    const removed = await aliasTargets(admin, alias);
    await admin.indices.updateAliases({
      body: {
        actions: [...removed.map((old) => ({ remove: { index: old, alias } })), { add: { index, alias } }],
      },
    });
    swapped = true;
    log.info({ index, alias, copied, previous: removed }, 'reindex: alias switched; catching up');
    const caughtUp = await copy(options, writer, index, since);
    // "Done" means searchable: the catch-up's writes too, not one refresh interval later.
    await admin.indices.refresh({ index });
    if (removed.length > 0) await admin.indices.delete({ index: removed });
    log.info({ index, copied, caughtUp, removed }, 'reindex: done');
    return { index, copied, caughtUp, removed };
  } catch (error) {
    if (!swapped) {
      // Nothing reads the half-filled index: remove it, so a failed run leaves the engine as it was.
      await admin.indices.delete({ index, ignore_unavailable: true }).catch(() => {});
      throw new Error(`reindex failed before switching the alias (nothing changed): ${message(error)}`, {
        cause: error,
      });
    }
    throw new Error(
      `reindex failed after switching the alias to ${index}: ${message(error)}; run it again to make sure every message is indexed`,
      { cause: error },
    );
  } finally {
    await writer.close();
    await admin.close();
  }
}

/** Copies the messages updated at or after `since` (all when undefined) into `index`; returns how many. */
async function copy(
  options: ReindexOptions,
  writer: OpenSearchIndex,
  index: string,
  since: string | undefined,
): Promise<number> {
  let copied = 0;
  let lastLog = Date.now();
  let after: MessageScanCursor | undefined;
  do {
    const page = await options.messages.scanMessages({
      limit: options.batchSize ?? 1000,
      ...(after && { after }),
      ...(since !== undefined && { since }),
    });
    await bulk(writer, index, page.items);
    copied += page.items.length;
    after = page.next;
    await options.onBatch?.(copied);
    if (Date.now() - lastLog >= 5000) {
      lastLog = Date.now();
      options.log.info({ index, copied, at: after, since }, 'reindex: copying');
    }
  } while (after);
  return copied;
}

async function bulk(
  writer: OpenSearchIndex,
  index: string,
  docs: Parameters<OpenSearchIndex['indexMessages']>[0],
) {
  for (let attempt = 1; docs.length > 0; attempt++) {
    const { failures } = await writer.indexMessages(docs, { index });
    if (failures.length === 0) return;
    if (attempt >= BATCH_ATTEMPTS || failures.some((f) => !f.retryable)) {
      throw new Error(
        `${failures.length} documents not indexed: ${failures[0]!.type}: ${failures[0]!.reason}`,
      );
    }
    docs = failures.map((f) => f.doc);
    await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
  }
}

/** The indices the alias points to now (none when it does not exist). */
async function aliasTargets(admin: Client, alias: string): Promise<string[]> {
  try {
    const response = await admin.indices.getAlias({ name: alias });
    return Object.keys(response.body as Record<string, unknown>);
  } catch (error) {
    if (error instanceof errors.ResponseError && error.statusCode === 404) return [];
    throw error;
  }
}

function message(error: unknown): string {
  if (error instanceof errors.ResponseError) return `${error.statusCode} ${JSON.stringify(error.body)}`;
  return error instanceof Error ? error.message : String(error);
}
