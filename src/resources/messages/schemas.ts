import { numberPageQuerySchema } from '../../http/pagination.ts';
import {
  bodyErrors,
  commonErrors,
  createdOf,
  idempotencyHeaders,
  numberSchema,
  pageOf,
  tokenParam,
} from '../../http/schemas.ts';

export const messageSchema = {
  $id: 'Message',
  type: 'object',
  required: ['number', 'chat_number', 'body', 'created_at', 'updated_at'],
  properties: {
    number: { type: 'integer', description: '1, 2, 3… per chat' },
    chat_number: { type: 'integer' },
    body: { type: 'string' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;

const messageRef = { $ref: 'Message#' } as const;
const chatParams = {
  type: 'object',
  required: ['token', 'chat'],
  properties: { ...tokenParam, chat: numberSchema },
} as const;
const messageParams = {
  type: 'object',
  required: ['token', 'chat', 'number'],
  properties: { ...tokenParam, chat: numberSchema, number: numberSchema },
} as const;
// Length in bytes is checked by the service against MESSAGE_MAX_BYTES; the schema only requires a string.
const bodySchema = {
  type: 'object',
  required: ['body'],
  additionalProperties: false,
  properties: {
    body: {
      type: 'string',
      minLength: 1,
      description: 'At most MESSAGE_MAX_BYTES bytes of UTF-8 (64 KiB by default)',
    },
  },
} as const;

export const createMessage = {
  operationId: 'createMessage',
  tags: ['messages'],
  summary: 'Post a message',
  description:
    'Answers 201 once the message is stored (embedded) or confirmed by the broker (distributed): it will ' +
    'be stored, and its number is final.',
  params: chatParams,
  headers: idempotencyHeaders,
  body: bodySchema,
  response: { 201: createdOf(messageRef, 'The message, with its number'), ...bodyErrors, ...commonErrors },
} as const;

export const listMessages = {
  operationId: 'listMessages',
  tags: ['messages'],
  summary: 'List messages, ordered by number',
  params: chatParams,
  querystring: { type: 'object', properties: numberPageQuerySchema },
  response: { 200: pageOf(messageRef, 'A page of messages, ascending'), ...commonErrors },
} as const;

export const getMessage = {
  operationId: 'getMessage',
  tags: ['messages'],
  summary: 'Get a message',
  params: messageParams,
  response: { 200: { description: 'The message', ...messageRef }, ...commonErrors },
} as const;

export const editMessage = {
  operationId: 'editMessage',
  tags: ['messages'],
  summary: 'Edit a message body',
  params: messageParams,
  body: bodySchema,
  response: { 200: { description: 'The edited message', ...messageRef }, ...bodyErrors, ...commonErrors },
} as const;

export const searchMessages = {
  operationId: 'searchMessages',
  tags: ['messages'],
  summary: 'Search a chat, newest first',
  description:
    'Case-insensitive substring match on the current bodies (like SQL LIKE %q%, every character literal). ' +
    'Embedded, finds every message created or edited before the search began (503 while the index is more than ' +
    '5 s behind); distributed, every message the search engine has indexed, which follows a create or edit by ' +
    'the index lag, seconds (503 while the search engine is down).',
  params: chatParams,
  querystring: {
    type: 'object',
    properties: {
      q: { type: 'string', maxLength: 1024, description: 'Substring to find; required, not empty' },
      query: { type: 'string', maxLength: 1024, description: 'Alias of q, read only when q is absent' },
      limit: numberPageQuerySchema.limit,
      before: numberPageQuerySchema.before,
    },
  },
  response: { 200: pageOf(messageRef, 'A page of matches, newest first'), ...commonErrors },
} as const;
