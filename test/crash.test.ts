/**
 * Crash safety, proven by crashing: SIGKILL the server in the middle of a create load, restart it on the
 * same data, and require every acknowledged chat and message with its number and body, numbers exactly
 * 1..n per parent, and numbering that continues after the last stored number.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { after, describe, it } from 'node:test';
import { api, eventually, type JsonResponse, startServer, type TestServer } from './helpers/server.ts';

interface Acked {
  chat: number;
  number: number;
  body: string;
}

/** Posts messages from `concurrency` loops until the server stops answering; returns what got a 201. */
async function load(url: string, token: string, chats: number[], concurrency: number) {
  const messages: Acked[] = [];
  const newChats: number[] = [];
  let stop = false;
  const loop = async (worker: number) => {
    for (let i = 0; !stop; i++) {
      try {
        if (i % 50 === 49) {
          const chat = await api(url, 'POST', `/applications/${token}/chats`);
          if (chat.status === 201) newChats.push(chat.body.number);
          continue;
        }
        const chat = chats[(worker + i) % chats.length]!;
        const body = `w${worker}-i${i}-${'x'.repeat(i % 40)}`;
        const r = await api(url, 'POST', `/applications/${token}/chats/${chat}/messages`, { body });
        if (r.status === 201) messages.push({ chat, number: r.body.number, body: r.body.body });
      } catch {
        stop = true; // connection refused or reset: the server is gone
      }
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, (_, w) => loop(w)));
  return { messages, newChats, done, halt: () => (stop = true) };
}

async function allMessages(url: string, token: string, chat: number) {
  const rows: { number: number; body: string }[] = [];
  let after = 0;
  for (;;) {
    const page = await api(
      url,
      'GET',
      `/applications/${token}/chats/${chat}/messages?limit=1000&after=${after}`,
    );
    assert.equal(page.status, 200);
    rows.push(...page.body);
    if (!page.headers.get('link')) return rows;
    after = rows.at(-1)!.number;
  }
}

describe('crash safety (kill -9 mid-load)', () => {
  let server: TestServer | undefined;
  let dataDir: string | undefined;
  after(async () => {
    await server?.kill();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps every acknowledged write, with no duplicate and no gap, across two crashes', async () => {
    const env = { SQLITE_SYNCHRONOUS: 'FULL', LOG_LEVEL: 'warn' };
    server = await startServer({ env, keepData: true });
    dataDir = server.dataDir;
    const token = (await api(server.url, 'POST', '/applications', { name: 'crash' })).body.token as string;
    const chats: number[] = [];
    for (let i = 0; i < 4; i++)
      chats.push((await api(server.url, 'POST', `/applications/${token}/chats`)).body.number);

    const acked: Acked[] = [];
    const ackedChats = new Set(chats);
    for (let round = 0; round < 2; round++) {
      const running = await load(server.url, token, chats, 64);
      // Kill once a good number of writes were acknowledged, while the load is still going.
      await eventually(
        async () => running.messages.length >= 800 * (round + 1),
        30_000,
        'acknowledged writes',
      );
      await server.kill();
      await running.done;
      acked.push(...running.messages);
      for (const chat of running.newChats) ackedChats.add(chat);

      server = await startServer({ env, dataDir });
      for (const chat of chats) {
        const stored = await allMessages(server.url, token, chat);
        const numbers = stored.map((m) => m.number);
        assert.deepEqual(
          numbers,
          numbers.map((_, i) => i + 1),
          `chat ${chat}: stored numbers are exactly 1..n`,
        );
        // Counts are kept in the transaction that stores the rows, so a crash cannot leave them behind.
        const counted: JsonResponse = await api(server.url, 'GET', `/applications/${token}/chats/${chat}`);
        assert.equal(counted.body.messages_count, stored.length, `chat ${chat}: messages_count`);
        const byNumber = new Map(stored.map((m) => [m.number, m.body]));
        for (const m of acked.filter((a) => a.chat === chat)) {
          assert.equal(byNumber.get(m.number), m.body, `acknowledged message ${chat}/${m.number} survived`);
        }
        // Numbering continues after what is stored: nothing acknowledged is handed out again.
        const next: JsonResponse = await api(
          server.url,
          'POST',
          `/applications/${token}/chats/${chat}/messages`,
          {
            body: 'next',
          },
        );
        assert.equal(next.status, 201);
        assert.equal(next.body.number, stored.length + 1);
        acked.push({ chat, number: next.body.number, body: 'next' });
      }
      const storedChats = (await api(server.url, 'GET', `/applications/${token}/chats?limit=1000`)).body.map(
        (c: { number: number }) => c.number,
      );
      assert.deepEqual(
        storedChats,
        storedChats.map((_: number, i: number) => i + 1),
      );
      for (const chat of ackedChats)
        assert.ok(storedChats.includes(chat), `acknowledged chat ${chat} survived`);
      // The search index follows the store on its own thread, so the crash may have cut it short: the
      // latest acknowledged messages (the likeliest to have been lost) are found by search at once.
      for (const m of acked.filter((a) => a.body.startsWith('w')).slice(-100)) {
        const found: JsonResponse = await api(
          server.url,
          'GET',
          `/applications/${token}/chats/${m.chat}/messages/search?q=${encodeURIComponent(m.body)}`,
        );
        assert.equal(found.status, 200);
        assert.ok(
          found.body.some((r: { number: number }) => r.number === m.number),
          `acknowledged message ${m.chat}/${m.number} is found by search`,
        );
      }
      assert.equal(
        (await api(server.url, 'GET', `/applications/${token}`)).body.chats_count,
        storedChats.length,
      );
    }
    assert.ok(acked.length >= 1600);
  });
});

