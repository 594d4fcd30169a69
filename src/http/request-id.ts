import { randomUUID } from 'node:crypto';

/**
 * Request ids: a random prefix per process and a counter, unique across processes and restarts without a
 * random UUID per request (which showed in profiles of the create path).
 */
const REQUEST_ID_PREFIX = randomUUID().slice(0, 8);
let requestCount = 0;
export function nextRequestId(): string {
  return `${REQUEST_ID_PREFIX}-${(++requestCount).toString(36)}`;
}

/**
 * The client's (or proxy's) X-Request-Id when it is a sane one, else our own: it goes into every log line
 * and back in the answer, so no spaces, control characters or kilobytes. The rule NGINX applies in front
 * of the distributed mode (deploy/nginx), so both modes keep and replace the same ids.
 */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export function requestIdOf(request: { headers: Record<string, string | string[] | undefined> }): string {
  const given = request.headers['x-request-id'];
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : nextRequestId();
}
