import { UnavailableError } from '../domain/errors.ts';
import type { WriteQueue } from '../domain/ports.ts';
import type { WriteCommand } from '../domain/types.ts';

/**
 * Hands a create to the queue. A queue that cannot take it (a broker restarting, a queue shutting down)
 * is the client's cue to retry, not a server bug: 503. The create may still have been stored (a confirm
 * lost in flight), which is what Idempotency-Key is for.
 */
export async function handOff(queue: WriteQueue, command: WriteCommand): Promise<void> {
  try {
    await queue.publish(command);
  } catch (error) {
    throw new UnavailableError(
      `the create could not be handed to the write queue (${error instanceof Error ? error.message : String(error)}); retry with the same Idempotency-Key`,
    );
  }
}

/** Backpressure: refuse before taking a number, so a refused create never leaves a gap. */
export function ensureAccepting(queue: WriteQueue): void {
  if (!queue.accepting())
    throw new UnavailableError('the write queue is full or shutting down; retry shortly');
}
