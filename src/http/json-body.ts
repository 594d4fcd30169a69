import type { FastifyRequest } from 'fastify';
import secureJson from 'secure-json-parse';
import { MalformedJsonError, UnsupportedMediaTypeError } from '../domain/errors.ts';

// Fatal: a body that is not UTF-8 is refused, not read with U+FFFD in place of its bytes (which would
// store a name or a message other than the one sent).
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The parser of every request body (fastify's, for `application/json`): the body as raw bytes, checked
 * to be UTF-8 (RFC 8259 allows no other encoding: a declared charset other than UTF-8 is 415), parsed
 * without prototype poisoning. An empty body is no body, so `POST .../chats` works with or without a
 * Content-Type; routes that need a body then answer 422.
 */
export function parseJsonBody(
  request: FastifyRequest,
  raw: Buffer,
  done: (error: Error | null, body?: unknown) => void,
): void {
  const charset = charsetOf(request.headers['content-type']);
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    done(new UnsupportedMediaTypeError(`JSON must be UTF-8, not ${charset}`));
    return;
  }
  if (raw.length === 0) {
    done(null, undefined);
    return;
  }
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    done(new MalformedJsonError('request body is not valid UTF-8'));
    return;
  }
  try {
    done(null, secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
  } catch {
    done(new MalformedJsonError());
  }
}

/** The charset parameter of a Content-Type, lowercased, when there is one. */
function charsetOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined || !contentType.includes(';')) return undefined;
  return /;\s*charset\s*=\s*"?([^";\s]+)"?/i.exec(contentType)?.[1]?.toLowerCase();
}

/**
 * The parser of every other Content-Type: no body is no body whatever it is declared as (`curl -XPOST` of a
 * chat with a stray `Content-Type: text/plain` creates it), and any body is 415, answered without reading it.
 */
export function refuseNonJsonBody(
  request: FastifyRequest,
  _payload: unknown,
  done: (error: Error | null, body?: unknown) => void,
): void {
  const { 'content-length': length, 'transfer-encoding': chunked } = request.headers;
  if (length === '0' || (length === undefined && chunked === undefined)) done(null, undefined);
  else done(new UnsupportedMediaTypeError());
}
