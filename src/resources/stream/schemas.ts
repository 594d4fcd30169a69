import { numberPageQuerySchema } from '../../http/pagination.ts';
import { commonErrors, numberSchema, tokenParam } from '../../http/schemas.ts';

/** `N` or `N:E`: the last message number, and the last edit of the chat's edit sequence once there is one. */
const position = '^(0|[1-9][0-9]{0,9})(:(0|[1-9][0-9]{0,9}))?$';

export const streamMessages = {
  operationId: 'streamMessages',
  tags: ['messages'],
  summary: 'Live messages of a chat (Server-Sent Events)',
  description: [
    'A `text/event-stream` of the chat: `event: created` for each stored message, strictly in number order,',
    'each once, with `id:` = its number; `event: edited` for an edit of a message already sent. Once the chat',
    'has had an edit, ids carry the position in its edit sequence too: `id: N:E` (the last message number',
    'sent, the last edit sent), so Last-Event-ID always means "every message up to N, every edit up to E".',
    'Resume with Last-Event-ID (browsers send it by themselves): first the edits made after E to messages up',
    'to N, then everything stored after N (with its current text), in order, then live: no gap and no',
    'duplicate. ?after=N (without Last-Event-ID) resumes after message N for a client that has just read the',
    'chat: edits count from then. Comment lines (`: heartbeat`) keep idle connections open. A client',
    'that falls too far behind, and every client when the server shuts down, gets `event: reconnect` (JSON',
    'data with code, message, last_event_id) and the stream ends: reconnect with Last-Event-ID.',
  ].join(' '),
  params: {
    type: 'object',
    required: ['token', 'chat'],
    properties: { ...tokenParam, chat: numberSchema },
  },
  querystring: {
    type: 'object',
    properties: {
      after: { ...numberPageQuerySchema.after, description: 'Start after this message number' },
    },
  },
  headers: {
    type: 'object',
    properties: {
      'last-event-id': {
        type: 'string',
        pattern: position,
        description: 'The last id received; takes precedence over ?after',
      },
    },
  },
  response: {
    200: {
      description: 'The event stream (it stays open)',
      content: { 'text/event-stream': { schema: { type: 'string' } } },
    },
    ...commonErrors,
  },
} as const;
