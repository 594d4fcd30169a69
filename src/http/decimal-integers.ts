import type { ErrorObject, ValidateFunction } from 'ajv';

/** An integer as written in decimal: no `+`, no leading zero, no exponent, fraction, hex or spaces. */
const DECIMAL = /^(?:0|-?[1-9][0-9]*)$/;

interface ObjectSchema {
  properties?: Record<string, { type?: unknown }>;
}

/**
 * Ajv's coercion reads a path or query parameter as `Number()` does, so `chats/0x1`, `01`, `1e0`, `1.0` and
 * `%2B1` would all name chat 1. A resource has one address: every integer parameter of `schema` must be
 * written in decimal, checked on the raw text before `validate` coerces it (Ajv has no option for this).
 */
export function decimalIntegers(schema: object, validate: ValidateFunction): ValidateFunction {
  const names = integerProperties(schema);
  if (names.length === 0) return validate;
  const check = ((data: Record<string, unknown> | null) => {
    const wrong = data ? names.find((name) => !decimal(data[name])) : undefined;
    if (wrong !== undefined) {
      check.errors = [notDecimal(wrong)];
      return false;
    }
    const valid = validate(data);
    check.errors = validate.errors;
    return valid;
  }) as ValidateFunction;
  check.errors = null;
  return check;
}

/** The names of an object schema's integer properties (none when `schema` is not one). */
export function integerProperties(schema: unknown): string[] {
  return Object.entries((schema as ObjectSchema | undefined)?.properties ?? {})
    .filter(([, property]) => property.type === 'integer')
    .map(([name]) => name);
}

/** Whether `text` is an integer written in decimal digits (see DECIMAL). */
export function isDecimal(text: string | undefined): boolean {
  return text !== undefined && DECIMAL.test(text);
}

/** Absent, or text in decimal (an array when the parameter is repeated: Ajv then reports it). */
function decimal(value: unknown): boolean {
  if (typeof value === 'string') return isDecimal(value);
  if (Array.isArray(value)) return value.every(decimal);
  return true;
}

function notDecimal(name: string): ErrorObject {
  return {
    instancePath: `/${name}`,
    schemaPath: `#/properties/${name}/type`,
    keyword: 'type',
    params: { type: 'integer' },
    message: 'must be an integer written in decimal digits',
  };
}
