import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { api, startServer, type TestServer } from '../../../test/helpers/server.ts';

/** Sends one request line and headers (no body) and returns the whole answer: fetch cannot send `*`. */
async function rawRequest(url: string, line: string, headers = '', host = true): Promise<string> {
  const { hostname, port } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.end(`${line}\r\n${host ? `Host: ${hostname}\r\n` : ''}${headers}Connection: close\r\n\r\n`);
  let answer = '';
  for await (const chunk of socket) answer += String(chunk);
  return answer;
}

describe('operations', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  it('reports liveness and readiness of every dependency', async () => {
    assert.deepEqual((await api(server.url, 'GET', '/healthz')).body, { status: 'ok' });
    const ready = await api(server.url, 'GET', '/readyz');
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, {
      status: 'ready',
      checks: { store: 'ok', sequencer: 'ok', queue: 'ok', search: 'ok' },
    });
  });

  it('answers a method a path does not have with 405 and Allow, and OPTIONS with 204 and Allow', async () => {
    const token = (await api(server.url, 'POST', '/applications', { name: 'methods' })).body.token;
    const deleted = await api(server.url, 'DELETE', `/applications/${token}/chats`);
    assert.equal(deleted.status, 405);
    assert.equal(deleted.body.error.code, 'method_not_allowed');
    assert.equal(deleted.headers.get('allow'), 'GET, HEAD, POST, OPTIONS');
    const options = await fetch(`${server.url}/applications/${token}`, { method: 'OPTIONS' });
    assert.equal(options.status, 204);
    assert.equal(options.headers.get('allow'), 'GET, HEAD, PUT, PATCH, OPTIONS');
    // A trailing slash names the same path, for its methods as for its routes.
    const slash = await api(server.url, 'PUT', `/applications/${token}/chats/`);
    assert.equal(slash.headers.get('allow'), 'GET, HEAD, POST, OPTIONS');
    const unknown = await fetch(`${server.url}/no/such/route`, { method: 'OPTIONS' });
    assert.equal(unknown.status, 404);
  });

  it('answers 405 to PUT and PATCH on the search and stream paths, which …/messages/{number} would take', async () => {
    // The answer comes from the paths alone: no chat needs to exist.
    const token = (await api(server.url, 'POST', '/applications', { name: 'siblings' })).body.token;
    for (const path of ['search', 'stream']) {
      for (const method of ['PUT', 'PATCH'] as const) {
        const response = await api(server.url, method, `/applications/${token}/chats/1/messages/${path}`, {
          body: 'x',
        });
        assert.equal(response.status, 405, `${method} ${path}`);
        assert.equal(response.body.error.code, 'method_not_allowed');
        assert.equal(response.headers.get('allow'), 'GET, HEAD, OPTIONS');
      }
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /route="[^"]*:number",method="PUT",status="405"/);
    // A number that is not written in decimal is still a bad number, not a missing method.
    const octal = await api(server.url, 'PUT', `/applications/${token}/chats/1/messages/01`, { body: 'x' });
    assert.equal(octal.status, 422);
  });

  it('answers OPTIONS * with the methods of the server, * to another method with 400, unmet Expect, no Host, HTTP/2.0', async () => {
    const options = await rawRequest(server.url, 'OPTIONS * HTTP/1.1');
    assert.match(options, /^HTTP\/1\.1 204 /);
    assert.match(options, /\r\nallow: GET, HEAD, POST, PUT, PATCH, OPTIONS\r\n/i);
    for (const target of ['*', '*?a=1']) {
      const get = await rawRequest(server.url, `GET ${target} HTTP/1.1`);
      assert.match(get, /^HTTP\/1\.1 400 /, target);
      assert.match(get, /"code":"bad_request"/);
    }
    // No Host in HTTP/1.1: 400 in the error model (HTTP/1.0 needs none).
    const hostless = await rawRequest(server.url, 'GET /healthz HTTP/1.1', '', false);
    assert.match(hostless, /^HTTP\/1\.1 400 /);
    assert.match(hostless, /"code":"bad_request"/);
    assert.match(await rawRequest(server.url, 'GET /healthz HTTP/1.0', '', false), /^HTTP\/1\.1 200 /);
    // Node's parser takes these versions in a request line; the server does not speak them.
    for (const version of ['2.0', '0.9']) {
      const other = await rawRequest(server.url, `GET /healthz HTTP/${version}`);
      assert.match(other, /^HTTP\/1\.1 505 /, version);
      assert.match(other, /"code":"http_version_not_supported"/);
    }
    // An expectation the server cannot meet: 417, in the error model too.
    const expect = await rawRequest(
      server.url,
      'POST /applications HTTP/1.1',
      'Expect: foo\r\nX-Request-Id: e-1\r\n',
    );
    assert.match(expect, /^HTTP\/1\.1 417 /);
    assert.match(expect, /\r\nx-request-id: e-1\r\n/i);
    assert.match(expect, /"code":"expectation_failed"/);
    // 100-continue for a body over the limit: 413 at once, no "100 Continue" asking for the body first.
    const tooLarge = await rawRequest(
      server.url,
      'POST /applications HTTP/1.1',
      'Expect: 100-continue\r\nContent-Type: application/json\r\nContent-Length: 100000000\r\n',
    );
    assert.match(tooLarge, /^HTTP\/1\.1 413 /);
    assert.match(tooLarge, /"code":"payload_too_large"/);
    const withQuery = await rawRequest(server.url, 'OPTIONS *?a=1 HTTP/1.1');
    assert.match(withQuery, /\r\nallow: GET, HEAD, POST, PUT, PATCH, OPTIONS\r\n/i);
  });

  it('exports Prometheus metrics: requests and latency by route and status, queue depth, persist lag', async () => {
    const token = (await api(server.url, 'POST', '/applications', { name: 'm' })).body.token;
    await api(server.url, 'POST', `/applications/${token}/chats`);
    await api(server.url, 'GET', `/applications/${token}/chats/7`);
    const response = await fetch(`${server.url}/metrics`);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
    const text = await response.text();
    assert.match(
      text,
      /http_requests_total\{route="\/applications\/:token\/chats",method="POST",status="201"\} 1/,
    );
    assert.match(
      text,
      /http_requests_total\{route="\/applications\/:token\/chats\/:number",method="GET",status="404"\} 1/,
    );
    assert.match(
      text,
      /http_request_duration_seconds_bucket\{le="0.005",route="\/applications",method="POST"/,
    );
    assert.match(text, /write_queue_depth 0/);
    assert.match(text, /persist_lag_seconds_count [1-9]/);
    assert.match(text, /write_batch_size_count [1-9]/);
  });

  it('serves an OpenAPI 3.1 document generated from the route schemas, and a docs page', async () => {
    const { status, body } = await api(server.url, 'GET', '/openapi.json');
    assert.equal(status, 200);
    assert.equal(body.openapi, '3.1.0');
    const paths = Object.keys(body.paths);
    for (const path of [
      '/applications',
      '/applications/{token}',
      '/applications/{token}/chats',
      '/applications/{token}/chats/{number}',
      '/applications/{token}/chats/{chat}/messages',
      '/applications/{token}/chats/{chat}/messages/{number}',
      '/applications/{token}/chats/{chat}/messages/search',
    ]) {
      assert.ok(paths.includes(path), `${path} documented`);
    }
    assert.ok(body.components.schemas.Message);
    // Every $ref in the document resolves.
    for (const ref of JSON.stringify(body).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)) {
      assert.ok(body.components.schemas[ref[1]!], `$ref ${ref[1]} resolves`);
    }
    assert.doesNotMatch(JSON.stringify(body.components.schemas), /"(id|application_id|chat_id)"/);
    // Each response says what it means, and the headers a client acts on are documented where they occur.
    type Response = { description: string; headers?: Record<string, unknown> };
    const operations = Object.values(body.paths as Record<string, Record<string, { responses: object }>>)
      .flatMap((methods) => Object.values(methods))
      .map((operation) => operation.responses as Record<string, Response>);
    for (const responses of operations) {
      for (const [status, response] of Object.entries(responses))
        assert.notEqual(response.description, 'Default Response', `status ${status} described`);
      if (responses['503']) assert.ok(responses['503'].headers?.['retry-after'], '503 has Retry-After');
      // Answered before routing, so every operation can give them.
      for (const status of ['408', '413', '417', '431', '505'])
        assert.ok(responses[status], `documents ${status}`);
    }
    for (const [path, methods] of Object.entries(body.paths as Record<string, Record<string, unknown>>)) {
      if (!path.includes('{token}')) continue;
      for (const [method, operation] of Object.entries(methods as Record<string, { responses: object }>))
        assert.ok('414' in operation.responses, `${method} ${path} documents 414`);
    }
    const messages = body.paths['/applications/{token}/chats/{chat}/messages'];
    assert.ok(messages.get.responses['200'].headers.link);
    assert.ok(messages.post.responses['201'].headers['idempotent-replayed']);
    assert.deepEqual(body.paths['/applications'].get.security, [{ admin: [] }]);
    // Every operation has an id, unique (PUT and PATCH of one path included), for generated clients.
    const ids = Object.values(body.paths as Record<string, Record<string, { operationId?: string }>>)
      .flatMap((methods) => Object.values(methods))
      .map((operation) => operation.operationId);
    assert.ok(
      ids.every((id) => typeof id === 'string' && id.length > 0),
      'every operation has an id',
    );
    assert.equal(new Set(ids).size, ids.length, 'operation ids are unique');
    assert.equal(body.paths['/applications/{token}'].patch.operationId, 'patchApplication');
    assert.equal(body.components.securitySchemes.admin.scheme, 'bearer');
    const docs = await fetch(`${server.url}/docs/`);
    assert.equal(docs.status, 200);
    assert.match(await docs.text(), /swagger-ui/i);
  });

  it('answers unknown routes with a JSON 404 and echoes the request id', async () => {
    const response = await api(server.url, 'GET', '/no/such/route', undefined, {
      'x-request-id': 'abc-123',
    });
    assert.equal(response.status, 404);
    assert.equal(response.body.error.code, 'route_not_found');
    assert.equal(response.headers.get('x-request-id'), 'abc-123');
    // Without one, the server makes one: this process's random prefix and a counter, so never twice.
    const made = await Promise.all(
      [1, 2].map(async () => (await api(server.url, 'GET', '/healthz')).headers.get('x-request-id') ?? ''),
    );
    for (const id of made) assert.match(id, /^[0-9a-f]{8}-[0-9a-z]+$/);
    // One that would not be safe in a log line or a header is replaced, as NGINX does in front.
    for (const unsafe of ['has space', 'a'.repeat(129), 'a/b', 'x;y="z"']) {
      const answered = await fetch(`${server.url}/healthz`, { headers: { 'x-request-id': unsafe } });
      assert.match(answered.headers.get('x-request-id') ?? '', /^[0-9a-f]{8}-[0-9a-z]+$/, unsafe);
    }
    assert.notEqual(made[0], made[1]);
  });

  it('echoes the request id on answers the router gives before any hook (a bad URL, an over-long parameter)', async () => {
    for (const [path, status] of [
      ['/applications/%E9', 400],
      [`/applications/${'a'.repeat(201)}`, 414],
      [`/applications/${'a'.repeat(201)}/chats`, 414],
    ] as const) {
      const response = await fetch(`${server.url}${path}`, { headers: { 'x-request-id': 'mine-1' } });
      assert.equal(response.status, status, path);
      assert.equal(response.headers.get('x-request-id'), 'mine-1', path);
      assert.equal(response.headers.get('content-type'), 'application/json; charset=utf-8', path);
    }
  });
});

