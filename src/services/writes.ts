import { CreateOutcomeUnknownError, QueueItemRefusedError, UnavailableError } from '../domain/errors.ts';
import type { Sequencer, WriteQueue } from '../domain/ports.ts';
import type { IdempotencyRecord, WriteCommand } from '../domain/types.ts';

/** A create's answer and the command that makes it durable, for a given number. */
export interface Draft<V, C extends WriteCommand> {
  view: V;
  command: C;
}

/**
 * The create path: backpressure check, a number from the sequencer (which keeps the command as its intent
 * until the queue has it, see the Sequencer port), the hand-off, then the intent is settled. `draft` is
 * called twice: without a number (0) for the intent, then with the number. The command carries the
 * idempotency answer (`record` of the view), which the writer stores with it.
 */
export async function numberAndHandOff<V, C extends WriteCommand>(
  deps: { sequencer: Sequencer; queue: WriteQueue },
  take: (intent: C) => Promise<number>,
  draft: (number: number) => Draft<V, C>,
  record: (view: V) => IdempotencyRecord | undefined,
): Promise<V> {
  const drafted = (number: number): Draft<V, C> => {
    const { view, command } = draft(number);
    const idempotency = record(view);
    return { view, command: idempotency ? { ...command, idempotency } : command };
  };
  ensureAccepting(deps.queue);
  const number = await take(drafted(0).command);
  const { view, command } = drafted(number);
  await handOff(deps.queue, command);
  deps.sequencer.settle(command);
  return view;
}

/**
 * Hands a create to the queue. A queue that cannot take it (a broker restarting, a queue shutting down)
 * is the client's cue to retry, not a server bug: 503. The create may still be stored: its confirm may
 * have been lost in flight, and a shared sequencer keeps its intent, which the reaper publishes later
 * (so that its number is not left unused). That is what Idempotency-Key is for.
 */
async function handOff(queue: WriteQueue, command: WriteCommand): Promise<void> {
  try {
    await queue.publish(command);
  } catch (error) {
    // Refused by the writer (embedded): not stored, and a retry would be refused too. A bug: 500.
    if (error instanceof QueueItemRefusedError) throw error;
    // The cause is logged with the 503, not shown: it names internal addresses.
    throw new CreateOutcomeUnknownError(
      'the create could not be handed to the write queue; retry with the same Idempotency-Key',
      { cause: error },
    );
  }
}

/** Backpressure: refuse before taking a number, so a refused create never leaves a gap. */
function ensureAccepting(queue: WriteQueue): void {
  if (!queue.accepting())
    throw new UnavailableError('the write queue is full, unreachable or shutting down; retry shortly');
}
