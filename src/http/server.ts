import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { Ajv } from 'ajv';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Logger } from 'pino';
import {
  BadRequestError,
  HttpVersionNotSupportedError,
  MethodNotAllowedError,
  NotFoundError,
  UriTooLongError,
} from '../domain/errors.ts';
import type { Metrics } from '../metrics.ts';
import { applicationRoutes } from '../resources/applications/routes.ts';
import { applicationSchema } from '../resources/applications/schemas.ts';
import { chatRoutes } from '../resources/chats/routes.ts';
import { chatSchema } from '../resources/chats/schemas.ts';
import { messageRoutes } from '../resources/messages/routes.ts';
import { messageSchema } from '../resources/messages/schemas.ts';
import { type Dependency, operationRoutes } from '../resources/operations/routes.ts';
import { streamRoutes } from '../resources/stream/routes.ts';
import type { ApplicationService } from '../services/applications.ts';
import type { ChatService } from '../services/chats.ts';
import type { StreamService } from '../services/live/stream.ts';
import type { MessageService } from '../services/messages.ts';
import { AllowedMethods } from './allowed-methods.ts';
import { consoleRoutes } from './console.ts';
import { type CorsOrigins, corsOptions } from './cors.ts';
import { decimalIntegers, integerProperties } from './decimal-integers.ts';
import { clientErrorHandler, errorHandler } from './errors.ts';
import { answerExpectations } from './expect.ts';
import { parseJsonBody, refuseNonJsonBody } from './json-body.ts';
import { wellFormedQuery } from './query-string.ts';
import { requestIdOf } from './request-id.ts';
import { errorSchema } from './schemas.ts';
import { SilentConnections } from './silent-connections.ts';

export interface OperationsDeps {
  log: Logger;
  metrics: Metrics;
  dependencies: Dependency[];
  requestMaxBytes: number;
  requestTimeoutMs: number;
  accessLog: boolean;
}

export interface ServerDeps extends OperationsDeps {
  applications: ApplicationService;
  chats: ChatService;
  messages: MessageService;
  stream: StreamService;
  /** Live streams: heartbeat interval and the per-client buffer cap. */
  live: { heartbeatMs: number; maxBufferedBytes: number };
  adminToken: string | undefined;
  /** Origins browsers may call the API from; none: only its own (no CORS headers). */
  corsOrigins: CorsOrigins | undefined;
}

/**
 * The API: every resource, the live stream, the OpenAPI document and its docs page, the operations
 * endpoints, and the browser console at `/`.
 */
export async function buildServer(deps: ServerDeps): Promise<FastifyInstance> {
  const app = createApp(deps);
  if (deps.corsOrigins) await app.register(cors, corsOptions(deps.corsOrigins));
  // Shared schemas live on the root instance so every route, and the OpenAPI document, can $ref them.
  for (const schema of [errorSchema, applicationSchema, chatSchema, messageSchema]) app.addSchema(schema);
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Chat backend',
        version: '0.1.0',
        description:
          'Applications own numbered chats; chats own numbered messages. Clients see tokens and numbers only. ' +
          "Every response carries X-Request-Id (the request's own when it sent a safe one). A method a path " +
          'does not have is 405 with Allow; OPTIONS on a path is 204 with Allow; a token or number over 200 ' +
          'characters is 414. Left out of this document: /healthz, /readyz and /metrics (see the README), HEAD ' +
          '(as GET, without the body) and OPTIONS.',
      },
      components: {
        securitySchemes: {
          admin: { type: 'http', scheme: 'bearer', description: 'ADMIN_TOKEN, when the server has one' },
        },
      },
      tags: [{ name: 'applications' }, { name: 'chats' }, { name: 'messages' }],
    },
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  await app.register(applicationRoutes, { applications: deps.applications, adminToken: deps.adminToken });
  await app.register(chatRoutes, { chats: deps.chats });
  await app.register(messageRoutes, { messages: deps.messages });
  await app.register(streamRoutes, { stream: deps.stream, metrics: deps.metrics, ...deps.live });
  await app.register(operationRoutes, { metrics: deps.metrics, dependencies: deps.dependencies });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  await app.register(consoleRoutes);
  return app;
}

