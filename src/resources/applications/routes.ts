import { timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UnauthorizedError, ValidationError } from '../../domain/errors.ts';
import type { ApplicationCursor } from '../../domain/ports.ts';
import { isCanonicalTime } from '../../domain/time.ts';
import { applicationView } from '../../domain/views.ts';
import { linkNext, pageLimit } from '../../http/pagination.ts';
import type { ApplicationService } from '../../services/applications.ts';
import * as schemas from './schemas.ts';

export interface ApplicationRoutesDeps {
  applications: ApplicationService;
  adminToken: string | undefined;
}

export async function applicationRoutes(app: FastifyInstance, deps: ApplicationRoutesDeps): Promise<void> {
  const { applications } = deps;

  app.post<{ Body: { name: string } }>(
    '/applications',
    { schema: schemas.createApplication },
    async (request, reply) => {
      const created = await applications.create(request.body.name);
      return reply.code(201).send(applicationView(created));
    },
  );

  app.get<{ Params: { token: string } }>(
    '/applications/:token',
    { schema: schemas.getApplication },
    async (request) => applicationView(await applications.get(request.params.token)),
  );

  for (const method of ['PUT', 'PATCH'] as const) {
    app.route<{ Params: { token: string }; Body: { name: string } }>({
      method,
      url: '/applications/:token',
      // One operation id per method: OpenAPI requires them unique.
      schema:
        method === 'PUT'
          ? schemas.renameApplication
          : { ...schemas.renameApplication, operationId: 'patchApplication' },
      handler: async (request) =>
        applicationView(await applications.rename(request.params.token, request.body.name)),
    });
  }

  app.get<{ Querystring: { limit?: number; cursor?: string } }>(
    '/applications',
    {
      schema: schemas.listApplications,
      // Before validation: a caller without the token learns nothing, not even which parameters are wrong.
      onRequest: (request, reply, done) => {
        const { adminToken } = deps;
        if (adminToken === undefined || isAdmin(request, adminToken)) return done();
        reply.header('www-authenticate', 'Bearer');
        done(new UnauthorizedError());
      },
    },
    async (request, reply) => {
      const limit = pageLimit(request.query.limit);
      const page = await applications.list(limit, decodeCursor(request.query.cursor));
      linkNext(request, reply, page.next && { cursor: encodeCursor(page.next), limit });
      return page.items.map(applicationView);
    },
  );
}

/** `Authorization: Bearer <ADMIN_TOKEN>`, the scheme in any case (RFC 9110: schemes are case-insensitive). */
function isAdmin(request: FastifyRequest, adminToken: string): boolean {
  const header = request.headers.authorization ?? '';
  const presented = Buffer.from(/^bearer +(.*)$/i.exec(header)?.[1] ?? '');
  const expected = Buffer.from(adminToken);
  return presented.length === expected.length && timingSafeEqual(presented, expected);
}

/** Opaque to clients: base64url of the last row's (created_at, token), the listing's keyset. */
function encodeCursor(cursor: ApplicationCursor): string {
  return Buffer.from(JSON.stringify([cursor.createdAt, cursor.token])).toString('base64url');
}

function decodeCursor(raw: string | undefined): ApplicationCursor | undefined {
  if (raw === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2) {
      const [createdAt, token] = value as unknown[];
      // Only what the server issues: a time in its one form (every store compares it as such).
      if (typeof createdAt === 'string' && isCanonicalTime(createdAt) && typeof token === 'string')
        return { createdAt, token };
    }
  } catch {}
  throw new ValidationError('cursor is not a cursor this server issued');
}
