import { numberPageQuerySchema } from '../../http/pagination.ts';
import { commonErrors, errorRef, idempotencyHeaders, numberSchema, tokenParam } from '../../http/schemas.ts';

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
  properties: { body: { type: 'string', minLength: 1 } },
} as const;
const bodyErrors = { 400: errorRef, 413: errorRef, 415: errorRef } as const;

export const createMessage = {
  tags: ['messages'],
  summary: 'Post a message',
  description: 'Answers 201 once the message is durably queued for storage; its number is final.',
  params: chatParams,
  headers: idempotencyHeaders,
  body: bodySchema,
  response: { 201: messageRef, 503: errorRef, ...bodyErrors, ...commonErrors },
} as const;

export const listMessages = {
  tags: ['messages'],
  summary: 'List messages, ordered by number',
  params: chatParams,
  querystring: { type: 'object', properties: numberPageQuerySchema },
  response: { 200: { type: 'array', items: messageRef }, ...commonErrors },
} as const;

export const getMessage = {
  tags: ['messages'],
  summary: 'Get a message',
  params: messageParams,
  response: { 200: messageRef, ...commonErrors },
} as const;

export const editMessage = {
  tags: ['messages'],
  summary: 'Edit a message body',
  params: messageParams,
  body: bodySchema,
  response: { 200: messageRef, 503: errorRef, ...bodyErrors, ...commonErrors },
} as const;

export const searchMessages = {
  tags: ['messages'],
  summary: 'Search a chat, newest first',
  description:
    'Case-insensitive substring match on the current bodies (like SQL LIKE %q%, every character literal). ' +
    'Finds every message created or edited before the search began; 503 while the search index cannot say so ' +
    '(the search engine down, or the embedded index more than 5 s behind).',
  params: chatParams,
  querystring: {
    type: 'object',
    properties: {
      q: { type: 'string', maxLength: 1024, description: 'Substring to find' },
      query: { type: 'string', maxLength: 1024, description: 'Alias of q' },
      limit: numberPageQuerySchema.limit,
      before: numberPageQuerySchema.before,
    },
  },
  response: { 200: { type: 'array', items: messageRef }, 503: errorRef, ...commonErrors },
} as const;
