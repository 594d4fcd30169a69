/**
 * Index events as they cross the index queue (distributed mode): the API sends an edit's event alone, the
 * writer sends each committed batch's creates together, in pieces of bounded size (indexBatches).
 */
import type { IndexEvent, MessageIndex, MessageIndexBatch } from './types.ts';

/** Bounds one queue message, so that the indexer's prefetch bounds its memory too. */
export const INDEX_BATCH_EVENTS = 100;
export const INDEX_BATCH_BODY_CHARS = 256 * 1024;

/** A committed batch's index events as few queue messages as the bounds allow, in their order. */
export function indexBatches(events: readonly MessageIndex[]): MessageIndexBatch[] {
  const batches: MessageIndexBatch[] = [];
  let current: MessageIndex[] = [];
  let chars = 0;
  for (const event of events) {
    const full =
      current.length === INDEX_BATCH_EVENTS ||
      (current.length > 0 && chars + event.body.length > INDEX_BATCH_BODY_CHARS);
    if (full) {
      batches.push({ kind: 'message.index.batch', events: current });
      current = [];
      chars = 0;
    }
    current.push(event);
    chars += event.body.length;
  }
  if (current.length > 0) batches.push({ kind: 'message.index.batch', events: current });
  return batches;
}

/** The messages an index event names. */
export function indexEventsIn(event: IndexEvent): MessageIndex[] {
  return event.kind === 'message.index.batch' ? event.events : [event];
}

/** Shape check of an index event read back from the queue (rabbitmq-client leaves non-JSON a Buffer). */
export function isIndexEvent(body: unknown): body is IndexEvent {
  if (typeof body !== 'object' || body === null || Buffer.isBuffer(body)) return false;
  const { kind, events } = body as { kind?: unknown; events?: unknown };
  if (kind === 'message.index') return true;
  return (
    kind === 'message.index.batch' &&
    Array.isArray(events) &&
    events.length > 0 &&
    events.every(isMessageIndex)
  );
}

function isMessageIndex(value: unknown): boolean {
  return (
    typeof value === 'object' && value !== null && (value as { kind?: unknown }).kind === 'message.index'
  );
}
