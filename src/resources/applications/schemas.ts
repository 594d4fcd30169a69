import { commonErrors, errorRef, tokenParam } from '../../http/schemas.ts';

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
    chats_count: { type: 'integer', description: 'Persisted chats; may lag creation by about a second' },
    created_at: { type: 'string', format: 'date-time' },
    updated_at: { type: 'string', format: 'date-time' },
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
  tags: ['applications'],
  summary: 'Create an application',
  body: nameBody,
  response: { 201: applicationRef, 400: errorRef, 413: errorRef, 415: errorRef, 422: errorRef },
} as const;

export const getApplication = {
  tags: ['applications'],
  summary: 'Get an application by token',
  params: { type: 'object', required: ['token'], properties: tokenParam },
  response: { 200: applicationRef, ...commonErrors },
} as const;

export const renameApplication = {
  tags: ['applications'],
  summary: 'Rename an application',
  params: { type: 'object', required: ['token'], properties: tokenParam },
  body: nameBody,
  response: { 200: applicationRef, 413: errorRef, 415: errorRef, ...commonErrors },
} as const;

export const listApplications = {
  tags: ['applications'],
  summary: 'List applications (admin: reveals every token)',
  description:
    'When ADMIN_TOKEN is set, requires `Authorization: Bearer <ADMIN_TOKEN>`. Pages follow `Link: rel="next"`.',
  querystring: {
    type: 'object',
    properties: {
      limit: { type: 'integer', minimum: 1, description: 'Page size (default 50, capped at 1000)' },
      cursor: { type: 'string', maxLength: 512, description: 'Opaque cursor from a Link header' },
    },
  },
  response: { 200: { type: 'array', items: applicationRef }, 401: errorRef, 422: errorRef },
} as const;
