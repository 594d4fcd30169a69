import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, startServer, type TestServer } from '../../test/helpers/server.ts';

const APP = 'https://app.example';

describe('CORS', () => {
  let open: TestServer;
  let closed: TestServer;
  before(async () => {
    [open, closed] = await Promise.all([startServer({ env: { CORS_ORIGINS: APP } }), startServer()]);
  });
  after(() => Promise.all([open.stop(), closed.stop()]));

  it('answers a preflight from a listed origin with what a browser client needs', async () => {
    const token = (await api(open.url, 'POST', '/applications', { name: 'cors' })).body.token;
    const preflight = await fetch(`${open.url}/applications/${token}/chats/1/messages`, {
      method: 'OPTIONS',
      headers: {
        origin: APP,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'content-type, idempotency-key',
      },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), APP);
    assert.match(preflight.headers.get('access-control-allow-methods') ?? '', /\bPOST\b/);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Idempotency-Key/);

    await api(open.url, 'POST', `/applications/${token}/chats`);
    await api(open.url, 'POST', `/applications/${token}/chats`);
    const page = await fetch(`${open.url}/applications/${token}/chats?limit=1`, { headers: { origin: APP } });
    assert.equal(page.headers.get('access-control-allow-origin'), APP);
    assert.ok(page.headers.get('link'), 'the page has a next link');
    assert.match(page.headers.get('access-control-expose-headers') ?? '', /\bLink\b/);
    assert.match(page.headers.get('vary') ?? '', /Origin/);
  });

  it('gives an origin that is not listed, and a request without one, no CORS headers', async () => {
    const other = await fetch(`${open.url}/applications`, {
      method: 'OPTIONS',
      headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' },
    });
    assert.equal(other.headers.get('access-control-allow-origin'), null);
    const plain = await fetch(`${open.url}/applications`, { method: 'OPTIONS' });
    assert.equal(plain.status, 204);
    assert.equal(plain.headers.get('access-control-allow-origin'), null);
    assert.equal(plain.headers.get('allow'), 'GET, HEAD, POST, OPTIONS');
  });

  it('is off unless CORS_ORIGINS is set', async () => {
    const response = await fetch(`${closed.url}/healthz`, { headers: { origin: APP } });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('access-control-allow-origin'), null);
  });
});
