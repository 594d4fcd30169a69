import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  api,
  assertTouchedByCount,
  eventually,
  startServer,
  type TestServer,
} from '../../../test/helpers/server.ts';

describe('chats', () => {
  let server: TestServer;
  const newApp = async () =>
    (await api(server.url, 'POST', '/applications', { name: 'app' })).body.token as string;

  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  it('numbers chats 1, 2, 3 per application, with or without a JSON content type', async () => {
    const a = await newApp();
    const b = await newApp();
    const first = await api(server.url, 'POST', `/applications/${a}/chats`);
    assert.equal(first.status, 201);
    assert.deepEqual(Object.keys(first.body).sort(), [
      'created_at',
      'messages_count',
      'number',
      'updated_at',
    ]);
    assert.equal(first.body.number, 1);
    assert.equal(first.body.messages_count, 0);
    const second = await fetch(`${server.url}/applications/${a}/chats`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(second.status, 201);
    assert.equal(((await second.json()) as { number: number }).number, 2);
    assert.equal((await api(server.url, 'POST', `/applications/${a}/chats`, {})).body.number, 3);
    assert.equal((await api(server.url, 'POST', `/applications/${b}/chats`)).body.number, 1);
    // No body is no body, whatever Content-Type it is declared as; a body that is not JSON is 415.
    const declared = { method: 'POST', headers: { 'content-type': 'text/plain' } };
    const fourth = await fetch(`${server.url}/applications/${a}/chats`, declared);
    assert.equal(fourth.status, 201);
    assert.equal(((await fourth.json()) as { number: number }).number, 4);
    const text = await fetch(`${server.url}/applications/${a}/chats`, { ...declared, body: 'hello' });
    assert.equal(text.status, 415);
    assert.equal(((await text.json()) as { error: { code: string } }).error.code, 'unsupported_media_type');
  });

  it('hands out exactly 1..n under hundreds of concurrent creates', async () => {
    const token = await newApp();
    const responses = await Promise.all(
      Array.from({ length: 300 }, () => api(server.url, 'POST', `/applications/${token}/chats`)),
    );
    assert.ok(responses.every((r) => r.status === 201));
    const numbers = responses.map((r) => r.body.number as number).sort((x, y) => x - y);
    assert.deepEqual(
      numbers,
      Array.from({ length: 300 }, (_, i) => i + 1),
    );
    // Every acknowledged chat is readable at once (the 201 waited for the commit).
    const listed = await api(server.url, 'GET', `/applications/${token}/chats?limit=1000`);
    assert.deepEqual(
      listed.body.map((c: { number: number }) => c.number),
      numbers,
    );
  });

  it('reads a chat and answers 404 / 422 for chats that do not exist or are not numbers', async () => {
    const token = await newApp();
    await api(server.url, 'POST', `/applications/${token}/chats`);
    const chat = await api(server.url, 'GET', `/applications/${token}/chats/1`);
    assert.equal(chat.status, 200);
    assert.equal(chat.body.number, 1);
    const missing = await api(server.url, 'GET', `/applications/${token}/chats/2`);
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'chat_not_found');
    for (const bad of ['0', '-1', 'abc', '1.5', '99999999999999999999']) {
      const response = await api(server.url, 'GET', `/applications/${token}/chats/${bad}`);
      assert.ok([404, 422].includes(response.status), `${bad} → ${response.status}`);
      assert.equal(typeof response.body.error.code, 'string');
    }
    const unknownApp = await api(server.url, 'POST', '/applications/no-such-token/chats');
    assert.equal(unknownApp.status, 404);
    assert.equal(unknownApp.body.error.code, 'application_not_found');
  });

  it('pages with after / before and a Link header, ordered by number', async () => {
    const token = await newApp();
    for (let i = 0; i < 7; i++) await api(server.url, 'POST', `/applications/${token}/chats`);
    const numbersOf = (r: { body: { number: number }[] }) => r.body.map((c) => c.number);

    const page1 = await api(server.url, 'GET', `/applications/${token}/chats?limit=3`);
    assert.deepEqual(numbersOf(page1), [1, 2, 3]);
    assert.equal(page1.headers.get('link'), `</applications/${token}/chats?limit=3&after=3>; rel="next"`);
    const page3 = await api(server.url, 'GET', `/applications/${token}/chats?limit=3&after=6`);
    assert.deepEqual(numbersOf(page3), [7]);
    assert.equal(page3.headers.get('link'), null);

    const below = await api(server.url, 'GET', `/applications/${token}/chats?limit=3&before=6`);
    assert.deepEqual(numbersOf(below), [3, 4, 5]);
    assert.equal(below.headers.get('link'), `</applications/${token}/chats?limit=3&before=3>; rel="next"`);
    const rest = await api(server.url, 'GET', `/applications/${token}/chats?limit=3&before=3`);
    assert.deepEqual(numbersOf(rest), [1, 2]);
    assert.equal(rest.headers.get('link'), null);

    const all = await api(server.url, 'GET', `/applications/${token}/chats`);
    assert.deepEqual(numbersOf(all), [1, 2, 3, 4, 5, 6, 7]);
    // A trailing slash names the same list.
    assert.deepEqual(
      numbersOf(await api(server.url, 'GET', `/applications/${token}/chats/`)),
      [1, 2, 3, 4, 5, 6, 7],
    );
  });

  it('reads a number written in decimal digits only: 01, 0x1, 1e0, 1.0 and +1 are not chat 1', async () => {
    const token = await newApp();
    await api(server.url, 'POST', `/applications/${token}/chats`);
    assert.equal((await api(server.url, 'GET', `/applications/${token}/chats/1`)).status, 200);
    for (const spelling of ['01', '0x1', '1e0', '1.0', '%2B1', '%201']) {
      const answer = await api(server.url, 'GET', `/applications/${token}/chats/${spelling}`);
      assert.equal(answer.status, 422, spelling);
      assert.match(answer.body.error.message, /decimal/, spelling);
      const paged = await api(server.url, 'GET', `/applications/${token}/chats?after=${spelling}`);
      assert.equal(paged.status, 422, `after=${spelling}`);
    }
  });

  it('keeps chats_count equal to the stored chats, within the counts interval, and updated_at with it', async () => {
    const token = await newApp();
    const before = (await api(server.url, 'GET', `/applications/${token}`)).body;
    const created = await Promise.all(
      Array.from({ length: 25 }, () => api(server.url, 'POST', `/applications/${token}/chats`)),
    );
    await eventually(
      async () => (await api(server.url, 'GET', `/applications/${token}`)).body.chats_count === 25,
      5000,
      'chats_count = 25',
    );
    assertTouchedByCount(before, (await api(server.url, 'GET', `/applications/${token}`)).body, created);
  });

  it('honours Idempotency-Key: same key on the same application returns the original 201', async () => {
    const token = await newApp();
    const other = await newApp();
    const key = { 'idempotency-key': 'create-chat-42' };
    const first = await api(server.url, 'POST', `/applications/${token}/chats`, undefined, key);
    const again = await api(server.url, 'POST', `/applications/${token}/chats`, undefined, key);
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, first.body);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    // A different application has its own key space.
    const elsewhere = await api(server.url, 'POST', `/applications/${other}/chats`, undefined, key);
    assert.equal(elsewhere.body.number, 1);
    assert.equal(elsewhere.headers.get('idempotent-replayed'), null);
    // Concurrent requests with one key create one chat.
    const racing = await Promise.all(
      Array.from({ length: 20 }, () =>
        api(server.url, 'POST', `/applications/${token}/chats`, undefined, { 'idempotency-key': 'race' }),
      ),
    );
    assert.equal(new Set(racing.map((r) => r.body.number)).size, 1);
    const list = await api(server.url, 'GET', `/applications/${token}/chats`);
    assert.equal(list.body.length, 2);
  });
});
