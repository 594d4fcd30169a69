import { numberPageQuerySchema } from '../../http/pagination.ts';
import { commonErrors, errorRef, numberSchema, tokenParam } from '../../http/schemas.ts';

const position = '^(0|[1-9][0-9]{0,9})$';

export const streamMessages = {
  tags: ['messages'],
  summary: 'Live messages of a chat (Server-Sent Events)',
  description: [
    'A `text/event-stream` of the chat: `event: created` for each stored message, strictly in number order,',
    'each once, with `id:` = its number; `event: edited` for an edit of a message already sent, with `id:` =',
    'the highest number sent so far (so Last-Event-ID always means "every message up to here"). Resume with',
    'Last-Event-ID (browsers send it by themselves) or ?after=N: first everything stored after N, in order,',
    'then live, no gap and no duplicate. Comment lines (`: heartbeat`) keep idle connections open. A client',
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
    503: errorRef,
    ...commonErrors,
  },
} as const;
