import type { FastifyInstance, FastifyReply } from 'fastify';
import { ValidationError } from '../../domain/errors.ts';
import type { RenderedPage, SearchPage } from '../../domain/ports.ts';
import type { Message, Page } from '../../domain/types.ts';
import { messageView } from '../../domain/views.ts';
import { linkNext, type NumberPageQuery, numberPageFrom, pageLimit } from '../../http/pagination.ts';
import type { MessageService } from '../../services/messages.ts';
import * as schemas from './schemas.ts';

interface ChatParams {
  token: string;
  chat: number;
}
interface MessageParams extends ChatParams {
  number: number;
}

const CHAT = '/applications/:token/chats/:chat/messages';

export async function messageRoutes(app: FastifyInstance, deps: { messages: MessageService }): Promise<void> {
  const { messages } = deps;

  app.post<{ Params: ChatParams; Body: { body: string }; Headers: { 'idempotency-key'?: string } }>(
    CHAT,
    { schema: schemas.createMessage },
    async (request, reply) => {
      const { token, chat } = request.params;
      const created = await messages.create(
        token,
        chat,
        request.body.body,
        request.headers['idempotency-key'],
      );
      if (created.replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(created.view);
    },
  );

  app.get<{ Params: ChatParams; Querystring: NumberPageQuery }>(
    CHAT,
    { schema: schemas.listMessages },
    async (request, reply) => {
      const page = await messages.list(
        request.params.token,
        request.params.chat,
        numberPageFrom(request.query),
      );
      linkNext(request, reply, page.next);
      return answerPage(reply, page);
    },
  );

  app.get<{
    Params: ChatParams;
    Querystring: { q?: string; query?: string; limit?: number; before?: number };
  }>(`${CHAT}/search`, { schema: schemas.searchMessages }, async (request, reply) => {
    const { q, query, limit, before } = request.query;
    const text = q ?? query;
    // Empty is the service's to refuse, as every other rule of the query.
    if (text === undefined) throw new ValidationError('query parameter q is required');
    const page: SearchPage = { limit: pageLimit(limit) };
    if (before !== undefined) page.before = before;
    const found = await messages.search(request.params.token, request.params.chat, text, page);
    linkNext(request, reply, found.next && { before: found.next.before, limit: page.limit });
    return answerPage(reply, found);
  });

  app.get<{ Params: MessageParams }>(`${CHAT}/:number`, { schema: schemas.getMessage }, async (request) => {
    const { token, chat, number } = request.params;
    return messageView(await messages.get(token, chat, number));
  });

  for (const method of ['PUT', 'PATCH'] as const) {
    app.route<{ Params: MessageParams; Body: { body: string } }>({
      method,
      url: `${CHAT}/:number`,
      // One operation id per method: OpenAPI requires them unique.
      schema:
        method === 'PUT' ? schemas.editMessage : { ...schemas.editMessage, operationId: 'patchMessage' },
      handler: async (request) => {
        const { token, chat, number } = request.params;
        return messageView(await messages.edit(token, chat, number, request.body.body));
      },
    });
  }
}

/** A page of messages as the response: its views, or its JSON when the adapter rendered it (RenderedPage). */
function answerPage<C>(reply: FastifyReply, page: Page<Message, C> | RenderedPage<C>) {
  if ('items' in page) return page.items.map(messageView);
  // Already the response schema's JSON: sent as it is, not serialised again.
  return reply.type('application/json; charset=utf-8').send(page.json);
}
