/**
 * Write commands as the sequencer keeps them while their create is in flight (see Sequencer): the
 * command is recorded before its number exists, in the same atomic step that hands the number out, so
 * it is written with number 0 and numbered when it is taken back.
 */
import { MAX_NUMBER } from './paging.ts';
import { isCanonicalTime } from './time.ts';
import type { IdempotencyRecord, WriteCommand } from './types.ts';

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

/**
 * The largest message body, in UTF-8 bytes, that every store keeps whatever the body holds (the ceiling of
 * MESSAGE_MAX_BYTES). MySQL keeps the 201 of an idempotent create (MEDIUMTEXT, 16 MiB) with the body
 * JSON-escaped, up to 6 bytes per byte for control characters, and sends it in one statement of at most
 * max_allowed_packet (16 MiB by default), where escaping adds one more byte per backslash.
 */
export const MESSAGE_MAX_BYTES_LIMIT = 1024 * 1024;

/**
 * Why each command of a batch can never be stored (index → why); the others can. The API builds only valid
 * commands. The writer checks anyway, so that one it cannot store (a bug, or a queue holding another
 * version's commands) is refused alone, instead of failing its whole batch at every retry (see
 * Store.persistBatch).
 */
export function unstorable(commands: readonly WriteCommand[]): Map<number, string> {
  const refused = new Map<number, string>();
  for (const [i, command] of commands.entries()) {
    const fault = faultOf(command);
    if (fault !== undefined) refused.set(i, fault);
  }
  return refused;
}

function faultOf(command: WriteCommand): string | undefined {
  if (!Number.isSafeInteger(command.applicationId) || command.applicationId < 1)
    return 'applicationId is not a positive integer';
  if (typeof command.at !== 'string' || !isCanonicalTime(command.at))
    return 'at is not a UTC time in toISOString() form';
  const { idempotency } = command;
  if (idempotency !== undefined && !isRecord(idempotency))
    return 'idempotency is not a record of four strings';
  if (command.kind === 'chat.create') return isNumber(command.number) ? undefined : 'number is out of range';
  if (command.kind !== 'message.create') return `unknown kind ${JSON.stringify(String(kindOf(command)))}`;
  if (!isNumber(command.chatNumber) || !isNumber(command.number)) return 'a number is out of range';
  const { body } = command;
  if (typeof body !== 'string' || body.length === 0) return 'body is not a non-empty string';
  if (!body.isWellFormed()) return 'body has an unpaired surrogate';
  if (Buffer.byteLength(body) > MESSAGE_MAX_BYTES_LIMIT)
    return `body is over ${MESSAGE_MAX_BYTES_LIMIT} bytes`;
  return undefined;
}

/** The kind of a command the type says cannot exist (one from another version). */
function kindOf(command: never): unknown {
  return (command as { kind?: unknown }).kind;
}

function isNumber(value: number): boolean {
  return Number.isInteger(value) && value >= 1 && value <= MAX_NUMBER;
}

function isRecord(record: IdempotencyRecord): boolean {
  return (
    typeof record === 'object' &&
    record !== null &&
    [record.scope, record.key, record.fingerprint, record.response].every((part) => typeof part === 'string')
  );
}
