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
import { request as httpRequest } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { type CreateLoad, startCreateLoad } from './helpers/load.ts';
import { api, eventually, type JsonResponse } from './helpers/server.ts';
import { envWithoutServiceSettings, service } from './helpers/services.ts';
import { createdNumbers, openStream } from './helpers/sse.ts';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const STATE = '/tmp/chat-stack-test';
const PORT = 18180;
const ADMIN = 'stack-test-admin-token-0123456789';
const env = {
  ...envWithoutServiceSettings(),
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

  // The faults of issue 3, each under a load of concurrent creates through NGINX. A request may fail during
  // a fault; what was acknowledged must be stored, and the numbers must stay exactly 1..n.
  const services = (script: 'start' | 'stop', service: string, ...flags: string[]) =>
    run('bash', [`${ROOT}scripts/services/${script}.sh`, `${STATE}/services`, service, ...flags], {
      env,
      timeout: 180_000,
    });
  // up.sh starts again only what is not running.
  const restartStopped = () => run('bash', [`${ROOT}scripts/stack/up.sh`, STATE], { env, timeout: 180_000 });
  const pidOf = async (file: string) => Number(await readFile(file, 'utf8'));
  const signal = async (name: string, sig: NodeJS.Signals) =>
    process.kill(await pidOf(`${STATE}/run/${name}.pid`), sig);

  /** The worker's count of creates it published for API processes that never had them confirmed. */
  async function reaped(): Promise<number> {
    const metrics = await (await fetch(`http://127.0.0.1:${env.WORKER_PORT}/metrics`)).text();
    return Number(/^reaped_creates_total (\d+)/m.exec(metrics)?.[1] ?? 0);
  }

  /** Intents (creates numbered, not confirmed by the queue) kept for longer than `ms`, on Redis's clock. */
  async function stuckIntents(ms: number): Promise<number> {
    const { stdout } = await run('redis-cli', [
      ...['-h', '127.0.0.1', '-p', env.REDIS_PORT, '--raw', 'EVAL'],
      "local t = redis.call('TIME') return redis.call('ZCOUNT', KEYS[1], '-inf', t[1] * 1000 + math.floor(t[2] / 1000) - ARGV[1])",
      ...['1', 'chat:seq:intents', String(ms)],
    ]);
    return Number(stdout.trim());
  }

  /** The reaper published something since `before`, and no intent is left (the load has stopped). */
  async function reaperCaughtUp(before: number): Promise<void> {
    await eventually(async () => (await reaped()) > before, 30_000, 'the reaper published creates');
    await eventually(async () => (await stuckIntents(0)) === 0, 30_000, 'no intent left behind');
  }

  async function underLoad(label: string, fault: (load: CreateLoad) => Promise<void>): Promise<CreateLoad> {
    const load = await startCreateLoad(base, label);
    try {
      await load.progress(200, 30_000, `${label}: 200 creates before the fault`);
      await fault(load);
      await load.progress(200, 120_000, `${label}: 200 creates after the fault`);
    } finally {
      await load.stop();
    }
    await load.verify();
    return load;
  }

  it('fault 1: an API process killed -9 mid-load leaves no gap (the reaper publishes what it had numbered)', async () => {
    const reapedBefore = await reaped();
    await underLoad('api-kill', async (load) => {
      // Killed at a moment it holds a create it numbered and had not got confirmed: frozen first, until
      // Redis shows an intent older than any live create's (the other processes settle theirs in ms).
      await eventually(
        async () => {
          await signal('api-2', 'SIGSTOP');
          const holding = await eventually(async () => (await stuckIntents(300)) > 0, 1_000).catch(
            () => false,
          );
          if (!holding) await signal('api-2', 'SIGCONT');
          return holding;
        },
        20_000,
        'api-2 frozen while holding a numbered create',
      );
      await signal('api-2', 'SIGKILL');
      // The other two keep serving while NGINX passes over the dead one.
      await load.progress(200, 30_000, 'creates continue on the other API processes');
      await restartStopped();
    });
    // Its creates may have reached the queue before the kill, unsettled: the reaper publishes them too
    // (harmless), once they are REAP_AFTER_MS old.
    await reaperCaughtUp(reapedBefore);
  });

  it('fault 2: the worker killed -9 mid-batch and restarted loses nothing', async () => {
    await underLoad('worker-kill', async (load) => {
      await signal('worker', 'SIGKILL');
      // Creates need only Redis and RabbitMQ: they go on while no worker runs.
      await load.progress(200, 30_000, 'creates continue without a worker');
      await restartStopped();
    });
  });

  it('fault 3: RabbitMQ hung, killed -9 and restarted: nothing acknowledged lost, no gap', async () => {
    const reapedBefore = await reaped();
    const load = await underLoad('rabbitmq-restart', async (load) => {
      // A hung broker first: publishes wait for confirms that never come, time out, and the creates answer
      // 503 with their numbers taken; the reaper publishes them once the broker is back.
      const broker = await pidOf(`${STATE}/services/run/rabbitmq.pid`);
      process.kill(broker, 'SIGSTOP');
      try {
        await eventually(
          async () => (await stuckIntents(1_000)) > 0,
          20_000,
          'creates stuck on the hung broker',
        );
        await eventually(async () => (load.statuses.get(503) ?? 0) > 0, 20_000, 'publish timeouts (503)');
      } finally {
        await services('stop', 'rabbitmq', '--kill');
      }
      await services('start', 'rabbitmq');
    });
    assert.ok((load.statuses.get(503) ?? 0) > 0);
    await reaperCaughtUp(reapedBefore);
  });

  it('fault 4: a restart of MariaDB loses nothing', async () => {
    await underLoad('mariadb-restart', async () => {
      await services('stop', 'mariadb');
      await services('start', 'mariadb');
    });
  });

  it('fault 5: a restart of Redis that loses its data hands no number out twice and leaves no gap', async () => {
    const load = await underLoad('redis-loss', async () => {
      await services('stop', 'redis', '--wipe');
      await services('start', 'redis');
    });
    // The sequencer paused creates with 503 + Retry-After until the queue had drained, then re-seeded.
    assert.ok((load.statuses.get(503) ?? 0) > 0, 'creates paused with 503 while the sequencer recovered');
  });

  /** The indexer's `index_bulk_retries_total`. */
  async function bulkRetries(): Promise<number> {
    const text = await (await fetch(`http://127.0.0.1:${env.INDEXER_PORT}/metrics`)).text();
    return Number(/^index_bulk_retries_total (\d+)/m.exec(text)?.[1] ?? Number.NaN);
  }

  it('fault 6: the search engine down mid-load: creates go on, search answers 503, then the index catches up', async () => {
    const retriesBefore = await bulkRetries();
    const load = await underLoad('search-outage', async (load) => {
      await services('stop', 'opensearch');
      try {
        await load.progress(200, 30_000, 'creates continue without the search engine');
        const search = await api(base, 'GET', `/applications/${load.token}/chats/1/messages/search?q=outage`);
        assert.equal(search.status, 503);
        assert.equal(search.body.error.code, 'unavailable');
        assert.ok(search.headers.get('retry-after'));
      } finally {
        await services('start', 'opensearch');
      }
    });
    // Every stored message carries the label: once the index has caught up, search finds them all.
    const stored = (await api(base, 'GET', `/applications/${load.token}/chats/1`)).body
      .messages_count as number;
    await eventually(
      async () =>
        (await searchCount(`/applications/${load.token}/chats/1/messages/search?q=outage`)) === stored,
      90_000,
      `the index caught up: all ${stored} messages found`,
    );
    // The outage was waited out by the indexer holding its batch, not only by the queue's delay queues.
    assert.ok((await bulkRetries()) > retriesBefore, 'the indexer retried its bulk in place');
  });

  /** How many results a search has, over all its pages (undefined while it answers an error). */
  async function searchCount(path: string): Promise<number | undefined> {
    let count = 0;
    for (let next: string | undefined = `${path}&limit=1000`; next; ) {
      const page: JsonResponse = await api(base, 'GET', next);
      if (page.status !== 200) return undefined;
      count += page.body.length;
      next = /<([^>]+)>;\s*rel="next"/
        .exec(page.headers.get('link') ?? '')?.[1]
        ?.replace(/^https?:\/\/[^/]+/, '');
    }
    return count;
  }

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

  it('passes the longest legitimate query and its Link header, and answers in the error model itself', async () => {
    const token = (await api(base, 'POST', '/applications', { name: 'edge' })).body.token as string;
    await api(base, 'POST', `/applications/${token}/chats`);
    const path = `/applications/${token}/chats/1/messages`;
    // 1 024 CJK characters: a 9 KiB request line, and as long a Link header in the answer.
    const longest = '漢字'.repeat(512);
    const errorsBefore = (await readFile(`${STATE}/nginx/error.log`, 'utf8')).length;
    for (const n of [1, 2]) await api(base, 'POST', path, { body: `${longest} ${n}` });
    const search = `${path}/search?limit=1&q=${encodeURIComponent(longest)}`;
    await eventually(
      async () => {
        const page = await api(base, 'GET', search);
        return page.status === 200 && page.body.length === 1 && page.headers.get('link') !== null;
      },
      20_000,
      'a 1 024-character search answered through NGINX with its Link',
    );
    // Each of those answers was a 502 that took an API process out of service for 10 s (which the other
    // two would hide from a client): NGINX must not have refused any answer's headers.
    const errors = await readFile(`${STATE}/nginx/error.log`, 'utf8');
    assert.doesNotMatch(errors.slice(errorsBefore), /too big header|temporarily disabled/);

    const hugeHeader = await api(base, 'GET', '/healthz', undefined, { 'x-padding': 'a'.repeat(20_000) });
    assert.equal(hugeHeader.status, 431);
    assert.equal(hugeHeader.body.error.code, 'headers_too_large');
    assert.match(hugeHeader.headers.get('content-type') ?? '', /^application\/json; charset=utf-8/);
    assert.ok(hugeHeader.headers.get('x-request-id'));
    const hugeLine = await api(base, 'GET', `/healthz?pad=${'a'.repeat(20_000)}`);
    assert.equal(hugeLine.status, 414);
    assert.equal(hugeLine.body.error.code, 'uri_too_long');
    // TRACE never reaches the API (fetch refuses to send it, hence node:http).
    const trace = await new Promise<{ status: number; allow: unknown; body: string }>((resolve, reject) => {
      const request = httpRequest(`${base}/healthz`, { method: 'TRACE' }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
        response.on('end', () =>
          resolve({ status: response.statusCode ?? 0, allow: response.headers.allow, body }),
        );
      });
      request.on('error', reject).end();
    });
    assert.equal(trace.status, 405);
    assert.match(String(trace.allow), /GET/);
    assert.equal(JSON.parse(trace.body).error.code, 'method_not_allowed');
    // NGINX does not pass Expect on: it refuses what the API would, and creates nothing (messages 1 and 2
    // were created above, so the next one is 3).
    // (fetch refuses to send Expect, hence node:http.)
    const expect = await new Promise<{ status: number; requestId: unknown; body: string }>(
      (resolve, reject) => {
        const headers = { 'content-type': 'application/json', expect: 'foo' };
        const request = httpRequest(`${base}${path}`, { method: 'POST', headers }, (response) => {
          let body = '';
          response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
          response.on('end', () =>
            resolve({ status: response.statusCode ?? 0, requestId: response.headers['x-request-id'], body }),
          );
        });
        request.on('error', reject).end(JSON.stringify({ body: 'expected' }));
      },
    );
    assert.equal(expect.status, 417);
    assert.equal(JSON.parse(expect.body).error.code, 'expectation_failed');
    assert.ok(expect.requestId);
    assert.equal((await api(base, 'POST', path, { body: 'next' })).body.number, 3);
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
