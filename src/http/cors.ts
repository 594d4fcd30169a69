import type { FastifyCorsOptions } from '@fastify/cors';

/** Which origins may call the API from a browser: any (`*`) or these exact ones (CORS_ORIGINS). */
export type CorsOrigins = '*' | readonly string[];

/**
 * @fastify/cors's options for CORS_ORIGINS. A request without an `Origin` is no CORS request: it gets no
 * CORS headers, and an OPTIONS without one is answered as the API answers it (204 with `Allow`). Not
 * strict about preflights: the plugin would answer an OPTIONS with an `Origin` but no
 * `Access-Control-Request-Method` with a text/plain 400, outside the error model.
 */
export function corsOptions(origins: CorsOrigins): FastifyCorsOptions {
  return {
    origin: (origin, callback) => {
      if (origin === undefined) callback(null, false);
      else if (origins === '*') callback(null, '*');
      else callback(null, origins.includes(origin) ? origin : false);
    },
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH'],
    allowedHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'Last-Event-ID', 'X-Request-Id'],
    // Beyond the safelisted ones: paging, replays, request ids, when to retry, and what a 405 allows.
    exposedHeaders: ['Link', 'Idempotent-Replayed', 'X-Request-Id', 'Retry-After', 'Allow'],
    maxAge: 600,
    strictPreflight: false,
  };
}
