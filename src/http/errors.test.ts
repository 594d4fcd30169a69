import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotFoundError, UnavailableError } from '../domain/errors.ts';
import { toAppError } from './errors.ts';

describe('error mapping', () => {
  it('keeps application errors as they are', () => {
    const error = new NotFoundError('chat');
    assert.equal(toAppError(error), error);
    assert.equal(error.status, 404);
    assert.equal(error.code, 'chat_not_found');
    assert.equal(new UnavailableError('busy', { retryAfter: 3 }).retryAfter, 3);
  });

  it('maps fastify validation and content-type failures to 422, 415 and 413', () => {
    const validation = Object.assign(new Error('body/name must be string'), {
      validation: [{ instancePath: '/name', message: 'must be string' }],
      validationContext: 'body',
    });
    assert.equal(toAppError(validation)?.status, 422);
    assert.equal(
      toAppError(Object.assign(new Error('x'), { code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' }))?.status,
      415,
    );
    const tooLarge = toAppError(
      Object.assign(new Error('Request body is too large'), {
        code: 'FST_ERR_CTP_BODY_TOO_LARGE',
        statusCode: 413,
      }),
    );
    assert.equal(tooLarge?.status, 413);
    assert.equal(tooLarge?.code, 'payload_too_large');
  });

  it('leaves unknown errors unmapped, so they become a bare 500', () => {
    assert.equal(toAppError(new TypeError('boom')), undefined);
    assert.equal(toAppError(Object.assign(new Error('db'), { statusCode: 500 })), undefined);
    assert.equal(toAppError('a string'), undefined);
  });
});
