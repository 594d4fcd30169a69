import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { type AppError, ExpectationFailedError, PayloadTooLargeError } from '../domain/errors.ts';
import { errorBody } from './errors.ts';
import { requestIdOf } from './request-id.ts';

/**
 * The `Expect` header, answered before fastify sees the request (Node's 'checkContinue' and
 * 'checkExpectation' events), in the error model:
 * - `100-continue` with a Content-Length over `maxBytes` is 413 at once, instead of "100 Continue" and a
 *   413 after the client has uploaded the whole body for nothing; otherwise "100 Continue" and the request
 *   goes on to fastify as Node would send it.
 * - any other expectation is 417 (Node's own answer has an empty body).
 */
export function answerExpectations(server: Server, maxBytes: number): void {
  server.on('checkContinue', (request: IncomingMessage, response: ServerResponse) => {
    if (Number(request.headers['content-length']) > maxBytes) {
      refuse(request, response, new PayloadTooLargeError());
      return;
    }
    response.writeContinue();
    server.emit('request', request, response);
  });
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) =>
    refuse(request, response, new ExpectationFailedError()),
  );
}

function refuse(request: IncomingMessage, response: ServerResponse, error: AppError): void {
  const body = JSON.stringify(errorBody(error));
  response.writeHead(error.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    'x-request-id': requestIdOf(request),
    // The body was not read: the connection cannot carry another request.
    connection: 'close',
  });
  response.end(body);
}
