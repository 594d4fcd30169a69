/**
 * The Redis idempotency guard against a real Redis (REDIS_TEST_URL; scripts/services/start.sh starts one).
 *
 * Every test keys under its own prefix. One test FLUSHDBs, so the whole file uses a database index of its
 * own (TEST_DB; the sequencer's tests flush 13) rather than the one in the URL. The database's durable
 * records are played by StoredRecords, an in-memory map: it stands in for the store, not for the guard.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import {
  deleteKeys as deleteRedisKeys,
  openRedisAdmin,
  type RedisAdmin,
  redisDbUrl,
} from '../../../test/helpers/redis.ts';
import { Relay } from '../../../test/helpers/relay.ts';
import { eventually } from '../../../test/helpers/server.ts';
import { service } from '../../../test/helpers/services.ts';
import type { IdempotencyHold, IdempotencyLookup } from '../../domain/ports.ts';
import type { IdempotencyRecord } from '../../domain/types.ts';
import { connectNodeRedis, NoScriptError, RedisUnavailableError } from '../../redis/client.ts';
import { idempotencyConformance } from '../conformance.ts';
import {
  IdempotencyKeyInUseError,
  type OpenRedisIdempotencyGuardOptions,
  openRedisIdempotencyGuard,
  RedisIdempotencyGuard,
  type ReleaseIssue,
} from './guard.ts';
import type { IdempotencyRedis } from './scripts.ts';

const redis = service('redis');
const TEST_DB = 12;
const TTL_MS = 24 * 3_600_000;

function testUrl(base = redis.url!): string {
  return redisDbUrl(base, TEST_DB);
}

function newPrefix(): string {
  return `idem-test:${randomUUID()}:`;
}

/** The store's idempotency records, as the writer persists them; counts lookups. */
class StoredRecords implements IdempotencyLookup {
  readonly #records = new Map<string, { record: IdempotencyRecord; at: number }>();
  lookups = 0;

