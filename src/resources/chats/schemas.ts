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

export const chatSchema = {
  $id: 'Chat',
  type: 'object',
  required: ['number', 'messages_count', 'created_at', 'updated_at'],
  properties: {
    number: { type: 'integer', description: '1, 2, 3… per application' },
    messages_count: {
      type: 'integer',
      description:
        'Stored messages: exact in embedded mode, behind creation by the persist lag when distributed',
    },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: {
      type: 'string',
      format: 'date-time',
      description: 'When the chat last changed: its creation, or the storing of a message (messages_count)',
    },
  },
} as const;

const chatRef = { $ref: 'Chat#' } as const;
const appParams = { type: 'object', required: ['token'], properties: tokenParam } as const;

export const createChat = {
  operationId: 'createChat',
  tags: ['chats'],
  summary: 'Create a chat (no body needed)',
  description:
    'Answers 201 once the chat is stored (embedded) or confirmed by the broker (distributed): it will be ' +
    'stored, and its number is final. A message can be posted to it at once.',
  params: appParams,
  headers: idempotencyHeaders,
  response: { 201: createdOf(chatRef, 'The chat, with its number'), ...bodyErrors, ...commonErrors },
} as const;

export const listChats = {
  operationId: 'listChats',
  tags: ['chats'],
  summary: 'List chats, ordered by number',
  params: appParams,
  querystring: { type: 'object', properties: numberPageQuerySchema },
  response: { 200: pageOf(chatRef, 'A page of chats, ascending'), ...commonErrors },
} as const;

export const getChat = {
  operationId: 'getChat',
  tags: ['chats'],
  summary: 'Get a chat',
  params: {
    type: 'object',
    required: ['token', 'number'],
    properties: { ...tokenParam, number: numberSchema },
  },
  response: { 200: { description: 'The chat', ...chatRef }, ...commonErrors },
} as const;