/** The worker's and the indexer's server: health, readiness and metrics only. */
export async function buildOperationsServer(deps: OperationsDeps): Promise<FastifyInstance> {
  const app = createApp(deps);
  await app.register(operationRoutes, { metrics: deps.metrics, dependencies: deps.dependencies });
  return app;
}

/**
 * How paths are matched: a segment of up to 200 characters (longer is 414), and `/chats/` is `/chats`.
 * Shared by fastify's router and AllowedMethods'.
 */
const ROUTER_OPTIONS = { maxParamLength: 200, ignoreTrailingSlash: true };

/** What every server of ours shares: validation, JSON-only bodies, the error model, request ids, metrics. */
function createApp(deps: OperationsDeps): FastifyInstance {
  const app = Fastify({
    loggerInstance: deps.log as FastifyBaseLogger,
    // Fastify's own access log (two lines a request) only when asked for: it costs throughput.
    logController: new LogController({ disableRequestLogging: !deps.accessLog }),
    bodyLimit: deps.requestMaxBytes,
    // A request must arrive whole within requestTimeoutMs, or it is answered 408 (clientErrorHandler) and
    // its socket closed: fastify's default is no limit, so a client that stalls mid-body held its
    // connection forever. Node checks every connectionsCheckingInterval, so the 408 comes that much later
    // at most. Answers are not limited (a live stream lasts as long as its client stays).
    requestTimeout: deps.requestTimeoutMs,
    http: {
      // Node answers an HTTP/1.1 request without Host with an empty 400 of its own; onRequest answers it
      // in the error model instead.
      requireHostHeader: false,
      headersTimeout: Math.min(60_000, deps.requestTimeoutMs),
      connectionsCheckingInterval: Math.min(30_000, Math.max(250, deps.requestTimeoutMs / 4)),
    },
    requestIdHeader: false,
    genReqId: requestIdOf,
    return503OnClosing: true,
    clientErrorHandler,
    // Answered before any hook runs (a bad URL, an over-long parameter): the request id is set here too.
    frameworkErrors: (error, request, reply) => {
      reply.header('x-request-id', request.id);
      errorHandler(error, request, reply);
    },
    routerOptions: ROUTER_OPTIONS,
  });

  // Query strings and path parameters arrive as text and are coerced; JSON bodies are not (a number is not
  // a name). Hence two validators instead of fastify's single coercing one.
  const coercing = new Ajv({
    coerceTypes: 'array',
    useDefaults: true,
    removeAdditional: true,
    strict: false,
  });
  const exact = new Ajv({ coerceTypes: false, useDefaults: true, allErrors: true, strict: false });
  app.setValidatorCompiler(({ schema, httpPart }) =>
    httpPart === 'body'
      ? exact.compile(schema)
      : httpPart === 'params' || httpPart === 'querystring'
        ? decimalIntegers(schema, coercing.compile(schema))
        : coercing.compile(schema),
  );

  // Only JSON bodies are accepted (any other body is 415); see parseJsonBody and refuseNonJsonBody.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, parseJsonBody);
  app.addContentTypeParser('*', refuseNonJsonBody);
  answerExpectations(app.server, deps.requestMaxBytes);

  const allowed = new AllowedMethods(ROUTER_OPTIONS);
  app.addHook('onRoute', (route) =>
    allowed.add(route.method, route.url ?? route.path, integerProperties(route.schema?.params)),
  );
  /**
   * The 405 (or, to OPTIONS, the 204) for a path that has other methods than the request's; false when it
   * has none, or has the request's own (a route that found nothing, or refused its parameters, answers).
   */
  const answerOtherMethods = (request: FastifyRequest, reply: FastifyReply, methods: string[]): boolean => {
    if (methods.length === 0 || methods.includes(request.method)) return false;
    reply.header('allow', [...methods, 'OPTIONS'].join(', '));
    if (request.method === 'OPTIONS') reply.code(204).send();
    else errorHandler(new MethodNotAllowedError(request.method, pathOf(request)), request, reply);
    return true;
  };
  app.setNotFoundHandler((request, reply) => {
    const path = pathOf(request);
    const { methods, tooLong } = allowed.of(path);
    if (tooLong) errorHandler(new UriTooLongError(), request, reply);
    else if (!answerOtherMethods(request, reply, methods))
      errorHandler(new NotFoundError('route', `no route for ${request.method} ${path}`), request, reply);
  });
  app.setErrorHandler((error, request, reply) => {
    // PUT …/messages/search finds PUT …/messages/{number} and fails its number; the path itself has no PUT.
    const params = (error as FastifyError).validationContext === 'params';
    if (params && answerOtherMethods(request, reply, allowed.of(pathOf(request)).methods)) return;
    errorHandler(error, request, reply);
  });

  // Hooks in callback style: an async hook costs a promise per request on the hot path.
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id);
    // Node's parser takes `HTTP/2.0` and `HTTP/0.9` in a request line and would answer them as 1.1.
    if (request.raw.httpVersionMajor !== 1) {
      done(new HttpVersionNotSupportedError(request.raw.httpVersion));
      return;
    }
    // The asterisk form (`OPTIONS * HTTP/1.1`) asks about the server, not a path; find-my-way would route
    // `*` to `/`. Only OPTIONS may use it (RFC 9112, 3.2.4).
    if (isAsteriskForm(request.url)) {
      if (request.method !== 'OPTIONS') done(new BadRequestError('only OPTIONS may ask for *'));
      else
        reply
          .header('allow', [...allowed.all(), 'OPTIONS'].join(', '))
          .code(204)
          .send();
      return;
    }
    if (request.headers.host === undefined && request.raw.httpVersion === '1.1') {
      done(new BadRequestError('an HTTP/1.1 request must have a Host header'));
      return;
    }
    // Only where the route reads a query string: a probe of /healthz with junk in its URL is still alive.
    if (request.routeOptions.schema?.querystring === undefined || wellFormedQuery(request.url)) done();
    else done(new BadRequestError('the query string is not valid (bad percent-encoding)'));
  });
  // While shutting down, answer in-flight requests with `Connection: close` so their keep-alive sockets end
  // with the response; otherwise close() would wait for the client's idle timeout.
  const silent = new SilentConnections(app.server);
  app.addHook('preClose', async () => silent.close());
  app.addHook('onSend', (_request, reply, payload, done) => {
    if (silent.closing) reply.header('connection', 'close');
    done(null, payload);
  });
  // One labelled child per (route, method, status), looked up by a string key: prom-client would otherwise
  // hash the label object on every request, twice.
  const series = new Map<string, { count(): void; observe(seconds: number): void }>();
  app.addHook('onResponse', (request, reply, done) => {
    // A 405 (PUT …/messages/search is routed to …/messages/{number} first) and `*` match no route either.
    const unmatched = reply.statusCode === 405 || isAsteriskForm(request.url);
    const route = unmatched ? 'unmatched' : (request.routeOptions.url ?? 'unmatched');
    const key = `${route} ${request.method} ${reply.statusCode}`;
    let child = series.get(key);
    if (!child) {
      const labels = { route, method: request.method, status: String(reply.statusCode) };
      const requests = deps.metrics.httpRequests.labels(labels);
      const duration = deps.metrics.httpDuration.labels(labels);
      child = { count: () => requests.inc(), observe: (seconds) => duration.observe(seconds) };
      series.set(key, child);
    }
    child.count();
    child.observe(reply.elapsedTime / 1000);
    done();
  });

  return app;
}

/** `*` as the request target, with or without a query string (without splitting the URL: a hot path). */
function isAsteriskForm(url: string): boolean {
  return url === '*' || url.startsWith('*?');
}

/** The request's path, without its query string. */
function pathOf(request: FastifyRequest): string {
  return request.url.split('?')[0]!;
}