  async persist(record: IdempotencyRecord, ageMs = 0): Promise<void> {
    const id = JSON.stringify([record.scope, record.key]);
    // Like the store: a record already stored keeps its first answer.
    if (!this.#records.has(id)) this.#records.set(id, { record, at: Date.now() - ageMs });
  }

  async findIdempotency(
    scope: string,
    key: string,
    notBefore: string,
  ): Promise<IdempotencyRecord | undefined> {
    this.lookups++;
    const found = this.#records.get(JSON.stringify([scope, key]));
    return found && found.at >= Date.parse(notBefore) ? found.record : undefined;
  }
}

const record = (scope: string, key: string, response: string): IdempotencyRecord => ({
  scope,
  key,
  fingerprint: 'fp',
  response,
});

function isHold(value: IdempotencyRecord | IdempotencyHold): value is IdempotencyHold {
  return 'release' in value;
}

describe('Redis idempotency guard', { skip: redis.skip }, () => {
  let admin: RedisAdmin;

  before(async () => {
    admin = await openRedisAdmin(testUrl());
  });

  after(async () => {
    await admin.close();
  });

  const deleteKeys = (prefix: string) => deleteRedisKeys(admin, prefix);

  idempotencyConformance('redis', async () => {
    const prefix = newPrefix();
    const records = new StoredRecords();
    const guard = await openRedisIdempotencyGuard(testUrl(), records, { ttlMs: TTL_MS, prefix });
    return {
      guard,
      ttlMs: TTL_MS,
      persist: (stored, ageMs) => records.persist(stored, ageMs),
      cleanup: async () => {
        await guard.close();
        await deleteKeys(prefix);
      },
    };
  });

  describe('Redis specifics', () => {
    let prefix: string;
    let records: StoredRecords;
    let issues: ReleaseIssue[];
    const opened: RedisIdempotencyGuard[] = [];

    /** One guard with a connection of its own: one API process. */
    async function open(options: Partial<OpenRedisIdempotencyGuardOptions> = {}, url = testUrl()) {
      const guard = await openRedisIdempotencyGuard(url, records, {
        ttlMs: TTL_MS,
        prefix,
        onReleaseIssue: (issue) => issues.push(issue),
        ...options,
      });
      opened.push(guard);
      return guard;
    }

    /** A guard whose Redis connection goes through `wrap`, which may count or fail commands. */
    async function openWrapped(wrap: (redis: IdempotencyRedis) => IdempotencyRedis) {
      const guard = new RedisIdempotencyGuard(wrap(await connectNodeRedis(testUrl())), records, {
        ttlMs: TTL_MS,
        prefix,
      });
      opened.push(guard);
      await guard.load();
      return guard;
    }

    const redisKey = (scope: string, key: string) => `${prefix}{${scope}}:${key}`;

    beforeEach(() => {
      prefix = newPrefix();
      records = new StoredRecords();
      issues = [];
    });

    afterEach(async () => {
      for (const guard of opened.splice(0)) await guard.close().catch(() => {});
      await deleteKeys(prefix);
    });

    it('two guards (two API processes): one holds the key, the other waits, then gets the released answer', async () => {
      const a = await open();
      let polls = 0;
      const b = await openWrapped((redis) => ({
        ...redis,
        evalSha: (sha, keys, args) => {
          polls++;
          return redis.evalSha(sha, keys, args);
        },
      }));

      const held = await a.acquire('chats:1', 'k');
      assert.ok(isHold(held));
      assert.match((await admin.get(redisKey('chats:1', 'k'))) ?? '', /^pending:/);
      let settled = false;
      const waiting = b.acquire('chats:1', 'k').finally(() => {
        settled = true;
      });
      // b polls the key; after several polls it must still be waiting.
      await eventually(async () => polls >= 5, 5_000, 'b polled the held key 5 times');
      assert.equal(settled, false, 'b waits while a holds the key');

      await held.release(record('chats:1', 'k', '{"number":4}'));
      const answer = await waiting;
      assert.ok(!isHold(answer));
      assert.deepEqual(answer, record('chats:1', 'k', '{"number":4}'));
      assert.equal(records.lookups, 1, 'only a, when it took the fresh key, asked the store');
      const ttl = await admin.pTTL(redisKey('chats:1', 'k'));
      assert.ok(
        ttl > TTL_MS - 60_000 && ttl <= TTL_MS,
        `the answer is kept for the time-to-live (${ttl} ms)`,
      );
      assert.deepEqual(issues, []);
    });

    it('an abandoned hold (outcome unknown) keeps the key until the lease ends, then answers what was stored', async () => {
      const leaseMs = 400;
      const a = await open({ leaseMs });
      const b = await open({ leaseMs, waitMs: 5000 });
      const held = await a.acquire('messages:1:1', 'k');
      assert.ok(isHold(held));
      const started = performance.now();
      await held.abandon();
      assert.match((await admin.get(redisKey('messages:1:1', 'k'))) ?? '', /^pending:/, 'still held');
      // Meanwhile the reaper publishes the create and the writer stores it with its record.
      await records.persist(record('messages:1:1', 'k', '{"number":3}'));
      const retried = await b.acquire('messages:1:1', 'k');
      assert.ok(performance.now() - started >= leaseMs - 5, 'the retry waited for the lease');
      assert.ok(!isHold(retried), 'the retry gets the stored answer, not a second create');
      assert.equal(retried.response, '{"number":3}');
      // A late release by the abandoning holder does nothing.
      await held.release(record('messages:1:1', 'k', '{"number":99}'));
      assert.deepEqual(issues, []);
    });

    it('a holder that never releases (its process died) loses the key when its lease runs out', async () => {
      const leaseMs = 300;
      const a = await open({ leaseMs });
      const b = await open({ leaseMs, waitMs: 5000 }); // waits past the lease, whatever the timing
      const started = performance.now();
      const abandoned = await a.acquire('chats:1', 'k');
      assert.ok(isHold(abandoned));
      const pttl = await admin.pTTL(redisKey('chats:1', 'k'));
      assert.ok(pttl > 0 && pttl <= leaseMs, `the marker carries the lease (${pttl} ms)`);

      const next = await b.acquire('chats:1', 'k');
      const waited = performance.now() - started;
      assert.ok(isHold(next), 'the next caller holds the key');
      // Redis expires keys to the millisecond; a few ms of slack for clocks read at different moments.
      assert.ok(waited >= leaseMs - 5, `not before the lease ran out (waited ${Math.round(waited)} ms)`);

      // The first holder was only slow, not dead: its late release must not touch b's hold.
      await abandoned.release(record('chats:1', 'k', '{"number":1}'));
      assert.deepEqual(issues, [{ scope: 'chats:1', key: 'k', issue: 'lease-lost' }]);
      assert.match((await admin.get(redisKey('chats:1', 'k'))) ?? '', /^pending:/);
      await next.release(record('chats:1', 'k', '{"number":2}'));
      const answer = await a.acquire('chats:1', 'k');
      assert.ok(!isHold(answer));
      assert.equal(answer.response, '{"number":2}');
    });

    it('a release after the lease ran out, with nobody else on the key, still records the answer', async () => {
      const a = await open({ leaseMs: 100 });
      const held = await a.acquire('chats:1', 'slow');
      assert.ok(isHold(held));
      await eventually(
        async () => (await admin.exists(redisKey('chats:1', 'slow'))) === 0,
        5_000,
        'the lease ran out',
      );
      await held.release(record('chats:1', 'slow', '{"number":5}'));
      assert.deepEqual(issues, [{ scope: 'chats:1', key: 'slow', issue: 'lease-expired' }]);
      const answer = await a.acquire('chats:1', 'slow');
      assert.ok(!isHold(answer));
      assert.equal(answer.response, '{"number":5}');
    });

    it('a waiter gives up after waitMs with a 503', async () => {
      const a = await open();
      const b = await open({ waitMs: 100 });
      const held = await a.acquire('chats:1', 'k');
      assert.ok(isHold(held));
      await assert.rejects(b.acquire('chats:1', 'k'), (error: unknown) => {
        assert.ok(error instanceof IdempotencyKeyInUseError, String(error));
        assert.equal(error.status, 503);
        assert.equal(error.retryAfter, 1);
        return true;
      });
      await held.release();
      assert.ok(isHold(await b.acquire('chats:1', 'k')));
    });

    it('after FLUSHDB, a replay is answered from the store and leaves no marker behind', async () => {
      const a = await open();
      const b = await open();
      const held = await a.acquire('messages:1:1', 'k');
      assert.ok(isHold(held));
      const answered = record('messages:1:1', 'k', '{"number":8}');
      await held.release(answered);
      await records.persist(answered); // the writer commits the create and its record
      const lookups = records.lookups;
      assert.deepEqual(await b.acquire('messages:1:1', 'k'), answered);
      assert.equal(records.lookups, lookups, 'answered from Redis, without the store');

      await admin.flushDb();
      for (const guard of [b, a]) {
        assert.deepEqual(await guard.acquire('messages:1:1', 'k'), answered);
      }
      assert.equal(records.lookups, lookups + 2, 'answered from the store');
      assert.equal(
        await admin.exists(redisKey('messages:1:1', 'k')),
        0,
        'the key taken for the lookup is free',
      );
      // A key the store does not have either is free.
      const fresh = await b.acquire('messages:1:1', 'other');
      assert.ok(isHold(fresh));
      await fresh.release();
      assert.deepEqual(issues, []);
    });

    it('a failing store lookup frees the key again', async () => {
      const a = await open();
      const working = records.findIdempotency.bind(records);
      records.findIdempotency = async () => {
        throw new Error('store unreachable');
      };
      await assert.rejects(a.acquire('chats:1', 'k'), /store unreachable/);
      assert.equal(await admin.exists(redisKey('chats:1', 'k')), 0);
      records.findIdempotency = working;
      const held = await a.acquire('chats:1', 'k');
      assert.ok(isHold(held));
      await held.release();
    });

    it('Redis unreachable: acquire rejects with a 503, release does not fail the create, the lease ends the hold', async () => {
      const relay = new Relay(redis.url!);
      await relay.open();
      try {
        const guard = await open({ leaseMs: 500 }, testUrl(`redis://127.0.0.1:${relay.port}`));
        const held = await guard.acquire('chats:1', 'k');
        assert.ok(isHold(held));

        await relay.cut();
        await assert.rejects(guard.acquire('chats:1', 'other'), (error: unknown) => {
          assert.ok(error instanceof RedisUnavailableError, String(error));
          assert.equal(error.status, 503);
          return true;
        });
        // The create succeeded (its command is durable): its 201 must not turn into a 503.
        const answered = record('chats:1', 'k', '{"number":6}');
        await held.release(answered);
        assert.deepEqual(
          issues.map(({ issue }) => issue),
          ['redis-unavailable'],
        );

        await relay.open();
        await eventually(
          () =>
            guard.ping().then(
              () => true,
              () => false,
            ),
          5_000,
          'the guard reconnected',
        );
        // The answer never reached Redis; once the lease ends, the store (the writer committed) answers.
        await records.persist(answered);
        assert.deepEqual(await guard.acquire('chats:1', 'k'), answered);
      } finally {
        await relay.cut();
      }
    });

    it('runs a script again from source when Redis has dropped its script cache', async () => {
      let noScript = 0;
      const guard = await openWrapped((redis) => ({
        ...redis,
        evalSha: async (sha, keys, args) => {
          if (noScript++ < 3) throw new NoScriptError('NOSCRIPT No matching script');
          return redis.evalSha(sha, keys, args);
        },
      }));
      const held = await guard.acquire('chats:1', 'k');
      assert.ok(isHold(held));
      await held.release(record('chats:1', 'k', '{"number":1}'));
      assert.equal(((await guard.acquire('chats:1', 'k')) as IdempotencyRecord).response, '{"number":1}');
      assert.equal(noScript, 3, 'claim, answer and claim each ran from source');
    });

    it('keeps the scope in a hash tag and refuses a scope or prefix that would break it', async () => {
      const guard = await open();
      const held = await guard.acquire('messages:7:3', 'key{with}braces');
      assert.ok(isHold(held));
      assert.equal(await admin.exists(`${prefix}{messages:7:3}:key{with}braces`), 1);
      await held.release();
      await assert.rejects(guard.acquire('chats:{1}', 'k'), RangeError);
      assert.throws(
        () => new RedisIdempotencyGuard({} as IdempotencyRedis, records, { ttlMs: 1, prefix: 'a{b}:' }),
        RangeError,
      );
    });
  });
});
