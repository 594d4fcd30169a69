import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import {
  AppError,
  BadRequestError,
  type ErrorDetail,
  PayloadTooLargeError,
  UnsupportedMediaTypeError,
  UriTooLongError,
} from '../domain/errors.ts';
import { nextRequestId } from './request-id.ts';

export interface ErrorBody {
  error: { code: string; message: string; details?: ErrorDetail[] };
}

/** Fastify's own failures, by code, expressed in the one error model. */
const FASTIFY_ERRORS: Record<string, (error: FastifyError) => AppError> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () => new UnsupportedMediaTypeError(),
  FST_ERR_CTP_BODY_TOO_LARGE: () => new PayloadTooLargeError(),
  FST_ERR_BAD_URL: () => new BadRequestError('the URL is not valid (bad percent-encoding)'),
  FST_ERR_MAX_PARAM_LENGTH: () => new UriTooLongError(),
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: () => new BadRequestError('Content-Length does not match the body'),
  FST_ERR_CTP_INVALID_CONTENT_TYPE: () => new UnsupportedMediaTypeError('Content-Type header is malformed'),
};

/**
 * Maps any thrown value to the error the client sees (errorBody renders it). Requests refused before
 * fastify routes them (clientErrorHandler, expect.ts) use the same classes and errorBody.
 */
export function toAppError(error: unknown): AppError | undefined {
  if (error instanceof AppError) return error;
  const fastifyError = error as FastifyError;
  if (fastifyError?.validation) {
    const details = fastifyError.validation.map((v) => ({
      in: fastifyError.validationContext ?? 'request',
      path: v.instancePath || undefined,
      message: v.message ?? `fails ${v.keyword}`,
    }));
    return new AppError(422, 'validation_failed', fastifyError.message, { details });
  }
  const known = typeof fastifyError?.code === 'string' ? FASTIFY_ERRORS[fastifyError.code] : undefined;
  if (known) return known(fastifyError);
  // Other client errors fastify raises itself (e.g. a malformed URL) keep their 4xx status.
  const status = fastifyError?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new AppError(status, 'bad_request', fastifyError.message);
  }
  return undefined;
}

/**
 * Requests Node's HTTP parser rejects never reach fastify's routing; answer them in the same error shape
 * before the socket is closed (this replaces fastify's default client error handler).
 */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const refusal =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new AppError(408, 'request_timeout', 'the request took too long to arrive')
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? new AppError(431, 'headers_too_large', 'the request headers are too large')
        : new BadRequestError('the request is not valid HTTP');
  const { status } = refusal;
  const body = JSON.stringify(errorBody(refusal));
  // As Node's own handler: never write a response into the middle of one already started on this socket.
  const started = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent;
  if (socket.writable && !started) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${nextRequestId()}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy(error);
}

/** The one JSON shape of every error answer: `{"error": {"code", "message", "details"?}}`. */
export function errorBody(error: AppError): ErrorBody {
  const body: ErrorBody = { error: { code: error.code, message: error.message } };
  if (error.details !== undefined) body.error.details = error.details;
  return body;
}

export function errorHandler(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const appError = toAppError(error);
  if (!appError) {
    request.log.error({ err: error }, 'unhandled error');
    void reply.code(500).send({ error: { code: 'internal_error', message: 'internal server error' } });
    return;
  }
  if (appError.status >= 500) request.log.warn({ err: appError }, appError.message);
  if (appError.retryAfter !== undefined) reply.header('retry-after', String(appError.retryAfter));
  void reply.code(appError.status).send(errorBody(appError));
}
