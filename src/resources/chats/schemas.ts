import { numberPageQuerySchema } from '../../http/pagination.ts';
import { commonErrors, errorRef, idempotencyHeaders, numberSchema, tokenParam } from '../../http/schemas.ts';

export const chatSchema = {
  $id: 'Chat',
  type: 'object',
  required: ['number', 'messages_count', 'created_at', 'updated_at'],
  properties: {
    number: { type: 'integer', description: '1, 2, 3… per application' },
    messages_count: {
      type: 'integer',
      description: 'Persisted messages; may lag creation by about a second',
    },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
  },
} as const;

const chatRef = { $ref: 'Chat#' } as const;
const appParams = { type: 'object', required: ['token'], properties: tokenParam } as const;

export const createChat = {
  tags: ['chats'],
  summary: 'Create a chat (no body needed)',
  description: 'Answers 201 once the chat is durably queued for storage; its number is final.',
  params: appParams,
  headers: idempotencyHeaders,
  response: { 201: chatRef, 413: errorRef, 415: errorRef, 503: errorRef, ...commonErrors },
} as const;

export const listChats = {
  tags: ['chats'],
  summary: 'List chats, ordered by number',
  params: appParams,
  querystring: { type: 'object', properties: numberPageQuerySchema },
  response: { 200: { type: 'array', items: chatRef }, ...commonErrors },
} as const;

export const getChat = {
  tags: ['chats'],
  summary: 'Get a chat',
  params: {
    type: 'object',
    required: ['token', 'number'],
    properties: { ...tokenParam, number: numberSchema },
  },
  response: { 200: chatRef, ...commonErrors },
} as const;
