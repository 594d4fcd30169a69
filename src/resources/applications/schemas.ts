import { bodyErrors, commonErrors, errors, pageOf, tokenParam, transportErrors } from '../../http/schemas.ts';

export const applicationSchema = {
  $id: 'Application',
  type: 'object',
  required: ['token', 'name', 'chats_count', 'created_at', 'updated_at'],
  properties: {
    token: {
      type: 'string',
      description: 'Secret, system-generated; identifies the application in every URL',
    },
    name: { type: 'string' },
    chats_count: {
      type: 'integer',
      description:
        'Stored chats: exact in embedded mode, behind creation by the persist lag when distributed',
    },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: {
      type: 'string',
      format: 'date-time',
      description:
        'When the application last changed: its creation, a rename, or the storing of a chat (chats_count)',
    },
  },
} as const;

const nameBody = {
  type: 'object',
  required: ['name'],
  additionalProperties: false,
  properties: { name: { type: 'string', minLength: 1, maxLength: 255 } },
} as const;

const applicationRef = { $ref: 'Application#' } as const;

export const createApplication = {
  operationId: 'createApplication',
  tags: ['applications'],
  summary: 'Create an application',
  body: nameBody,
  response: {
    201: { description: 'The application, with its new token', ...applicationRef },
    ...bodyErrors,
    422: errors[422],
    500: errors[500],
    503: errors[503],
    ...transportErrors,
  },
} as const;

export const getApplication = {
  operationId: 'getApplication',
  tags: ['applications'],
  summary: 'Get an application by token',
  params: { type: 'object', required: ['token'], properties: tokenParam },
  response: { 200: { description: 'The application', ...applicationRef }, ...commonErrors },
} as const;

export const renameApplication = {
  operationId: 'renameApplication',
  tags: ['applications'],
  summary: 'Rename an application',
  params: { type: 'object', required: ['token'], properties: tokenParam },
  body: nameBody,
  response: {
    200: { description: 'The renamed application', ...applicationRef },
    ...bodyErrors,
    ...commonErrors,
  },
} as const;

export const listApplications = {
  operationId: 'listApplications',
  tags: ['applications'],
  summary: 'List applications (admin: reveals every token)',
  description:
    'When ADMIN_TOKEN is set, requires `Authorization: Bearer <ADMIN_TOKEN>`; without it the list is open. ' +
    'Oldest first; pages follow `Link: rel="next"`.',
  security: [{ admin: [] }],
  querystring: {
    type: 'object',
    properties: {
      limit: { type: 'integer', minimum: 1, default: 50, description: 'Page size (capped at 1000)' },
      cursor: { type: 'string', maxLength: 512, description: 'Opaque cursor from a Link header' },
    },
  },
  response: {
    200: pageOf(applicationRef, 'A page of applications'),
    400: errors[400],
    401: errors[401],
    422: errors[422],
    500: errors[500],
    503: errors[503],
    ...transportErrors,
  },
} as const;
