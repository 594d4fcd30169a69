import type { FastifyInstance } from 'fastify';
import type { Metrics } from '../../metrics.ts';
import { withTimeout } from '../../timeout.ts';

/** A dependency the readiness probe checks: it must answer `ping` within the deadline. */
export interface Dependency {
  name: string;
  ping(): Promise<void>;
}

const READY_TIMEOUT_MS = 2000;

export async function operationRoutes(
  app: FastifyInstance,
  deps: { metrics: Metrics; dependencies: Dependency[] },
): Promise<void> {
  const hide = { hide: true } as const;

  app.get('/healthz', { schema: { ...hide } }, async () => ({ status: 'ok' }));

  app.get('/readyz', { schema: { ...hide } }, async (_request, reply) => {
    const results = await Promise.all(
      deps.dependencies.map(async (dep) => [dep.name, await check(dep)] as const),
    );
    const checks = Object.fromEntries(results);
    const ready = results.every(([, result]) => result === 'ok');
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
  });

  app.get('/metrics', { schema: { ...hide } }, async (_request, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.type(deps.metrics.registry.contentType).send(body);
  });
}

async function check(dep: Dependency): Promise<string> {
  try {
    await withTimeout(
      dep.ping(),
      READY_TIMEOUT_MS,
      () => new Error(`no answer within ${READY_TIMEOUT_MS} ms`),
    );
    return 'ok';
  } catch (error) {
    return `error: ${error instanceof Error ? error.message : String(error)}`;
  }
}
