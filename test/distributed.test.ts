/**
 * The distributed mode end to end, on the real services: two API processes and a worker-and-indexer
 * process sharing MariaDB, Redis, RabbitMQ and OpenSearch. What the embedded tests check synchronously
 * holds here eventually (the worker persists after the 201; the indexer indexes after the commit), so
 * reads poll with a deadline.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import mysql from 'mysql2/promise';
import { Connection } from 'rabbitmq-client';
import { DEFAULT_TOPOLOGY } from '../src/queue/rabbitmq/queue.ts';
import { topologyQueueNames } from '../src/queue/rabbitmq/topology.ts';
import { concreteIndexName } from '../src/search/opensearch/mapping.ts';
import { api, eventually, type JsonResponse, startServer, type TestServer } from './helpers/server.ts';
import { service } from './helpers/services.ts';
import { createdNumbers, openStream } from './helpers/sse.ts';

const mysqlService = service('mysql');
const redisService = service('redis');
const amqpService = service('amqp');
const searchService = service('search');
const skip = mysqlService.skip || redisService.skip || amqpService.skip || searchService.skip;

describe('distributed mode: 2 API processes, a worker and an indexer on the real services', { skip }, () => {
  const name = `t${randomBytes(4).toString('hex')}`;
  const database = `chat_${name}`;
  let apiA: TestServer;
  let apiB: TestServer;
  let backend: TestServer;

  before(async () => {
    const admin = await mysql.createConnection(mysqlService.url!);
    await admin.query(`CREATE DATABASE \`${database}\` CHARACTER SET utf8mb4`);
    await admin.end();
    const url = new URL(mysqlService.url!);
    url.pathname = `/${database}`;
    const env = {
      MYSQL_URL: url.toString(),
      REDIS_URL: redisService.url!,
      AMQP_URL: amqpService.url!,
      SEARCH_URL: searchService.url!,
      DEPLOYMENT_NAME: name,
    };
    // The backend first: it migrates the database and declares the queues the API processes publish to.
    backend = await startServer({ env, role: 'all' });
    [apiA, apiB] = await Promise.all([startServer({ env, role: 'api' }), startServer({ env, role: 'api' })]);
  });

  after(async () => {
    const codes = await Promise.all([apiA?.stop(), apiB?.stop()]);
    // The backend drains its queues and closes in order (HTTP, write queue, index queue, clients, store).
    codes.push(await backend?.stop());
    assert.deepEqual(codes, [0, 0, 0], 'every process shut down cleanly');
    const admin = await mysql.createConnection(mysqlService.url!);
    await admin.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await admin.end();
    const broker = new Connection(amqpService.url!);
    for (const queue of [`${name}.writes`, `${name}.index`].flatMap((q) =>
      topologyQueueNames({ ...DEFAULT_TOPOLOGY, queue: q }),
    )) {
      await broker.queueDelete({ queue }).catch(() => {});
    }
    const retries = await fetch(`${searchService.url}/${concreteIndexName(`${name}-messages`)}`, {
      method: 'DELETE',
    });
    await retries.body?.cancel();
    await broker.close();
  });

  const both = () => [apiA, apiB];

  it('numbers 400 concurrent creates spread over both API processes exactly 1..400, and stores them all', async () => {
    const token = (await api(apiA.url, 'POST', '/applications', { name: 'dist' })).body.token as string;
    const chat = await api(apiB.url, 'POST', `/applications/${token}/chats`);
    assert.equal(chat.status, 201);
    // Posting to the chat the moment its create returned, through the other process, before the worker
    // has necessarily stored the chat.
    const path = `/applications/${token}/chats/${chat.body.number}/messages`;
    const first = await api(apiA.url, 'POST', path, { body: 'first' });
    assert.equal(first.status, 201);
    assert.equal(first.body.number, 1);

    const responses = await Promise.all(
      Array.from({ length: 399 }, (_, i) =>
        api(both()[i % 2]!.url, 'POST', path, { body: `m${i} needle${i % 7}` }),
      ),
    );
    assert.ok(
      responses.every((r) => r.status === 201),
      JSON.stringify(responses.find((r) => r.status !== 201)?.body),
    );
    const numbers = [1, ...responses.map((r) => r.body.number as number)].sort((a, b) => a - b);
    assert.deepEqual(
      numbers,
      Array.from({ length: 400 }, (_, i) => i + 1),
    );

    const stored = await eventually(
      async () => {
        const page: JsonResponse = await api(apiB.url, 'GET', `${path}?limit=1000`);
        return page.body.length === 400 ? page.body : undefined;
      },
      20_000,
      'all 400 messages persisted',
    );
    const byNumber = new Map(stored.map((m: { number: number; body: string }) => [m.number, m.body]));
    for (const r of responses) assert.equal(byNumber.get(r.body.number), r.body.body);
    await eventually(
      async () => (await api(apiA.url, 'GET', `/applications/${token}/chats/1`)).body.messages_count === 400,
      20_000,
      'messages_count = 400',
    );
    assert.equal((await api(apiA.url, 'GET', `/applications/${token}`)).body.chats_count, 1);

    // Search converges on the stored bodies, and edits reach it too.
    await eventually(
      async () => (await api(apiA.url, 'GET', `${path}/search?q=NEEDLE3&limit=1000`)).body.length === 57,
      20_000,
      'the index caught up',
    );
    const edited = await api(apiB.url, 'PUT', `${path}/1`, { body: 'Edited haystack' });
    assert.equal(edited.status, 200);
    await eventually(
      async () => {
        const found = (await api(apiA.url, 'GET', `${path}/search?q=haystack`)).body;
        return found.length === 1 && found[0].number === 1;
      },
      20_000,
      'the edit is searchable',
    );
  });

  it('answers a repeated Idempotency-Key from either process with the original 201', async () => {
    const token = (await api(apiA.url, 'POST', '/applications', { name: 'idem' })).body.token as string;
    await api(apiA.url, 'POST', `/applications/${token}/chats`);
    const path = `/applications/${token}/chats/1/messages`;
    const key = { 'idempotency-key': 'dist-once' };
    const results = await Promise.all(
      both().map((server) => api(server.url, 'POST', path, { body: 'once' }, key)),
    );
    assert.ok(results.every((r) => r.status === 201));
    assert.equal(results[0]!.body.number, results[1]!.body.number);
    const again = await api(apiB.url, 'POST', path, { body: 'once' }, key);
    assert.deepEqual(again.body, results[0]!.body);
    await eventually(
      async () => (await api(apiA.url, 'GET', path)).body.length === 1,
      20_000,
      'one message persisted',
    );
  });

  it('reads and edits of creates answered 201 but not stored yet wait for the worker instead of 404', async () => {
    const token = (await api(apiA.url, 'POST', '/applications', { name: 'lag' })).body.token as string;
    await api(apiA.url, 'POST', `/applications/${token}/chats`);
    await eventually(
      async () => (await api(apiB.url, 'GET', `/applications/${token}/chats/1`)).status === 200,
      10_000,
      'the chat stored',
    );
    const path = `/applications/${token}/chats/1/messages`;
    // The worker frozen: creates are acknowledged (they need only Redis and RabbitMQ), not stored.
    backend.process.kill('SIGSTOP');
    let read: Promise<JsonResponse>;
    let readChat: Promise<JsonResponse>;
    let listChat: Promise<JsonResponse>;
    let edit: Promise<JsonResponse>;
    try {
      assert.equal((await api(apiA.url, 'POST', path, { body: 'draft' })).status, 201);
      const chat = await api(apiA.url, 'POST', `/applications/${token}/chats`);
      assert.equal(chat.body.number, 2);
      // Still not stored after the wait (3 s): 503 and when to retry, never 404.
      const late = await api(apiB.url, 'GET', `${path}/1`);
      assert.equal(late.status, 503);
      assert.equal(late.body.error.code, 'unavailable');
      assert.ok(late.headers.get('retry-after'));
      read = api(apiB.url, 'GET', `${path}/1`);
      readChat = api(apiB.url, 'GET', `/applications/${token}/chats/2`);
      listChat = api(apiA.url, 'GET', `/applications/${token}/chats/2/messages`);
      edit = api(apiB.url, 'PUT', `${path}/1`, { body: 'final' });
      // Once all four find their records missing and wait (store_waits), let the worker go on.
      const waits = async (url: string) =>
        Number(/\nstore_waits (\d+)/.exec(await (await fetch(`${url}/metrics`)).text())?.[1]);
      await eventually(
        async () => (await waits(apiB.url)) === 3 && (await waits(apiA.url)) === 1,
        10_000,
        'three requests waiting on B, one on A',
      );
    } finally {
      backend.process.kill('SIGCONT');
    }
    const [message, chat2, messages, edited] = await Promise.all([read, readChat, listChat, edit]);
    assert.equal(message.status, 200);
    assert.ok(['draft', 'final'].includes(message.body.body), message.body.body);
    assert.equal(chat2.status, 200);
    assert.equal(chat2.body.number, 2);
    assert.equal(messages.status, 200);
    assert.deepEqual(messages.body, []);
    assert.equal(edited.status, 200);
    assert.equal(edited.body.body, 'final');
    assert.equal((await api(apiA.url, 'GET', `${path}/1`)).body.body, 'final');
    // A number never handed out is still 404 at once.
    assert.equal((await api(apiB.url, 'PUT', `${path}/2`, { body: 'x' })).status, 404);
    assert.equal((await api(apiB.url, 'GET', `${path}/2`)).status, 404);
    assert.equal((await api(apiB.url, 'GET', `/applications/${token}/chats/3`)).status, 404);
  });

  it('streams messages created through one API process to a subscriber of the other, in order, and resumes on either', async () => {
    const token = (await api(apiA.url, 'POST', '/applications', { name: 'live' })).body.token as string;
    await api(apiA.url, 'POST', `/applications/${token}/chats`);
    const path = `/applications/${token}/chats/1/messages`;
    // Subscribed at once, on A, to a chat the worker may not have stored yet.
    const onA = await openStream(`${apiA.url}${path}/stream?after=0`);
    const onB = await openStream(`${apiB.url}${path}/stream?after=0`);
    try {
      assert.equal(onA.status, 200);
      const responses = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          api(both()[i % 4 === 0 ? 0 : 1]!.url, 'POST', path, { body: `live ${i}` }),
        ),
      );
      assert.ok(responses.every((r) => r.status === 201));
      const all = Array.from({ length: 200 }, (_, i) => i + 1);
      for (const stream of [onA, onB]) {
        await eventually(async () => createdNumbers(stream).length >= 200, 20_000, '200 live events');
        assert.deepEqual(createdNumbers(stream), all);
      }
      const bodies = new Map(responses.map((r) => [r.body.number as number, r.body.body as string]));
      for (const e of onA.events)
        assert.equal(JSON.parse(e.data).body, bodies.get(JSON.parse(e.data).number));

      // An edit through B reaches A's subscriber, with A's position as its id: message 200, the first edit.
      assert.equal((await api(apiB.url, 'PUT', `${path}/5`, { body: 'edited on B' })).status, 200);
      await eventually(async () => onA.events.some((e) => e.event === 'edited'), 20_000, 'the edit on A');
      const edit = onA.events.find((e) => e.event === 'edited')!;
      assert.equal(edit.id, '200:1');
      assert.equal(JSON.parse(edit.data).body, 'edited on B');
    } finally {
      onA.close();
      onB.close();
    }

    // Resume on B from A's position 150 (before any edit) while more arrive through A: the edit of 5 it
    // missed, the rest, then live, no gap or duplicate.
    const resumed = await openStream(`${apiB.url}${path}/stream`, { 'last-event-id': '150' });
    try {
      const more = await Promise.all(
        Array.from({ length: 50 }, (_, i) => api(apiA.url, 'POST', path, { body: `more ${i}` })),
      );
      assert.ok(more.every((r) => r.status === 201));
      await eventually(async () => createdNumbers(resumed).length >= 100, 20_000, 'replay and live on B');
      assert.deepEqual(
        createdNumbers(resumed),
        Array.from({ length: 100 }, (_, i) => 151 + i),
      );
      const [first] = resumed.events;
      assert.deepEqual(
        [first?.event, JSON.parse(first?.data ?? '{}').number, first?.id],
        ['edited', 5, '150:1'],
      );
    } finally {
      resumed.close();
    }
  });

  it('indexes what travels with an event that cannot be indexed, dead-letters that event, and stays ready', async () => {
    const token = (await api(apiA.url, 'POST', '/applications', { name: 'poison' })).body.token as string;
    assert.equal((await api(apiA.url, 'POST', `/applications/${token}/chats`)).status, 201);
    const created = await api(apiB.url, 'POST', `/applications/${token}/chats/1/messages`, { body: 'plain' });
    assert.equal(created.status, 201);
    const url = new URL(mysqlService.url!);
    url.pathname = `/${database}`;
    const db = await mysql.createConnection(url.toString());
    const [[app]] = (await db.query('SELECT id FROM applications WHERE token = ?', [token])) as unknown as [
      { id: number }[],
    ];
    await db.end();
    // An edit's event for the stored message, in one queue message with an event whose chat does not exist.
    const at = new Date(Date.now() + 1000).toISOString();
    const event = { kind: 'message.index', number: 1, createdAt: created.body.created_at, updatedAt: at };
    const broker = new Connection(amqpService.url!);
    const publisher = broker.createPublisher({ confirm: true });
    await publisher.send(
      { exchange: '', routingKey: `${name}.index`, durable: true },
      {
        kind: 'message.index.batch',
        events: [
          { ...event, applicationId: app!.id, chatNumber: 2, body: 'early okapi' },
          { ...event, applicationId: app!.id, chatNumber: 1, body: 'plain, then quagga' },
        ],
      },
    );
    // And one the engine refuses for good (OpenSearch versions documents by updatedAt).
    await publisher.send(
      { exchange: '', routingKey: `${name}.index`, durable: true },
      { ...event, applicationId: app!.id, chatNumber: 1, updatedAt: 'yesterday', body: 'undated walrus' },
    );
    await publisher.close();
    await broker.close();
    const found = await eventually(
      async () => {
        const page = await api(apiA.url, 'GET', `/applications/${token}/chats/1/messages/search?q=quagga`);
        return page.status === 200 && page.body.length === 1 && page.body;
      },
      15_000,
      'the message travelling with the bad event indexed',
    );
    assert.equal(found[0].body, 'plain, then quagga');
    // The events that can never be indexed are not retried for hours (failing /readyz all along): their
    // queue messages go to the dead letters, an alarm in the metrics, and the backend stays ready.
    await eventually(
      async () =>
        new RegExp(`queue_dead_letters\\{queue="${name}\\.index"\\} 2`).test(
          await (await fetch(`${backend.url}/metrics`)).text(),
        ),
      15_000,
      'the bad index events dead-lettered',
    );
    const ready = await api(backend.url, 'GET', '/readyz');
    assert.equal(ready.status, 200, JSON.stringify(ready.body));
    // What the operator finds there: the queue messages as published. Taking them leaves the dead-letter
    // queue empty again for the test below.
    const inspector = new Connection(amqpService.url!);
    try {
      const bodies: string[] = [];
      for (let i = 0; i < 2; i++) {
        const dead = await inspector.basicGet({ queue: `${name}.index.dead`, noAck: true });
        const body = dead?.body as { events?: { body: string }[]; body?: string } | undefined;
        bodies.push((body?.events ?? [body]).map((e) => e?.body).join(' + '));
      }
      assert.deepEqual(bodies.sort(), ['early okapi + plain, then quagga', 'undated walrus']);
    } finally {
      await inspector.close();
    }
  });

  it('refuses a message to a chat number never handed out, and reports every dependency ready', async () => {
    const token = (await api(apiA.url, 'POST', '/applications', { name: 'x' })).body.token as string;
    const missing = await api(apiB.url, 'POST', `/applications/${token}/chats/1/messages`, { body: 'x' });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'chat_not_found');
    for (const server of [apiA, apiB, backend]) {
      const ready = await api(server.url, 'GET', '/readyz');
      assert.equal(ready.status, 200, JSON.stringify(ready.body));
    }
    // Dead letters are an alarm an operator can scrape: none here.
    const metrics = await (await fetch(`${backend.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`queue_dead_letters\\{queue="${name}\\.writes"\\} 0`));
    assert.match(metrics, new RegExp(`queue_dead_letters\\{queue="${name}\\.index"\\} 0`));
    // The indexer reports its stages: the messages of the tests above reach the engine.
    const deadline = Date.now() + 10_000;
    let indexed = '';
    while (!/index_lag_seconds_count [1-9]/.test(indexed) && Date.now() < deadline) {
      indexed = await (await fetch(`${backend.url}/metrics`)).text();
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert.match(indexed, /index_lag_seconds_count [1-9]/);
    assert.match(indexed, /index_bulk_duration_seconds_count [1-9]/);
    assert.match(indexed, /index_batch_size_count [1-9]/);
  });
});
