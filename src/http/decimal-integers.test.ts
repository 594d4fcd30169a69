import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { decimalIntegers } from './decimal-integers.ts';

describe('decimalIntegers', () => {
  const schema = {
    type: 'object',
    properties: { token: { type: 'string' }, number: { type: 'integer', minimum: 1 } },
  };
  const validate = decimalIntegers(schema, new Ajv({ coerceTypes: 'array' }).compile(schema));

  it('lets decimal integers through to the schema, which coerces and bounds them', () => {
    const data: Record<string, unknown> = { token: '0x1', number: '42' };
    assert.equal(validate(data), true);
    assert.equal(data.number, 42);
    assert.equal(validate({ number: '0' }), false);
    assert.equal(validate.errors?.[0]?.keyword, 'minimum');
    assert.equal(validate({ number: '-3' }), false);
    assert.equal(validate.errors?.[0]?.keyword, 'minimum');
    assert.equal(validate({}), true);
    assert.equal(validate.errors, null);
  });

  it('rejects every other spelling of a number before Ajv can coerce it', () => {
    for (const spelling of ['01', '0x1', '1e0', '1.0', '+1', ' 1', '1 ', '0b1', '', '١']) {
      assert.equal(validate({ number: spelling }), false, JSON.stringify(spelling));
      assert.equal(validate.errors?.[0]?.instancePath, '/number');
      assert.match(validate.errors?.[0]?.message ?? '', /decimal/);
    }
    assert.equal(validate({ number: ['7', '08'] }), false);
  });

  it('returns the validator unchanged when the schema has no integer', () => {
    const strings = { type: 'object', properties: { q: { type: 'string' } } };
    const plain = new Ajv().compile(strings);
    assert.equal(decimalIntegers(strings, plain), plain);
  });
});
