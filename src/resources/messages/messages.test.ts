import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  api,
  assertTouchedByCount,
  eventually,
  startServer,
  type TestServer,
} from '../../../test/helpers/server.ts';

const MAX = 1024;

describe('messages', () => {
  let server: TestServer;
  const post = (path: string, body?: unknown, headers?: Record<string, string>) =>
    api(server.url, 'POST', path, body, headers);
  async function newChat(): Promise<{ token: string; path: string }> {
    const token = (await post('/applications', { name: 'app' })).body.token as string;
    const chat = (await post(`/applications/${token}/chats`)).body.number as number;
    return { token, path: `/applications/${token}/chats/${chat}/messages` };
  }

  before(async () => {
    server = await startServer({ env: { MESSAGE_MAX_BYTES: String(MAX) } });
  });
  after(() => server.stop());

  it('posts a message the moment its chat was created and reads it back', async () => {
    const { path } = await newChat();
    const created = await post(path, { body: 'Hello Instabug' });
    assert.equal(created.status, 201);
    assert.deepEqual(Object.keys(created.body).sort(), [
      'body',
      'chat_number',
      'created_at',
      'number',
      'updated_at',
    ]);
    assert.equal(created.body.number, 1);
    assert.equal(created.body.chat_number, 1);
    const read = await api(server.url, 'GET', `${path}/1`);
    assert.equal(read.status, 200);
    assert.deepEqual(read.body, created.body);
  });

  it('refuses a message to a chat number never handed out, or to an unknown application', async () => {
    const { token } = await newChat();
    const missing = await post(`/applications/${token}/chats/2/messages`, { body: 'x' });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'chat_not_found');
    const unknown = await post('/applications/nope/chats/1/messages', { body: 'x' });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body.error.code, 'application_not_found');
  });

  it('refuses bodies that are not UTF-8 (415 for another charset, 400 for invalid bytes), stores nothing', async () => {
    const { path } = await newChat();
    const send = async (contentType: string, bytes: Buffer) => {
      const response = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': contentType },
        body: bytes,
      });
      return { status: response.status, body: (await response.json()) as { error: { code: string } } };
    };
    const latin1 = Buffer.from('{"body":"caf\u00e9"}', 'latin1');
    const declared = await send('application/json; charset=ISO-8859-1', latin1);
    assert.equal(declared.status, 415);
    assert.equal(declared.body.error.code, 'unsupported_media_type');
    const undeclared = await send('application/json', latin1);
    assert.equal(undeclared.status, 400);
    assert.equal(undeclared.body.error.code, 'malformed_json');
    const utf8 = await send('application/json; charset="UTF-8"', Buffer.from('{"body":"caf\u00e9"}'));
    assert.equal(utf8.status, 201);
    assert.equal((utf8.body as unknown as { body: string }).body, 'caf\u00e9');
    assert.equal((utf8.body as unknown as { number: number }).number, 1);
  });

  it('refuses a query string that does not decode (400) instead of searching its literal text', async () => {
    const { path } = await newChat();
    assert.equal((await post(path, { body: 'caf%E9' })).status, 201);
    for (const query of ['q=caf%E9', 'q=%ED%A0%80', 'q=100%', 'q=ok&limit=5%']) {
      const response = await api(server.url, 'GET', `${path}/search?${query}`);
      assert.equal(response.status, 400, query);
      assert.equal(response.body.error.code, 'bad_request', query);
    }
    // Encoded, the same text is a query like any other.
    const found = await api(server.url, 'GET', `${path}/search?q=${encodeURIComponent('caf%E9')}`);
    assert.equal(found.status, 200);
    assert.deepEqual(
      found.body.map((m: { body: string }) => m.body),
      ['caf%E9'],
    );
  });

  it('numbers 500 concurrent messages on one chat exactly 1..500, and stores every body', async () => {
    const { path } = await newChat();
    const responses = await Promise.all(
      Array.from({ length: 500 }, (_, i) => post(path, { body: `m-${i}` })),
    );
    assert.ok(responses.every((r) => r.status === 201));
    const numbers = responses.map((r) => r.body.number as number).sort((a, b) => a - b);
    assert.deepEqual(
      numbers,
      Array.from({ length: 500 }, (_, i) => i + 1),
    );
    const stored = await api(server.url, 'GET', `${path}?limit=1000`);
    const byNumber = new Map(stored.body.map((m: { number: number; body: string }) => [m.number, m.body]));
    for (const r of responses) assert.equal(byNumber.get(r.body.number), r.body.body);
  });

  it('validates bodies: required, a non-empty string, at most MESSAGE_MAX_BYTES of UTF-8', async () => {
    const { path } = await newChat();
    for (const body of [
      undefined,
      {},
      { body: '' },
      { body: 5 },
      { body: ['x'] },
      { body: 'x', extra: true },
    ]) {
      const response = await post(path, body ?? '');
      assert.equal(response.status, 422, JSON.stringify(body));
      assert.equal(response.body.error.code, 'validation_failed');
    }
    assert.equal((await post(path, { body: 'x'.repeat(MAX) })).status, 201);
    assert.equal((await post(path, { body: 'x'.repeat(MAX + 1) })).status, 422);
    // 342 three-byte characters are 1026 bytes: bytes count, not characters.
    assert.equal((await post(path, { body: '€'.repeat(342) })).status, 422);
    assert.equal((await post(path, { body: 'x'.repeat(2_000_000) })).status, 413);
  });

  it('edits with PUT and PATCH; the edit is visible to GET, list and search', async () => {
    const { path } = await newChat();
    await post(path, { body: 'original wording' });
    const put = await api(server.url, 'PUT', `${path}/1`, { body: 'first edit' });
    assert.equal(put.status, 200);
    assert.equal(put.body.body, 'first edit');
    assert.ok(put.body.updated_at >= put.body.created_at);
    const patch = await api(server.url, 'PATCH', `${path}/1`, { body: 'Second Edit' });
    assert.equal(patch.body.body, 'Second Edit');
    assert.equal((await api(server.url, 'GET', `${path}/1`)).body.body, 'Second Edit');
    assert.equal((await api(server.url, 'GET', path)).body[0].body, 'Second Edit');
    assert.equal((await api(server.url, 'GET', `${path}/search?q=original`)).body.length, 0);
    assert.equal((await api(server.url, 'GET', `${path}/search?q=second`)).body.length, 1);
    assert.equal((await api(server.url, 'PUT', `${path}/2`, { body: 'x' })).status, 404);
    assert.equal((await api(server.url, 'PUT', `${path}/1`, { body: '' })).status, 422);
  });

  it('pages messages with after / before and Link', async () => {
    const { path } = await newChat();
    for (let i = 1; i <= 5; i++) await post(path, { body: `n${i}` });
    const numbers = (r: { body: { number: number }[] }) => r.body.map((m) => m.number);
    const first = await api(server.url, 'GET', `${path}?limit=2`);
    assert.deepEqual(numbers(first), [1, 2]);
    assert.equal(first.headers.get('link'), `<${path}?limit=2&after=2>; rel="next"`);
    assert.deepEqual(numbers(await api(server.url, 'GET', `${path}?limit=2&after=4`)), [5]);
    const back = await api(server.url, 'GET', `${path}?limit=2&before=5`);
    assert.deepEqual(numbers(back), [3, 4]);
    assert.equal(back.headers.get('link'), `<${path}?limit=2&before=3>; rel="next"`);
    // Both cursors: the range between them, read downwards; the next page keeps the floor.
    const between = await api(server.url, 'GET', `${path}?limit=1&after=2&before=5`);
    assert.deepEqual(numbers(between), [4]);
    assert.equal(between.headers.get('link'), `<${path}?limit=1&before=4&after=2>; rel="next"`);
    assert.deepEqual(numbers(await api(server.url, 'GET', `${path}?limit=1&after=2&before=4`)), [3]);
    // The largest cursor is past every message, not a wrap-around to the start of the chat.
    assert.deepEqual((await api(server.url, 'GET', `${path}?after=4294967295`)).body, []);
    assert.equal((await api(server.url, 'GET', `${path}/9`)).status, 404);
    assert.equal((await api(server.url, 'GET', `${path}/0`)).status, 422);
  });

  it('keeps messages_count equal to the stored messages, within the counts interval, and updated_at with it', async () => {
    const { token, path } = await newChat();
    const before = (await api(server.url, 'GET', `/applications/${token}/chats/1`)).body;
    const created = await Promise.all(Array.from({ length: 40 }, (_, i) => post(path, { body: `c${i}` })));
    await eventually(
      async () => (await api(server.url, 'GET', `/applications/${token}/chats/1`)).body.messages_count === 40,
      5000,
      'messages_count = 40',
    );
    // The count is part of the chat: updated_at moved when it did, past every message's creation.
    assertTouchedByCount(
      before,
      (await api(server.url, 'GET', `/applications/${token}/chats/1`)).body,
      created,
    );
  });

  it('honours Idempotency-Key per chat, including concurrent repeats, and refuses a reused key', async () => {
    const { token, path } = await newChat();
    const key = { 'idempotency-key': 'msg-1' };
    const first = await post(path, { body: 'once' }, key);
    const again = await post(path, { body: 'once' }, key);
    assert.equal(again.status, 201);
    assert.deepEqual(again.body, first.body);
    assert.equal(again.headers.get('idempotent-replayed'), 'true');
    const reused = await post(path, { body: 'something else' }, key);
    assert.equal(reused.status, 422);
    assert.equal(reused.body.error.code, 'idempotency_key_reused');

    const racing = await Promise.all(
      Array.from({ length: 25 }, () => post(path, { body: 'race' }, { 'idempotency-key': 'race' })),
    );
    assert.ok(racing.every((r) => r.status === 201));
    assert.equal(new Set(racing.map((r) => r.body.number)).size, 1);

    await post(`/applications/${token}/chats`);
    const otherChat = await post(`/applications/${token}/chats/2/messages`, { body: 'once' }, key);
    assert.equal(otherChat.body.number, 1, 'another chat has its own key space');
    assert.equal((await api(server.url, 'GET', path)).body.length, 2);
  });
});

