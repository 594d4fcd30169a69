import type { PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { IdempotencyRecord, WriteCommand } from '../../domain/types.ts';
import { sqlTime, toSqlTime } from './rows.ts';

/**
 * persistBatch, split in a pure plan (deduplicated; computed once, reused by every retry) and the
 * statements that store it in one transaction.
 *
 * Locking protocol. Several writer processes persist batches at once, possibly naming the same chats. The
 * transaction runs at READ COMMITTED (set per session in store.ts: no gap locks, and every statement reads
 * the latest commits), and takes its locks in one global order: application rows (ascending id) before
 * chat rows (ascending id), each set in one statement. So no two batches wait on each other in a cycle.
 * - A chat row is inserted only under the X lock of its application row. A batch that finds a chat missing
 *   locks the application, reads again (a concurrent batch may have stored it meanwhile) and inserts what is
 *   still missing: so what it inserts is new, and chats_count grows by exactly that.
 * - A message row is inserted only under the X lock of its chat row, taken before reading which numbers
 *   are stored: so the numbers it inserts are new, and messages_count grows by exactly that.
 * Locking the parents up front also avoids the classic deadlock of this schema: an insert takes a shared
 * lock on the parent row for its foreign key, and two batches that both then update the parent's count
 * would each wait for the other's shared lock to go.
 */

export interface PlannedChat {
  key: string;
  applicationId: number;
  number: number;
  /** The earliest time any command of the batch names the chat with ('YYYY-MM-DD hh:mm:ss.fff'). */
  at: string;
}

interface PlannedMessage {
  chat: PlannedChat;
  number: number;
  body: string;
  at: string;
}

interface PlannedRecord {
  record: IdempotencyRecord;
  at: string;
}

export interface BatchPlan {
  chats: PlannedChat[];
  messages: PlannedMessage[];
  records: PlannedRecord[];
}

/** Stored chat ids by PlannedChat.key, and the created_at each had when read. */
type ChatIds = Map<string, { id: number; createdAt: string }>;

/** Thrown when a batch names an application that does not exist; nothing is stored (see persistBatch). */
export class UnknownApplicationError extends Error {
  readonly applicationIds: number[];
  constructor(applicationIds: number[]) {
    super(`batch names unknown application id(s) ${applicationIds.join(', ')}; nothing was stored`);
    this.name = 'UnknownApplicationError';
    this.applicationIds = applicationIds;
  }
}

/**
 * Folds a batch of storable commands (see `unstorable`): one entry per chat (with the earliest time), the
 * first of several copies of one message or idempotency record (a redelivery repeats the command; the first
 * is what an in-order replay would have kept).
 */
export function planBatch(commands: readonly WriteCommand[]): BatchPlan {
  const chats = new Map<string, PlannedChat>();
  const messages = new Map<string, PlannedMessage>();
  const records = new Map<string, PlannedRecord>();
  const chatFor = (applicationId: number, number: number, at: string): PlannedChat => {
    const key = `${applicationId}:${number}`;
    const chat = chats.get(key);
    if (!chat) {
      const planned = { key, applicationId, number, at };
      chats.set(key, planned);
      return planned;
    }
    if (at < chat.at) chat.at = at;
    return chat;
  };
  for (const command of commands) {
    const at = toSqlTime(command.at);
    if (command.kind === 'chat.create') {
      chatFor(command.applicationId, command.number, at);
    } else {
      const chat = chatFor(command.applicationId, command.chatNumber, at);
      const key = `${chat.key}:${command.number}`;
      if (!messages.has(key)) messages.set(key, { chat, number: command.number, body: command.body, at });
    }
    const record = command.idempotency;
    if (record) {
      const key = JSON.stringify([record.scope, record.key]);
      if (!records.has(key)) records.set(key, { record, at });
    }
  }
  // Key order, so that two batches storing the same keys lock them in the same order.
  const sorted = [...records.values()].sort(
    (a, b) => compare(a.record.scope, b.record.scope) || compare(a.record.key, b.record.key),
  );
  return { chats: [...chats.values()], messages: [...messages.values()], records: sorted };
}

/** Stores a planned batch on `connection`, inside a transaction the caller opened and will commit. */
export async function writeBatch(connection: PoolConnection, plan: BatchPlan): Promise<void> {
  const ids = await readChatIds(connection, plan.chats);
  const created = await createMissingChats(connection, plan.chats, ids);
  const lockedIds = await lockChats(connection, plan, ids, created);
  await storeMessages(connection, plan, ids, created, lockedIds);
  await storeRecords(connection, plan.records);
}

/** Inserts the chats nobody stored yet, under their applications' locks; returns their keys. */
async function createMissingChats(
  connection: PoolConnection,
  chats: PlannedChat[],
  ids: ChatIds,
): Promise<Set<string>> {
  const created = new Set<string>();
  const missing = chats.filter((chat) => !ids.has(chat.key));
  if (missing.length === 0) return created;

  const applicationIds = [...new Set(missing.map((chat) => chat.applicationId))].sort((a, b) => a - b);
  const [locked] = await connection.query<RowDataPacket[]>(
    'SELECT id FROM applications WHERE id IN (?) ORDER BY id FOR UPDATE',
    [applicationIds],
  );
  if (locked.length !== applicationIds.length) {
    const known = new Set(locked.map((row) => Number(row.id)));
    throw new UnknownApplicationError(applicationIds.filter((id) => !known.has(id)));
  }

  // Another batch may have stored some of them between the first read and the lock; its commit is visible
  // to this statement (READ COMMITTED), and no one else can store more while the locks are held.
  for (const [key, value] of await readChatIds(connection, missing)) ids.set(key, value);
  const insert = missing.filter((chat) => !ids.has(chat.key));
  if (insert.length === 0) return created;

  await connection.query('INSERT INTO chats (application_id, number, created_at, updated_at) VALUES ?', [
    insert.map((chat) => [chat.applicationId, chat.number, chat.at, chat.at]),
  ]);
  // Ids of a multi-row insert are consecutive only under some innodb_autoinc_lock_mode settings: read them.
  for (const [key, value] of await readChatIds(connection, insert)) {
    ids.set(key, value);
    created.add(key);
  }
  if (created.size !== insert.length) throw new Error('inserted chats could not be read back');

  const added = new Map<number, number>();
  for (const chat of insert) added.set(chat.applicationId, (added.get(chat.applicationId) ?? 0) + 1);
  await addCounts(connection, 'applications', 'chats_count', added);
  return created;
}

/**
 * Takes the X locks of the stored chats the batch changes: those that get messages and those whose
 * creation time moves back. Chats this batch inserted are locked by the insert already. Returns the ids
 * locked. An earlier time in the batch moves created_at (and updated_at) back: the distributed queue does
 * not order across parents, so a message may be stored before its chat.create, and the earliest time wins.
 */
async function lockChats(
  connection: PoolConnection,
  plan: BatchPlan,
  ids: ChatIds,
  created: Set<string>,
): Promise<Set<number>> {
  const wanted = new Map<number, PlannedChat>();
  for (const message of plan.messages)
    if (!created.has(message.chat.key)) wanted.set(ids.get(message.chat.key)!.id, message.chat);
  for (const chat of plan.chats) {
    const stored = ids.get(chat.key)!;
    if (!created.has(chat.key) && chat.at < stored.createdAt) wanted.set(stored.id, chat);
  }
  if (wanted.size === 0) return new Set();

  const order = [...wanted.keys()].sort((a, b) => a - b);
  const [rows] = await connection.query<RowDataPacket[]>(
    'SELECT id, created_at FROM chats WHERE id IN (?) ORDER BY id FOR UPDATE',
    [order],
  );
  for (const row of rows) {
    const chat = wanted.get(Number(row.id))!;
    // Creation only: updated_at already says when the chat last changed (its messages_count, see addCounts).
    if (chat.at < sqlTime(row.created_at))
      await connection.query('UPDATE chats SET created_at = ? WHERE id = ?', [chat.at, row.id]);
  }
  return new Set(order);
}

/** Inserts the messages not stored yet and adds exactly those to their chats' messages_count. */
async function storeMessages(
  connection: PoolConnection,
  plan: BatchPlan,
  ids: ChatIds,
  created: Set<string>,
  lockedIds: Set<number>,
): Promise<void> {
  if (plan.messages.length === 0) return;
  const chatId = (message: PlannedMessage) => ids.get(message.chat.key)!.id;

  // Numbers already stored in chats that existed before this batch (a replay): safe to read now, since
  // nobody inserts into a chat without holding its lock, which this transaction holds.
  const asked = new Map<number, number[]>();
  for (const message of plan.messages) {
    if (created.has(message.chat.key)) continue;
    const id = chatId(message);
    if (!lockedIds.has(id)) throw new Error(`chat ${id} is not locked`);
    const numbers = asked.get(id);
    if (numbers) numbers.push(message.number);
    else asked.set(id, [message.number]);
  }
  const stored = new Set<string>();
  if (asked.size > 0) {
    const where = [...asked.keys()].map(() => '(chat_id = ? AND number IN (?))').join(' OR ');
    const [rows] = await connection.query<RowDataPacket[]>(
      `SELECT chat_id, number FROM messages WHERE ${where}`,
      [...asked].flat(),
    );
    for (const row of rows) stored.add(`${row.chat_id}:${row.number}`);
  }

  const fresh = plan.messages.filter((message) => !stored.has(`${chatId(message)}:${message.number}`));
  for (const chunk of chunks(fresh, (message) => message.body)) {
    const [result] = await connection.query<ResultSetHeader>(
      'INSERT INTO messages (chat_id, number, body, created_at, updated_at) VALUES ?',
      [chunk.map((message) => [chatId(message), message.number, message.body, message.at, message.at])],
    );
    if (result.affectedRows !== chunk.length)
      throw new Error(`stored ${result.affectedRows} of ${chunk.length} messages`);
  }

  const added = new Map<number, number>();
  for (const message of fresh) added.set(chatId(message), (added.get(chatId(message)) ?? 0) + 1);
  await addCounts(connection, 'chats', 'messages_count', added);
}

/**
 * Stores the idempotency records. One already stored keeps its answer on a replay (the same or an older
 * time); a create that reused the key after it expired (before the purge removed it) replaces it, or its
 * retries would not find it. MySQL applies the assignments in order: created_at, compared first, goes last.
 */
async function storeRecords(connection: PoolConnection, records: PlannedRecord[]): Promise<void> {
  for (const chunk of chunks(records, ({ record }) => record.response)) {
    await connection.query(
      `INSERT INTO idempotency_keys (scope, \`key\`, fingerprint, response, created_at) VALUES ?
       ON DUPLICATE KEY UPDATE
         fingerprint = IF(VALUES(created_at) > created_at, VALUES(fingerprint), fingerprint),
         response = IF(VALUES(created_at) > created_at, VALUES(response), response),
         created_at = GREATEST(created_at, VALUES(created_at))`,
      [chunk.map(({ record, at }) => [record.scope, record.key, record.fingerprint, record.response, at])],
    );
  }
}

/** Reads the ids of those chats that are stored, with one range probe per application. */
async function readChatIds(connection: PoolConnection, chats: PlannedChat[]): Promise<ChatIds> {
  const ids: ChatIds = new Map();
  if (chats.length === 0) return ids;
  const byApplication = new Map<number, number[]>();
  for (const chat of chats) {
    const numbers = byApplication.get(chat.applicationId);
    if (numbers) numbers.push(chat.number);
    else byApplication.set(chat.applicationId, [chat.number]);
  }
  const where = [...byApplication.keys()].map(() => '(application_id = ? AND number IN (?))').join(' OR ');
  const [rows] = await connection.query<RowDataPacket[]>(
    `SELECT id, application_id, number, created_at FROM chats WHERE ${where}`,
    [...byApplication].flat(),
  );
  for (const row of rows)
    ids.set(`${row.application_id}:${row.number}`, {
      id: Number(row.id),
      createdAt: sqlTime(row.created_at),
    });
  return ids;
}

/**
 * Adds `added` (id → amount) to one counter column, in one statement, rows in ascending id order. A count is
 * part of its parent's representation, so updated_at moves with it (never backwards: a rename may carry a
 * later time from another process's clock).
 */
async function addCounts(
  connection: PoolConnection,
  table: 'applications' | 'chats',
  column: 'chats_count' | 'messages_count',
  added: Map<number, number>,
): Promise<void> {
  if (added.size === 0) return;
  const entries = [...added].sort(([a], [b]) => a - b);
  const cases = entries.map(() => 'WHEN ? THEN ?').join(' ');
  await connection.query(
    `UPDATE ${table} SET ${column} = ${column} + CASE id ${cases} END, updated_at = GREATEST(updated_at, ?)
     WHERE id IN (?)`,
    [...entries.flat(), toSqlTime(new Date().toISOString()), entries.map(([id]) => id)],
  );
}

// Statements stay well below max_allowed_packet (4 MiB on old MySQL, 16 MiB on MariaDB): a batch of big
// bodies is sent in several inserts. Escaping at most doubles a string's bytes.
const STATEMENT_BUDGET = 1 << 20;

function* chunks<T>(items: T[], text: (item: T) => string): Generator<T[]> {
  let chunk: T[] = [];
  let bytes = 0;
  for (const item of items) {
    const size = 2 * Buffer.byteLength(text(item), 'utf8') + 128;
    if (chunk.length > 0 && bytes + size > STATEMENT_BUDGET) {
      yield chunk;
      chunk = [];
      bytes = 0;
    }
    chunk.push(item);
    bytes += size;
  }
  if (chunk.length > 0) yield chunk;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
