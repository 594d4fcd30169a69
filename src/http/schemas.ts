/** JSON schemas shared by several resources. */

export const errorSchema = {
  $id: 'Error',
  type: 'object',
  required: ['error'],
  properties: {
    error: {
      type: 'object',
      required: ['code', 'message'],
      properties: {
        code: { type: 'string', description: 'Stable machine-readable code, e.g. chat_not_found' },
        message: { type: 'string', description: 'For people; may change between versions' },
        details: {
          type: 'array',
          description: 'On 422: each invalid part of the request',
          items: {
            type: 'object',
            properties: {
              in: { type: 'string', description: 'body, params, querystring or headers' },
              path: { type: 'string', description: 'JSON pointer to the field, when there is one' },
              message: { type: 'string' },
            },
          },
        },
      },
    },
  },
} as const;

const errorRef = { $ref: 'Error#' } as const;

/**
 * Response headers, for the OpenAPI document only (`description` and `headers` beside a response schema
 * are read by @fastify/swagger and ignored by the serializer). Every response also carries X-Request-Id,
 * said once in the document's description rather than on each of them.
 */
const retryAfter = { type: 'integer', description: 'Seconds to wait before retrying' } as const;
const link = {
  type: 'string',
  description: 'When more remains: `<url>; rel="next"`, the next page (same limit and query)',
} as const;

/** A list page: the array, and the Link header to the next page. */
export function pageOf(items: { $ref: string }, description: string) {
  return { description, headers: { link }, type: 'array', items } as const;
}

/** A 201 that Idempotency-Key may replay. */
export function createdOf(schema: { $ref: string }, description: string) {
  const replayed = {
    type: 'string',
    enum: ['true'],
    description: 'Present when this is the stored answer to an earlier request with the same key',
  } as const;
  return { description, headers: { 'idempotent-replayed': replayed }, ...schema } as const;
}

export const errors = {
  400: { description: 'Malformed JSON, or a URL or query string that does not decode', ...errorRef },
  401: {
    description: 'Missing or wrong admin token',
    headers: { 'www-authenticate': { type: 'string', enum: ['Bearer'] } },
    ...errorRef,
  },
  404: { description: 'Unknown token, chat or message', ...errorRef },
  408: { description: 'The request did not arrive within REQUEST_TIMEOUT_MS', ...errorRef },
  413: { description: 'The request is larger than REQUEST_MAX_BYTES', ...errorRef },
  414: { description: 'A token or number in the path over 200 characters', ...errorRef },
  415: { description: 'A body that is not JSON in UTF-8', ...errorRef },
  417: { description: 'An Expect header other than 100-continue', ...errorRef },
  422: { description: 'Invalid or missing fields; `details` lists them', ...errorRef },
  431: { description: 'A request header over 16 KiB', ...errorRef },
  500: { description: 'An internal error, logged under the X-Request-Id', ...errorRef },
  505: { description: 'An HTTP version other than 1.0 and 1.1 in the request line', ...errorRef },
  503: {
    description: 'A dependency is unavailable or behind, or the server is shutting down; retry later',
    headers: { 'retry-after': retryAfter },
    ...errorRef,
  },
} as const;

/** Answered before routing (by the HTTP server or the socket), so any request can meet them. */
export const transportErrors = {
  408: errors[408],
  413: errors[413],
  417: errors[417],
  431: errors[431],
  505: errors[505],
} as const;

/**
 * The error responses every route with a token in its path can give: 503 too, since a read may wait on a
 * store or a reader.
 */
export const commonErrors = {
  400: errors[400],
  404: errors[404],
  414: errors[414],
  422: errors[422],
  500: errors[500],
  503: errors[503],
  ...transportErrors,
} as const;

/** What a route with a JSON body can answer besides. */
export const bodyErrors = { 400: errors[400], 413: errors[413], 415: errors[415] } as const;

// Any token up to the router's segment limit (maxParamLength, 200; longer is 414) is looked up, so a
// token that is merely unknown is a 404 whatever its length, as the API promises.
export const tokenParam = {
  token: { type: 'string', minLength: 1, maxLength: 200, description: 'The application token' },
} as const;

export const numberSchema = { type: 'integer', minimum: 1, maximum: 4294967295 } as const;

export const idempotencyHeaders = {
  type: 'object',
  properties: {
    'idempotency-key': {
      type: 'string',
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x21-\\x7e]+$',
      description:
        'Repeating a create with the same key within IDEMPOTENCY_TTL_HOURS (default 24) returns the original 201',
    },
  },
} as const;
