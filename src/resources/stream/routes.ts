import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../metrics.ts';
import type { CloseReason } from '../../services/live/sink.ts';
import type { OpenStream, StreamService, StreamStart } from '../../services/live/stream.ts';
import * as schemas from './schemas.ts';
import { SSE_HEADERS, SseConnection } from './sse.ts';

export interface StreamRouteDeps {
  stream: StreamService;
  metrics: Metrics;
  heartbeatMs: number;
  maxBufferedBytes: number;
}

interface Params {
  token: string;
  chat: number;
}

export async function streamRoutes(app: FastifyInstance, deps: StreamRouteDeps): Promise<void> {
  const open = new Set<SseConnection>();
  // Streams never end by themselves: close them first, or the server's close would wait on them until the
  // shutdown timeout. Browsers reconnect (through NGINX, to another API process) with Last-Event-ID.
  app.addHook('preClose', async () => {
    for (const connection of open) connection.close('shutting_down');
  });

  app.get<{ Params: Params; Querystring: { after?: number }; Headers: { 'last-event-id'?: string } }>(
    '/applications/:token/chats/:chat/messages/stream',
    { schema: schemas.streamMessages },
    async (request, reply) => {
      const { token, chat } = request.params;
      // Resolved before the response starts, so an unknown token or chat is a plain JSON 404.
      const target = await deps.stream.target(token, chat);
      // fastify answers HEAD with this handler too: the stream's headers without opening it (it would
      // otherwise hold a subscription that sends nothing).
      if (request.method === 'HEAD') return reply.headers(SSE_HEADERS).send();
      const header = request.headers['last-event-id'];
      const query = request.query.after;
      // `N` or `N:E` (see OrderedDelivery); the schema checked the shape.
      const [number, edit] = header === undefined ? [] : header.split(':').map(Number);
      const after: StreamStart | undefined =
        number !== undefined
          ? { number, edit: edit ?? 0 }
          : query !== undefined
            ? { number: query }
            : undefined;

      reply.hijack();
      let stream: OpenStream | undefined;
      deps.metrics.streamsOpen.inc();
      const connection = new SseConnection(reply.raw, reply.getHeaders() as Record<string, string>, {
        heartbeatMs: deps.heartbeatMs,
        maxBufferedBytes: deps.maxBufferedBytes,
        onClose: (reason: CloseReason) => {
          open.delete(connection);
          deps.metrics.streamsOpen.dec();
          deps.metrics.streamsClosed.inc({ reason });
          // Unsubscribing may fail (Redis away); the stream is gone either way, and a rejection left
          // unhandled would end the process.
          stream
            ?.close()
            .catch((error: unknown) => request.log.warn({ err: error }, 'live stream unsubscribe failed'));
        },
      });
      open.add(connection);
      try {
        stream = await deps.stream.open(target, after, connection);
        if (connection.closed) await stream.close();
      } catch (error) {
        request.log.warn({ err: error }, 'live stream could not subscribe');
        connection.close('unavailable');
      }
    },
  );
}
