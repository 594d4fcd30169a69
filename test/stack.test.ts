/**
 * The distributed topology as an operator starts it: `scripts/stack/up.sh` (npm run stack:up) brings up
 * private MariaDB, Redis, RabbitMQ and OpenSearch instances, a worker, an indexer, three API processes and
 * NGINX; the tests talk to NGINX only. Ports are moved off the defaults so this runs beside the services
 * the other integration tests use; `scripts/stack/down.sh` stops it all again.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { api, eventually, type JsonResponse } from './helpers/server.ts';
import { service } from './helpers/services.ts';
import { createdNumbers, openStream } from './helpers/sse.ts';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const STATE = '/tmp/chat-stack-test';
const PORT = 18180;
const ADMIN = 'stack-test-admin-token-0123456789';
const env = {
  ...process.env,
  ADMIN_TOKEN: ADMIN,
  STACK_PORT: String(PORT),
  API_BASE_PORT: '18101',
  WORKER_PORT: '18110',
  INDEXER_PORT: '18120',
  MARIADB_PORT: '13307',
  REDIS_PORT: '16380',
  RABBITMQ_PORT: '15673',
  OPENSEARCH_PORT: '19201',
  OPENSEARCH_TRANSPORT_PORT: '19301',
  LOG_LEVEL: 'warn',
  // Heartbeats often enough to see several through NGINX within a test.
  STREAM_HEARTBEAT_MS: '300',
};
// The stack installs nothing the CI has not installed already; locally it needs the services' packages.
const installed = existsSync('/usr/sbin/nginx') && existsSync('/usr/sbin/mariadbd');
const skip = installed
  ? false
  : service('mysql').skip || 'service unavailable: run scripts/services/install.sh';

describe('the stack through NGINX: three API processes, a worker, an indexer', { skip }, () => {
  const base = `http://127.0.0.1:${PORT}`;

  before(async () => {
    await run('bash', [`${ROOT}scripts/stack/up.sh`, STATE], { env, timeout: 180_000 });
  });

  after(async () => {
    await run('bash', [`${ROOT}scripts/stack/down.sh`, STATE], { env, timeout: 120_000 });
    // Nothing of ours answers any more.
    await assert.rejects(fetch(`${base}/healthz`));
  });

  it('spreads requests over the API processes and numbers 1 000 concurrent creates exactly 1..1000', async () => {
    const token = (await api(base, 'POST', '/applications', { name: 'stack' })).body.token as string;
    assert.equal((await api(base, 'POST', `/applications/${token}/chats`)).status, 201);
    const path = `/applications/${token}/chats/1/messages`;
    const responses: JsonResponse[] = [];
    // 1 000 creates, 100 at a time (what one client machine would hold open), all through NGINX.
    for (let wave = 0; wave < 10; wave++) {
      responses.push(
        ...(await Promise.all(
          Array.from({ length: 100 }, (_, i) => api(base, 'POST', path, { body: `w${wave} m${i}` })),
        )),
      );
    }
    assert.ok(responses.every((r) => r.status === 201));
    assert.deepEqual(
      responses.map((r) => r.body.number as number).sort((a, b) => a - b),
      Array.from({ length: 1000 }, (_, i) => i + 1),
    );
    const stored = await eventually(
      async () => {
        const page: JsonResponse = await api(base, 'GET', `${path}?limit=1000`);
        return page.body.length === 1000 ? page.body : undefined;
      },
      30_000,
      'all 1 000 persisted',
    );
    const byNumber = new Map(stored.map((m: { number: number; body: string }) => [m.number, m.body]));
    for (const r of responses) assert.equal(byNumber.get(r.body.number), r.body.body);

    // NGINX's access log names the upstream of every request: all three API processes served. It is
    // flushed every second, so poll it.
    await eventually(
      async () => {
        const log = await readFile(`${STATE}/nginx/access.log`, 'utf8').catch(() => '');
        return (
          new Set([...log.matchAll(/"upstream_addr":"(127\.0\.0\.1:1810\d)"/g)].map((m) => m[1])).size === 3
        );
      },
      5000,
      'three upstreams in the access log',
    );
  });

  it('loses nothing when the worker is killed -9 mid-load and restarted', async () => {
    const token = (await api(base, 'POST', '/applications', { name: 'worker-crash' })).body.token as string;
    await api(base, 'POST', `/applications/${token}/chats`);
    const path = `/applications/${token}/chats/1/messages`;
    const acked: { number: number; body: string }[] = [];
    let stop = false;
    const load = Promise.all(
      Array.from({ length: 16 }, async (_, worker) => {
        for (let i = 0; !stop; i++) {
          const r = await api(base, 'POST', path, { body: `w${worker} i${i}` });
          if (r.status === 201) acked.push({ number: r.body.number, body: r.body.body });
        }
      }),
    );
    try {
      await eventually(async () => acked.length >= 300, 30_000, '300 creates acknowledged');
      const pid = Number(await readFile(`${STATE}/run/worker.pid`, 'utf8'));
      process.kill(pid, 'SIGKILL');
      // The API processes keep accepting while no worker runs: creates only need Redis and RabbitMQ.
      const before = acked.length;
      await eventually(async () => acked.length >= before + 300, 30_000, 'creates continue without a worker');
      // up.sh starts again only what is not running: the worker.
      await run('bash', [`${ROOT}scripts/stack/up.sh`, STATE], { env, timeout: 180_000 });
      await eventually(async () => acked.length >= before + 600, 30_000, 'creates after the restart');
    } finally {
      stop = true;
      await load;
    }
    const stored = await eventually(
      async () => {
        const all = await allMessages(base, path);
        return all.length >= acked.length ? all : undefined;
      },
      60_000,
      'every acknowledged create persisted',
    );
    const byNumber = new Map(stored.map((m) => [m.number, m.body]));
    for (const m of acked) assert.equal(byNumber.get(m.number), m.body, `message ${m.number}`);
    assert.deepEqual(
      [...byNumber.keys()].sort((a, b) => a - b),
      Array.from({ length: acked.length }, (_, i) => i + 1),
    );
    await eventually(
      async () =>
        (await api(base, 'GET', `/applications/${token}/chats/1`)).body.messages_count === acked.length,
      20_000,
      'messages_count exact after the redelivery',
    );
  });

  it('keeps creating while the search engine is down, answers search with 503, then catches up', async () => {
    const token = (await api(base, 'POST', '/applications', { name: 'outage' })).body.token as string;
    await api(base, 'POST', `/applications/${token}/chats`);
    const path = `/applications/${token}/chats/1/messages`;
    await run('bash', [`${ROOT}scripts/services/stop.sh`, `${STATE}/services`, 'opensearch'], { env });
    try {
      const created = await Promise.all(
        Array.from({ length: 20 }, (_, i) => api(base, 'POST', path, { body: `during the outage ${i}` })),
      );
      assert.ok(
        created.every((r) => r.status === 201),
        'creates do not need the search engine',
      );
      const search = await api(base, 'GET', `${path}/search?q=outage`);
      assert.equal(search.status, 503);
      assert.equal(search.body.error.code, 'unavailable');
      assert.ok(search.headers.get('retry-after'));
    } finally {
      await run('bash', [`${ROOT}scripts/services/start.sh`, `${STATE}/services`, 'opensearch'], {
        env,
        timeout: 120_000,
      });
    }
    await eventually(
      async () => {
        const found = await api(base, 'GET', `${path}/search?q=outage&limit=50`);
        return found.status === 200 && found.body.length === 20;
      },
      90_000,
      'the index caught up after the outage',
    );
  });

  it('keeps the API contract at the edge: errors in the model, request ids, the admin list, search', async () => {
    const missing = await api(base, 'GET', '/applications/no-such-token');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error.code, 'application_not_found');
    const withId = await api(base, 'GET', '/healthz', undefined, { 'x-request-id': 'edge-abc-1' });
    assert.equal(withId.headers.get('x-request-id'), 'edge-abc-1');
    assert.equal((await api(base, 'GET', '/applications')).status, 401);
    const listed = await api(base, 'GET', '/applications?limit=1', undefined, {
      authorization: `Bearer ${ADMIN}`,
    });
    assert.equal(listed.status, 200);
    const tooBig = await api(base, 'POST', '/applications', { name: 'x'.repeat(1_100_000) });
    assert.equal(tooBig.status, 413);
    assert.equal(tooBig.body.error.code, 'payload_too_large');

    const token = (await api(base, 'POST', '/applications', { name: 'search' })).body.token as string;
    await api(base, 'POST', `/applications/${token}/chats`);
    const path = `/applications/${token}/chats/1/messages`;
    await api(base, 'POST', path, { body: 'Hello Instabug' });
    await api(base, 'POST', path, { body: 'nothing here' });
    await eventually(
      async () => {
        const found = (await api(base, 'GET', `${path}/search?q=STAB`)).body;
        return Array.isArray(found) && found.length === 1 && found[0].body === 'Hello Instabug';
      },
      20_000,
      'search finds it through NGINX',
    );
  });

  it('streams live events through NGINX unbuffered, with heartbeats, from every API process, and resumes', async () => {
    const token = (await api(base, 'POST', '/applications', { name: 'live-edge' })).body.token as string;
    await api(base, 'POST', `/applications/${token}/chats`);
    const path = `/applications/${token}/chats/1/messages`;
    const stream = await openStream(`${base}${path}/stream?after=0`);
    try {
      assert.equal(stream.status, 200);
      assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
      // Heartbeat comments reach the client as they are written: nothing sits in a proxy buffer.
      await eventually(async () => stream.parser.comments >= 3, 10_000, 'three heartbeats through NGINX');
      // NGINX spreads these creates over the three API processes; the one subscriber sees them all, in order.
      for (let i = 1; i <= 30; i++) {
        assert.equal((await api(base, 'POST', path, { body: `edge ${i}` })).status, 201);
        await eventually(async () => createdNumbers(stream).length === i, 10_000, `event ${i} through NGINX`);
      }
      assert.deepEqual(
        createdNumbers(stream),
        Array.from({ length: 30 }, (_, i) => i + 1),
      );
    } finally {
      stream.close();
    }
    const resumed = await openStream(`${base}${path}/stream`, { 'last-event-id': '25' });
    try {
      await api(base, 'POST', path, { body: 'edge 31' });
      await eventually(async () => createdNumbers(resumed).length === 6, 10_000, 'replay and live');
      assert.deepEqual(createdNumbers(resumed), [26, 27, 28, 29, 30, 31]);
    } finally {
      resumed.close();
    }
  });
});

async function allMessages(base: string, path: string): Promise<{ number: number; body: string }[]> {
  const rows: { number: number; body: string }[] = [];
  for (let after = 0; ; ) {
    const page: JsonResponse = await api(base, 'GET', `${path}?limit=1000&after=${after}`);
    rows.push(...page.body);
    if (!page.headers.get('link')) return rows;
    after = rows.at(-1)!.number;
  }
}
