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
        message: { type: 'string' },
        details: {},
      },
    },
  },
} as const;

export const errorRef = { $ref: 'Error#' } as const;

/**
 * The error responses most routes can give, for the OpenAPI document. 400: a percent-escape in the path
 * or query string that does not decode.
 */
export const commonErrors = {
  400: errorRef,
  404: errorRef,
  422: errorRef,
} as const;

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
      description: 'Repeating a create with the same key within 24 hours returns the original 201',
    },
  },
} as const;
