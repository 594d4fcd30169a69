import fastifyStatic from '@fastify/static';
import type { FastifyInstance } from 'fastify';

const ROOT = new URL('../console/', import.meta.url).pathname;

/**
 * The browser console (src/console/: plain HTML, CSS and JavaScript modules, no build step) at `/`.
 * `wildcard: false` registers one route per file found at start, so every other unknown path keeps the
 * API's JSON 404. The content security policy lets the page load nothing but its own files and talk to
 * nothing but this API.
 */
export async function consoleRoutes(app: FastifyInstance): Promise<void> {
  await app.register(fastifyStatic, {
    root: ROOT,
    prefix: '/',
    wildcard: false,
    index: 'index.html',
    decorateReply: false,
    // The folder also holds the console's own tests (TypeScript, run by npm test): no route for them.
    globIgnore: ['**/*.ts'],
    setHeaders: (reply) => {
      reply.header(
        'content-security-policy',
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
      );
      reply.header('x-content-type-options', 'nosniff');
    },
  });
}
