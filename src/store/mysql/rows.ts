import type { RowDataPacket } from 'mysql2/promise';
import { isCanonicalTime } from '../../domain/time.ts';
import type { Application, Chat, Message } from '../../domain/types.ts';

/**
 * Times are DATETIME(3) columns holding UTC. DATETIME, unlike TIMESTAMP, is never converted by the server
 * (the session time_zone does not touch it) and reaches to year 9999; it takes 7 bytes where the ISO text
 * would take 24, and operators can use date functions on it. The driver runs with `dateStrings`, so no JS
 * Date (and with it no process time zone) is ever involved: the conversion is text to text, below.
 */

/**
 * '2024-01-01T00:00:00.000Z' → '2024-01-01 00:00:00.000'. Only the canonical form is accepted: an ISO
 * string without a zone would have to be guessed as local time, which is exactly the drift to avoid.
 */
export function toSqlTime(iso: string): string {
  if (!isCanonicalTime(iso))
    throw new RangeError(`not a UTC time in toISOString() form: ${JSON.stringify(iso)}`);
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
}

/**
 * A DATETIME(3) as the driver hands it over, in the same form `toSqlTime` produces, so the two compare as
 * strings. The binary protocol (execute) omits a zero fraction; the text protocol (query) never does.
 */
export function sqlTime(value: string): string {
  return value.length >= 23 ? value.slice(0, 23) : `${value.slice(0, 19)}.000`;
}

/** '2024-01-01 00:00:00[.000]' → '2024-01-01T00:00:00.000Z'. */
export function fromSqlTime(value: string): string {
  const sql = sqlTime(value);
  return `${sql.slice(0, 10)}T${sql.slice(11)}Z`;
}

// Column lists shared by the reads and the read-backs after writes; times are converted in JS.
export const APPLICATION_COLUMNS = 'id, token, name, chats_count, created_at, updated_at';
export const CHAT_COLUMNS = 'id, application_id, number, messages_count, created_at, updated_at';
export const MESSAGE_COLUMNS = 'number, body, created_at, updated_at';

export interface ApplicationRow extends RowDataPacket {
  id: number;
  token: string;
  name: string;
  chats_count: number;
  created_at: string;
  updated_at: string;
}

export interface ChatRow extends RowDataPacket {
  id: number;
  application_id: number;
  number: number;
  messages_count: number;
  created_at: string;
  updated_at: string;
}

export interface MessageRow extends RowDataPacket {
  number: number;
  body: string;
  created_at: string;
  updated_at: string;
}

/** A message joined with its chat (scanMessages): the chat's columns, then the message's, renamed. */
export interface ScanRow extends ChatRow {
  message_number: number;
  body: string;
  message_created_at: string;
  message_updated_at: string;
}

export function toApplication(row: ApplicationRow): Application {
  return {
    id: Number(row.id),
    token: row.token,
    name: row.name,
    chatsCount: Number(row.chats_count),
    createdAt: fromSqlTime(row.created_at),
    updatedAt: fromSqlTime(row.updated_at),
  };
}

export function toChat(row: ChatRow): Chat {
  return {
    id: Number(row.id),
    applicationId: Number(row.application_id),
    number: Number(row.number),
    messagesCount: Number(row.messages_count),
    createdAt: fromSqlTime(row.created_at),
    updatedAt: fromSqlTime(row.updated_at),
  };
}

export function toMessage(row: MessageRow, chatNumber: number): Message {
  return {
    chatNumber,
    number: Number(row.number),
    body: row.body,
    createdAt: fromSqlTime(row.created_at),
    updatedAt: fromSqlTime(row.updated_at),
  };
}
