/**
 * Write commands as the sequencer keeps them while their create is in flight (see Sequencer): the
 * command is recorded before its number exists, in the same atomic step that hands the number out, so
 * it is written with number 0 and numbered when it is taken back.
 */
import type { WriteCommand } from './types.ts';

/**
 * The command with its number: the command's own, and the one in the stored idempotency answer (the
 * 201's body, whose `number` is the create's number).
 */
export function numbered<C extends WriteCommand>(command: C, number: number): C {
  const { idempotency } = command;
  if (!idempotency) return { ...command, number };
  const response = JSON.stringify({ ...(JSON.parse(idempotency.response) as object), number });
  return { ...command, number, idempotency: { ...idempotency, response } };
}

/** Shape check of a command read back from outside the process (a queue, Redis). */
export function isWriteCommand(body: unknown): body is WriteCommand {
  if (typeof body !== 'object' || body === null || Buffer.isBuffer(body)) return false;
  const kind = (body as { kind?: unknown }).kind;
  return kind === 'chat.create' || kind === 'message.create';
}
