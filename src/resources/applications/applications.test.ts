import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { api, type JsonResponse, startServer, type TestServer } from '../../../test/helpers/server.ts';

const ADMIN = 'admin-token-for-tests-0123456789';

describe('applications', () => {
  let server: TestServer;
  before(async () => {
    server = await startServer({ env: { ADMIN_TOKEN: ADMIN } });
  });
  after(() => server.stop());

  it('creates an application with a generated URL-safe token of at least 128 bits', async () => {
    const { status, body } = await api(server.url, 'POST', '/applications', { name: 'Shop' });
    assert.equal(status, 201);
    assert.deepEqual(Object.keys(body).sort(), ['chats_count', 'created_at', 'name', 'token', 'updated_at']);
    assert.equal(body.name, 'Shop');
    assert.equal(body.chats_count, 0);
    assert.match(body.token, /^[A-Za-z0-9_-]{22,}$/);
    assert.ok(body.token.length * 6 >= 128);
    assert.equal(new Date(body.created_at).toISOString(), body.created_at);
  });

  it('gives every application its own token', async () => {
    const tokens = await Promise.all(
      Array.from(
        { length: 50 },
        async () => (await api(server.url, 'POST', '/applications', { name: 'n' })).body.token,
      ),
    );
    assert.equal(new Set(tokens).size, 50);
  });

  it('reads and renames by token with PUT and PATCH', async () => {
    const created = (await api(server.url, 'POST', '/applications', { name: 'Before' })).body;
    const read = await api(server.url, 'GET', `/applications/${created.token}`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, created);

    const put = await api(server.url, 'PUT', `/applications/${created.token}`, { name: 'After' });
    assert.equal(put.status, 200);
    assert.equal(put.body.name, 'After');
    assert.equal(put.body.token, created.token);
    assert.ok(put.body.updated_at >= created.updated_at);

    const patch = await api(server.url, 'PATCH', `/applications/${created.token}`, { name: 'Patched' });
    assert.equal(patch.body.name, 'Patched');
    assert.equal((await api(server.url, 'GET', `/applications/${created.token}`)).body.name, 'Patched');
  });

  it('validates the name: 1 to 255 characters, a string, nothing else', async () => {
    for (const body of [
      {},
      { name: '' },
      { name: 'x'.repeat(256) },
      { name: 7 },
      { name: null },
      { name: 'a', x: 1 },
    ]) {
      const response = await api(server.url, 'POST', '/applications', body);
      assert.equal(response.status, 422, JSON.stringify(body));
      assert.equal(response.body.error.code, 'validation_failed');
    }
    const longest = await api(server.url, 'POST', '/applications', { name: '名'.repeat(255) });
    assert.equal(longest.status, 201);
  });

  it('answers 404 for an unknown token', async () => {
    for (const [method, body] of [
      ['GET', undefined],
      ['PUT', { name: 'x' }],
    ] as const) {
      for (const token of ['unknown-token-000000000000', 'x'.repeat(200)]) {
        const response = await api(server.url, method, `/applications/${token}`, body);
        assert.equal(response.status, 404, `${method} a token of ${token.length} characters`);
        assert.equal(response.body.error.code, 'application_not_found');
      }
    }
    // Longer than a path segment may be: 414, not a lookup, whatever the method.
    for (const method of ['GET', 'DELETE'] as const) {
      const response = await api(server.url, method, `/applications/${'x'.repeat(201)}`);
      assert.equal(response.status, 414, method);
      assert.equal(response.body.error.code, 'uri_too_long');
    }
  });

  it('lists applications only for the admin, paging with an opaque cursor in the Link header', async () => {
    assert.equal((await api(server.url, 'GET', '/applications')).status, 401);
    const wrong = await api(server.url, 'GET', '/applications', undefined, { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error.code, 'unauthorized');
    assert.equal(wrong.headers.get('www-authenticate'), 'Bearer');
    // Authentication comes before validation: an invalid query without the token is still a 401.
    assert.equal((await api(server.url, 'GET', '/applications?limit=0')).status, 401);
    // The scheme is case-insensitive.
    const lower = await api(server.url, 'GET', '/applications?limit=1', undefined, {
      authorization: `bearer ${ADMIN}`,
    });
    assert.equal(lower.status, 200);

    const auth = { authorization: `Bearer ${ADMIN}` };
    const mine = new Set<string>();
    for (let i = 0; i < 7; i++)
      mine.add((await api(server.url, 'POST', '/applications', { name: `p${i}` })).body.token);

    const seen: string[] = [];
    let path: string | undefined = '/applications?limit=3';
    let pages = 0;
    while (path) {
      const page: JsonResponse = await api(server.url, 'GET', path, undefined, auth);
      assert.equal(page.status, 200);
      assert.ok(page.body.length <= 3);
      seen.push(...page.body.map((a: { token: string }) => a.token));
      const link = page.headers.get('link');
      path = link ? /^<([^>]+)>; rel="next"$/.exec(link)![1] : undefined;
      if (path) assert.doesNotMatch(path, /after=|before=/);
      pages++;
    }
    assert.ok(pages >= 3);
    assert.equal(new Set(seen).size, seen.length, 'no application appears twice');
    for (const token of mine) assert.ok(seen.includes(token));

    const bad = await api(server.url, 'GET', '/applications?cursor=not-a-cursor', undefined, auth);
    assert.equal(bad.status, 422);
    // Well-formed, but with a time the server never issues: the same answer in every mode.
    const forged = Buffer.from(JSON.stringify(['yesterday', 'x'])).toString('base64url');
    const refused = await api(server.url, 'GET', `/applications?cursor=${forged}`, undefined, auth);
    assert.equal(refused.status, 422);
    assert.equal(refused.body.error.code, 'validation_failed');
  });

  it('caps limit at 1000 and rejects a non-positive one', async () => {
    const auth = { authorization: `Bearer ${ADMIN}` };
    assert.equal((await api(server.url, 'GET', '/applications?limit=5000', undefined, auth)).status, 200);
    assert.equal((await api(server.url, 'GET', '/applications?limit=0', undefined, auth)).status, 422);
  });
});

describe('applications without ADMIN_TOKEN', () => {
  it('leaves the list open and warns at start', async () => {
    const server = await startServer();
    try {
      const list = await api(server.url, 'GET', '/applications');
      assert.equal(list.status, 200);
      assert.ok(Array.isArray(list.body));
      assert.match(server.output(), /ADMIN_TOKEN is not set/);
    } finally {
      await server.stop();
    }
  });
});