describe('search', () => {
  let server: TestServer;
  let path: string;
  let otherPath: string;
  const search = async (q: string, extra = '') =>
    api(server.url, 'GET', `${path}/search?q=${encodeURIComponent(q)}${extra}`);
  const found = async (q: string) => (await search(q)).body.map((m: { number: number }) => m.number);

  const bodies = [
    'Hello Instabug', // 1
    'INSTABUG rocks', // 2
    'nothing to see', // 3
    '中文测试消息', // 4
    'Ärger mit Σοφία', // 5
    '100% sure * not "quoted" \\ back', // 6
    'a', // 7
    'emoji 🎉 party', // 8
    'under_score and percent%', // 9
  ];

  before(async () => {
    server = await startServer();
    const token = (await api(server.url, 'POST', '/applications', { name: 's' })).body.token;
    await api(server.url, 'POST', `/applications/${token}/chats`);
    await api(server.url, 'POST', `/applications/${token}/chats`);
    path = `/applications/${token}/chats/1/messages`;
    otherPath = `/applications/${token}/chats/2/messages`;
    for (const body of bodies) await api(server.url, 'POST', path, { body });
    await api(server.url, 'POST', otherPath, { body: 'Instabug in the other chat' });
  });
  after(() => server.stop());

  it('finds case-insensitive substrings, newest first, in this chat only', async () => {
    assert.deepEqual(await found('stab'), [2, 1]);
    assert.deepEqual(await found('STAB'), [2, 1]);
    assert.deepEqual(await found('instabug'), [2, 1]);
    const response = await search('stab');
    assert.equal(response.status, 200);
    assert.deepEqual(Object.keys(response.body[0]).sort(), [
      'body',
      'chat_number',
      'created_at',
      'number',
      'updated_at',
    ]);
  });

  it('answers one- and two-character queries', async () => {
    assert.deepEqual(await found('a'), [9, 8, 7, 6, 2, 1]);
    assert.deepEqual(await found('In'), [3, 2, 1]);
    assert.deepEqual(await found('测'), [4]);
    assert.deepEqual(await found('🎉'), [8]);
  });

  it('handles Unicode, CJK and case folding beyond ASCII', async () => {
    assert.deepEqual(await found('测试消'), [4]);
    assert.deepEqual(await found('ärger'), [5]);
    assert.deepEqual(await found('ΣΟΦΊΑ'), [5]);
  });

  it('treats every character literally', async () => {
    assert.deepEqual(await found('%'), [9, 6]);
    assert.deepEqual(await found('_'), [9]);
    assert.deepEqual(await found('*'), [6]);
    assert.deepEqual(await found('"quoted"'), [6]);
    assert.deepEqual(await found('\\ back'), [6]);
    assert.deepEqual(await found('% sure *'), [6]);
    assert.deepEqual(await found('stab*'), []);
    assert.deepEqual(await found('NOT'), [6, 3]);
    assert.deepEqual(await found('bug OR nothing'), []);
  });

  it('accepts query as an alias, and refuses a missing or empty q with 422', async () => {
    const alias = await api(server.url, 'GET', `${path}/search?query=stab`);
    assert.deepEqual(
      alias.body.map((m: { number: number }) => m.number),
      [2, 1],
    );
    for (const query of ['', '?q=', '?query=']) {
      const response = await api(server.url, 'GET', `${path}/search${query}`);
      assert.equal(response.status, 422);
      assert.equal(response.body.error.code, 'validation_failed');
    }
    assert.equal(
      (await api(server.url, 'GET', '/applications/nope/chats/1/messages/search?q=x')).status,
      404,
    );
  });

  it('pages newest first with before and Link', async () => {
    const first = await search('a', '&limit=2');
    assert.deepEqual(
      first.body.map((m: { number: number }) => m.number),
      [9, 8],
    );
    const link = first.headers.get('link');
    assert.equal(link, `<${path}/search?q=a&limit=2&before=8>; rel="next"`);
    const next = await api(server.url, 'GET', /^<([^>]+)>/.exec(link!)![1]!);
    assert.deepEqual(
      next.body.map((m: { number: number }) => m.number),
      [7, 6],
    );
  });
});
