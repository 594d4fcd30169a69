/**
 * The one error model. Every error a client may see is an AppError with a stable machine code and an HTTP
 * status; anything else is a bug, logged and answered as a bare 500 (see http/errors.ts).
 */
/** One invalid part of a request (the shape the OpenAPI error schema declares, and the serializer keeps). */
export interface ErrorDetail {
  /** body, params, querystring or headers */
  in: string;
  /** JSON pointer to the field, when there is one */
  path?: string | undefined;
  message: string;
}

export class AppError extends Error {
  readonly code: string;
  readonly status: number;
  readonly details: ErrorDetail[] | undefined;
  /** Seconds a client should wait before retrying (sent as Retry-After). */
  readonly retryAfter: number | undefined;

  constructor(
    status: number,
    code: string,
    message: string,
    options?: { details?: ErrorDetail[]; retryAfter?: number },
  ) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.details = options?.details;
    this.retryAfter = options?.retryAfter;
  }
}

export class NotFoundError extends AppError {
  constructor(what: 'application' | 'chat' | 'message' | 'route', message?: string) {
    super(404, what === 'route' ? 'route_not_found' : `${what}_not_found`, message ?? `${what} not found`);
  }
}

/** The path exists, not with this method: the answer's `Allow` header lists the ones it has. */
export class MethodNotAllowedError extends AppError {
  constructor(method: string, path: string) {
    super(405, 'method_not_allowed', `${path} does not answer ${method}`);
  }
}

export class UriTooLongError extends AppError {
  constructor() {
    super(414, 'uri_too_long', 'a path segment is too long');
  }
}

export class ValidationError extends AppError {
  constructor(message: string, details?: ErrorDetail[]) {
    super(422, 'validation_failed', message, { details });
  }
}

/**
 * Text must be well-formed UTF-16: an unpaired surrogate cannot be stored as UTF-8, and SQLite would
 * silently store U+FFFD instead of what the 201 echoed.
 */
export function checkUnicode(field: string, value: string): void {
  if (!value.isWellFormed())
    throw new ValidationError(`${field} must be valid Unicode (it has an unpaired surrogate)`);
}

export class IdempotencyKeyReusedError extends AppError {
  constructor() {
    super(422, 'idempotency_key_reused', 'this Idempotency-Key was already used with a different request');
  }
}

export class UnauthorizedError extends AppError {
  constructor(message = 'a valid Authorization: Bearer <ADMIN_TOKEN> header is required') {
    super(401, 'unauthorized', message);
  }
}

export class MalformedJsonError extends AppError {
  constructor(message = 'request body is not valid JSON') {
    super(400, 'malformed_json', message);
  }
}

export class UnsupportedMediaTypeError extends AppError {
  constructor(message = 'request body must be JSON (Content-Type: application/json)') {
    super(415, 'unsupported_media_type', message);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor() {
    super(413, 'payload_too_large', 'request body is larger than this server accepts (REQUEST_MAX_BYTES)');
  }
}

/** A request the server cannot read as HTTP it serves (the target, the headers, the encoding). */
export class BadRequestError extends AppError {
  constructor(message: string) {
    super(400, 'bad_request', message);
  }
}

export class ExpectationFailedError extends AppError {
  constructor() {
    super(417, 'expectation_failed', 'only Expect: 100-continue is supported');
  }
}

export class HttpVersionNotSupportedError extends AppError {
  constructor(version: string) {
    super(505, 'http_version_not_supported', `HTTP/${version} is not supported: send HTTP/1.1 or HTTP/1.0`);
  }
}

/**
 * A dependency cannot serve now: 503 with Retry-After. The message is shown to clients, so what failed
 * underneath (it names internal addresses) goes in `cause`, which the error handler logs.
 */
export class UnavailableError extends AppError {
  constructor(message: string, options: { retryAfter?: number; cause?: unknown } = {}) {
    super(503, 'unavailable', message, { retryAfter: options.retryAfter ?? 1 });
    if (options.cause !== undefined) this.cause = options.cause;
  }
}

/**
 * A create may have been numbered, and its hand-off failed: the broker did not confirm it, or the answer of
 * the shared sequencer's numbering was lost. It may still be stored: the broker may have taken it, and a
 * shared sequencer keeps it for the reaper. A 503 like any other, but its idempotency key stays held until
 * its lease ends (see IdempotencyHold.abandon).
 */
export class CreateOutcomeUnknownError extends UnavailableError {}

/**
 * The fate of a queue item its handler refused (see BatchOutcome in domain/ports.ts): it is not retried. The
 * RabbitMQ queue dead-letters it; the memory queue rejects its `publish` with this error. Not an AppError:
 * a create the writer cannot store is a server bug, answered as a 500.
 */
export class QueueItemRefusedError extends Error {
  constructor(reason: string) {
    super(`refused by its handler: ${reason}`);
    this.name = 'QueueItemRefusedError';
  }
}