describe('graceful shutdown (SIGTERM mid-load)', () => {
  it('is not held by connections that carry no request, and still answers the one in flight', async () => {
    const server = await startServer({ env: { LOG_LEVEL: 'info' } });
    const { port } = new URL(server.url);
    const open = () =>
      new Promise<Socket>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => resolve(socket)).on('error', reject);
      });
    const token = (await api(server.url, 'POST', '/applications', { name: 'quiet' })).body.token as string;
    await api(server.url, 'POST', `/applications/${token}/chats`);
    // Opened and silent (a browser's preconnect), and stopped halfway through its headers.
    const silent = await open();
    const halfHeaders = await open();
    halfHeaders.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    // A create whose body is still arriving when the shutdown begins.
    const body = JSON.stringify({ body: 'sent across the shutdown' });
    const creating = await open();
    let answer = '';
    creating.setEncoding('utf8').on('data', (chunk: string) => (answer += chunk));
    const answered = new Promise((resolve) => creating.on('close', resolve));
    // Expect: 100-continue: its "100 Continue" says the server has the request, before any of its body.
    creating.write(
      `POST /applications/${token}/chats/1/messages HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`,
    );
    await eventually(async () => answer.startsWith('HTTP/1.1 100 Continue'), 5000, 'the create received');

    const started = Date.now();
    const stopped = server.stop();
    await eventually(async () => /shutting down/.test(server.output()), 5000, 'the shutdown began');
    creating.write(body);
    const code = await stopped;
    await answered;
    assert.equal(code, 0, 'clean exit');
    assert.match(server.output(), /stopped cleanly/);
    assert.ok(
      Date.now() - started < 5000,
      `stopped in ${Date.now() - started} ms, not at the shutdown timeout`,
    );
    assert.match(answer, /\r\n\r\nHTTP\/1\.1 201 /);
    assert.match(answer, /"number":1/);
    for (const socket of [silent, halfHeaders]) {
      await eventually(async () => socket.closed, 5000, 'the connection without a request was closed');
    }
  });

  it('answers every in-flight request, drains the queue and persists every 201', async () => {
    let server = await startServer({ env: { LOG_LEVEL: 'info' }, keepData: true });
    const dataDir = server.dataDir;
    try {
      const token = (await api(server.url, 'POST', '/applications', { name: 'term' })).body.token as string;
      await api(server.url, 'POST', `/applications/${token}/chats`);
      const path = `/applications/${token}/chats/1/messages`;
      const keyed = await api(
        server.url,
        'POST',
        path,
        { body: 'once' },
        { 'idempotency-key': 'across-restart' },
      );
      const running = await load(server.url, token, [1], 32);
      await eventually(async () => running.messages.length >= 300, 20_000, 'acknowledged writes');
      const code = await server.stop();
      running.halt();
      await running.done;
      assert.equal(code, 0, 'clean exit');
      assert.match(server.output(), /stopped cleanly/);

      server = await startServer({ dataDir });
      // The idempotency record was stored with the message: a retry after the restart is a replay.
      const replay = await api(
        server.url,
        'POST',
        path,
        { body: 'once' },
        { 'idempotency-key': 'across-restart' },
      );
      assert.equal(replay.status, 201);
      assert.equal(replay.headers.get('idempotent-replayed'), 'true');
      assert.deepEqual(replay.body, keyed.body);
      const stored = await allMessages(server.url, token, 1);
      const byNumber = new Map(stored.map((m) => [m.number, m.body]));
      for (const m of running.messages) assert.equal(byNumber.get(m.number), m.body);
      assert.deepEqual(
        stored.map((m) => m.number),
        stored.map((_, i) => i + 1),
      );
    } finally {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
