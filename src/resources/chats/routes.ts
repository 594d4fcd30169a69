import type { FastifyInstance } from 'fastify';
import { chatView } from '../../domain/views.ts';
import { linkNext, type NumberPageQuery, numberPageFrom } from '../../http/pagination.ts';
import type { ChatService } from '../../services/chats.ts';
import * as schemas from './schemas.ts';

export async function chatRoutes(app: FastifyInstance, deps: { chats: ChatService }): Promise<void> {
  const { chats } = deps;

  app.post<{ Params: { token: string }; Headers: { 'idempotency-key'?: string } }>(
    '/applications/:token/chats',
    { schema: schemas.createChat },
    async (request, reply) => {
      const created = await chats.create(request.params.token, request.headers['idempotency-key']);
      if (created.replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(201).send(created.view);
    },
  );

  app.get<{ Params: { token: string }; Querystring: NumberPageQuery }>(
    '/applications/:token/chats',
    { schema: schemas.listChats },
    async (request, reply) => {
      const page = await chats.list(request.params.token, numberPageFrom(request.query));
      linkNext(request, reply, page.next);
      return page.items.map(chatView);
    },
  );

  app.get<{ Params: { token: string; number: number } }>(
    '/applications/:token/chats/:number',
    { schema: schemas.getChat },
    async (request) => chatView(await chats.get(request.params.token, request.params.number)),
  );
}