describe('start-up configuration', () => {
  it('refuses invalid configuration with a clear message and exit code 2', () => {
    const main = new URL('../../main.ts', import.meta.url).pathname;
    const result = spawnSync(process.execPath, [main], {
      env: {
        PATH: process.env.PATH,
        PORT: 'eighty',
        WRITE_BATCH_MAX: '-1',
        SQLITE_SYNCHRONOUS: 'sometimes',
      },
      encoding: 'utf8',
      timeout: 10_000,
    });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /invalid configuration/);
    assert.match(result.stderr, /PORT: must be an integer from 0 to 65535 \(got "eighty"\)/);
    assert.match(result.stderr, /WRITE_BATCH_MAX/);
    assert.match(result.stderr, /SQLITE_SYNCHRONOUS: must be one of FULL, NORMAL/);
  });

  it('refuses an unknown role, and a distributed role without the distributed mode, with the other problems', () => {
    const main = new URL('../../main.ts', import.meta.url).pathname;
    const run = (role: string, env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [main, role], {
        env: { PATH: process.env.PATH, DATA_DIR: ':memory:', ...env },
        encoding: 'utf8',
        timeout: 10_000,
      });
    const unknown = run('janitor', { PORT: 'eighty' });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /ROLE: unknown role "janitor"/);
    assert.match(unknown.stderr, /PORT: must be an integer/);
    assert.doesNotMatch(
      unknown.stderr,
      /needs the distributed mode/,
      'an unknown role is not a distributed one',
    );
    const api = run('api');
    assert.equal(api.status, 2);
    assert.match(api.stderr, /ROLE: role "api" needs the distributed mode/);
  });
});
