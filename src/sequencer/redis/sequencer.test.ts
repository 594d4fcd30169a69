/**
 * The Redis sequencer against a real Redis (REDIS_TEST_URL; scripts/services/start.sh starts one).
 *
 * Every test numbers under its own key prefix. The loss tests FLUSHDB, so the whole file uses a database
 * index of its own (TEST_DB) rather than the one in the URL, where other test files keep their keys.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  deleteKeys as deleteRedisKeys,
  openRedisAdmin,
  type RedisAdmin,
  redisDbUrl,
} from '../../../test/helpers/redis.ts';
import { openStallingRelay } from '../../../test/helpers/relay.ts';
import { service } from '../../../test/helpers/services.ts';
import { CreateOutcomeUnknownError } from '../../domain/errors.ts';
import type { SequenceSeed } from '../../domain/ports.ts';
import type { ChatCreate } from '../../domain/types.ts';
import { connectNodeRedis, NoScriptError, RedisUnavailableError } from '../../redis/client.ts';
import { sequencerConformance } from '../conformance.ts';
import {
  type OpenRedisSequencerOptions,
  openRedisSequencer,
  RedisSequencer,
  SequencerRecoveringError,
} from './sequencer.ts';

const redis = service('redis');
const TEST_DB = 13;

function testUrl(): string {
  return redisDbUrl(redis.url!, TEST_DB);
}

function newPrefix(): string {
  return `seq-test:${randomUUID()}:`;
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function sorted(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/** The store's maxima, which a test moves as the writer would store rows; counts seed loads per counter. */
class StoredMaxima implements SequenceSeed {
  readonly chats = new Map<number, number>();
  readonly messages = new Map<string, number>();
  readonly loads = new Map<string, number>();

  async maxChatNumber(applicationId: number): Promise<number> {
    this.#count(`a${applicationId}`);
    return this.chats.get(applicationId) ?? 0;
  }

  async maxMessageNumber(applicationId: number, chatNumber: number): Promise<number> {
    this.#count(`c${applicationId}:${chatNumber}`);
    return this.messages.get(`${applicationId}:${chatNumber}`) ?? 0;
  }

  #count(key: string): void {
    this.loads.set(key, (this.loads.get(key) ?? 0) + 1);
  }
}

describe('Redis sequencer', { skip: redis.skip }, () => {
  let admin: RedisAdmin;

  before(async () => {
    admin = await openRedisAdmin(testUrl());
  });

  after(async () => {
    await admin.close();
  });

  const deleteKeys = (prefix: string) => deleteRedisKeys(admin, prefix);

  sequencerConformance('redis', async (seed) => {
    const prefix = newPrefix();
    const sequencer = await openRedisSequencer(testUrl(), seed, { prefix });
    return {
      sequencer,
      cleanup: async () => {
        await sequencer.close();
        await deleteKeys(prefix);
      },
    };
  });

  describe('Redis specifics', () => {
    let prefix: string;
    const opened: RedisSequencer[] = [];

    async function open(
      seed: SequenceSeed,
      options: OpenRedisSequencerOptions = {},
    ): Promise<RedisSequencer> {
      const sequencer = await openRedisSequencer(testUrl(), seed, { prefix, ...options });
      opened.push(sequencer);
      return sequencer;
    }

    beforeEach(() => {
      prefix = newPrefix();
    });

    afterEach(async () => {
      for (const sequencer of opened.splice(0)) await sequencer.close();
      await deleteKeys(prefix);
    });

    it('an unreadable intent is dropped and reported, not published and not met again', async () => {
      const reported: unknown[] = [];
      const sequencer = await open(new StoredMaxima(), { onSettleError: (error) => reported.push(error) });
      await sequencer.nextChatNumber(1, { kind: 'chat.create', applicationId: 1, number: 0, at: 'x' });
      await admin.hSet(`${prefix}intents:commands`, `${prefix}{a:9}#1`, 'not json');
      await admin.zAdd(`${prefix}intents`, { score: 0, value: `${prefix}{a:9}#1` });
      const overdue = await sequencer.overdue(0, 10);
      assert.deepEqual(
        overdue.map((c) => [c.kind, c.applicationId, c.number]),
        [['chat.create', 1, 1]],
      );
      assert.equal(reported.length, 1);
      assert.match(String(reported[0]), /\{a:9\}#1/);
      assert.equal((await sequencer.overdue(0, 10)).length, 1, 'the good one stays until settled');
      assert.equal(await admin.zScore(`${prefix}intents`, `${prefix}{a:9}#1`), null);
    });

    it('a wiped Redis is noticed: numbering waits for beforeReseed, then continues after the drained store', async () => {
      const store = new StoredMaxima();
      const chats: number[] = [];
      const messages: number[] = [];
      let gates = 0;
      const sequencer = await open(store, {
        // Draining the queue: the writer stores every number that was handed out.
        beforeReseed: async () => {
          gates++;
          if (chats.length > 0) store.chats.set(1, Math.max(...chats));
          if (messages.length > 0) store.messages.set('1:1', Math.max(...messages));
        },
      });
      for (let i = 0; i < 5; i++) {
        chats.push(await sequencer.nextChatNumber(1));
        messages.push(await sequencer.nextMessageNumber(1, 1));
      }
      assert.equal(gates, 1, 'no epoch at the first start: it may be a loss while every process was down');
      // The writer has stored 1..3; 4 and 5 still wait in the queue.
      store.chats.set(1, 3);
      store.messages.set('1:1', 3);

      await admin.flushDb();
      chats.push(await sequencer.nextChatNumber(1));
      messages.push(await sequencer.nextMessageNumber(1, 1));
      assert.equal(gates, 2);
      assert.equal(await sequencer.chatExists(1, 6), true);
      assert.equal(await sequencer.chatExists(1, 7), false);
      chats.push(await sequencer.nextChatNumber(1));
      messages.push(await sequencer.nextMessageNumber(1, 1));

      assert.deepEqual(chats, range(1, 7));
      assert.deepEqual(messages, range(1, 7));
      assert.equal(gates, 2);
      // Once at the start, once after the loss.
      assert.deepEqual(Object.fromEntries(store.loads), { a1: 2, 'c1:1': 2 });
    });

    it('1000 concurrent calls that meet a wiped Redis share one recovery and repeat no number', async () => {
      const store = new StoredMaxima();
      let gates = 0;
      const sequencer = await open(store, {
        beforeReseed: async () => {
          gates++;
        },
      });
      const before = await Promise.all(range(1, 100).map(() => sequencer.nextMessageNumber(1, 1)));
      store.messages.set('1:1', 100);
      await admin.flushDb();
      const afterLoss = await Promise.all(range(1, 1000).map(() => sequencer.nextMessageNumber(1, 1)));
      assert.deepEqual(sorted([...before, ...afterLoss]), range(1, 1100));
      assert.equal(gates, 2);
      assert.equal(store.loads.get('c1:1'), 2);
    });

    it('while beforeReseed is pending, calls fail fast with SequencerRecoveringError (a 503)', async () => {
      const store = new StoredMaxima();
      let gates = 0;
      let hold: PromiseWithResolvers<void> | undefined;
      const sequencer = await open(store, {
        retryAfterSeconds: 2,
        beforeReseed: async () => {
          gates++;
          await hold?.promise;
        },
      });
      assert.deepEqual([await sequencer.nextChatNumber(1), await sequencer.nextChatNumber(1)], [1, 2]);
      assert.equal(await sequencer.nextMessageNumber(1, 1), 1);
      store.chats.set(1, 2);
      store.messages.set('1:1', 1);

      hold = Promise.withResolvers<void>();
      await admin.flushDb();
      const started = performance.now();
      const results = await Promise.allSettled([
        ...range(1, 20).map(() => sequencer.nextChatNumber(1)),
        ...range(1, 20).map(() => sequencer.nextMessageNumber(1, 1)),
        sequencer.nextChatNumber(2),
        sequencer.chatExists(1, 3),
      ]);
      // A chat this process saw handed out exists for good: answered without Redis.
      assert.equal(await sequencer.chatExists(1, 2), true);
      for (const result of results) {
        assert.equal(result.status, 'rejected');
        assert.ok(result.reason instanceof SequencerRecoveringError, String(result.reason));
        assert.equal(result.reason.status, 503);
        assert.equal(result.reason.retryAfter, 2);
      }
      assert.ok(performance.now() - started < 1000, 'calls waited for the gate instead of failing fast');
      await assert.rejects(sequencer.nextChatNumber(1), SequencerRecoveringError);
      assert.equal(gates, 2, 'one gate per loss, however many calls noticed it');

      hold.resolve();
      hold = undefined;
      assert.equal(await sequencer.nextChatNumber(1), 3);
      assert.equal(await sequencer.nextMessageNumber(1, 1), 2);
      assert.equal(await sequencer.nextChatNumber(2), 1);
      assert.equal(gates, 2);
    });

    it('a rejected beforeReseed is not remembered: the next call tries again', async () => {
      const store = new StoredMaxima();
      let failures = 1;
      const sequencer = await open(store, {
        beforeReseed: async () => {
          if (failures-- > 0) throw new Error('queue unreachable');
        },
      });
      await assert.rejects(sequencer.nextChatNumber(1), /queue unreachable/);
      assert.equal(await sequencer.nextChatNumber(1), 1);
    });

    it('two sequencers sharing one Redis (two API processes) hand out exactly 1..1000 between them', async () => {
      const store = new StoredMaxima();
      store.chats.set(1, 40);
      const [a, b] = await Promise.all([open(store), open(store)]);
      const [messages, chats] = await Promise.all([
        Promise.all(range(1, 1000).map((i) => (i % 2 ? a : b).nextMessageNumber(1, 1))),
        Promise.all(range(1, 1000).map((i) => (i % 3 ? a : b).nextChatNumber(1))),
      ]);
      assert.deepEqual(sorted(messages), range(1, 1000));
      assert.deepEqual(sorted(chats), range(41, 1040));
      assert.equal(await b.chatExists(1, 1040), true);
      assert.equal(await a.chatExists(1, 1041), false);
    });

    it('two sequencers stay unique across a loss, whichever of them notices it first', async () => {
      const store = new StoredMaxima();
      const handed: number[] = [];
      const drain = async () => {
        if (handed.length > 0) store.messages.set('1:1', Math.max(...handed));
      };
      const [a, b] = await Promise.all([
        open(store, { beforeReseed: drain }),
        open(store, { beforeReseed: drain }),
      ]);
      handed.push(...(await Promise.all(range(1, 200).map((i) => (i % 2 ? a : b).nextMessageNumber(1, 1)))));
      await admin.flushDb();
      // a recovers alone first; b still holds the old epoch and learns of the loss on its own.
      handed.push(...(await Promise.all(range(1, 50).map(() => a.nextMessageNumber(1, 1)))));
      handed.push(...(await Promise.all(range(1, 200).map((i) => (i % 2 ? b : a).nextMessageNumber(1, 1)))));
      assert.deepEqual(sorted(handed), range(1, 450));
    });

    it('a counter found lower than the store maximum is raised: on first use in a process', async () => {
      const store = new StoredMaxima();
      const first = await open(store);
      for (let i = 0; i < 10; i++) await first.nextMessageNumber(1, 1);
      store.messages.set('1:1', 10);
      // Redis restarted and lost its last three increments (appendfsync everysec); the epoch survived.
      await admin.hSet(`${prefix}{a:1}:m:1`, 'n', '7');
      const second = await open(store);
      assert.equal(await second.nextMessageNumber(1, 1), 11);
      assert.equal(await first.nextMessageNumber(1, 1), 12);
    });

    it('a counter found lower than the store maximum is raised: after a reconnection', async () => {
      const store = new StoredMaxima();
      const clientName = `seq-test-${randomUUID()}`;
      const sequencer = await open(store, { clientName });
      for (let i = 0; i < 10; i++) await sequencer.nextChatNumber(1);
      store.chats.set(1, 10);
      await admin.hSet(`${prefix}{a:1}`, 'n', '6');

      const line = String(await admin.sendCommand(['CLIENT', 'LIST']))
        .split('\n')
        .find((entry) => entry.includes(` name=${clientName} `));
      const id = /^id=(\d+) /.exec(line ?? '')?.[1];
      assert.ok(id, `no connection named ${clientName}`);
      await admin.sendCommand(['CLIENT', 'KILL', 'ID', id]);
      const deadline = Date.now() + 5000;
      for (;;) {
        try {
          await sequencer.ping();
          break;
        } catch (error) {
          // While it reconnects, callers get a 503 rather than node-redis's own error (a 500).
          assert.ok(error instanceof RedisUnavailableError, String(error));
          assert.equal(error.status, 503);
          if (Date.now() > deadline) throw error;
          await sleep(20);
        }
      }
      assert.equal(await sequencer.nextChatNumber(1), 11);
      assert.equal(await sequencer.chatExists(1, 11), true);
    });

    it('a counter seeded in an older epoch is taken over and never lowered', async () => {
      const store = new StoredMaxima();
      store.chats.set(1, 10);
      store.chats.set(2, 60);
      const sequencer = await open(store);
      await admin.hSet(`${prefix}{a:1}`, { n: '50', epoch: 'an-older-epoch', confirmed: '1' });
      await admin.hSet(`${prefix}{a:2}`, { n: '50', epoch: 'an-older-epoch', confirmed: '1' });
      assert.equal(await sequencer.nextChatNumber(1), 51);
      assert.equal(await sequencer.nextChatNumber(2), 61);
    });

    it('a counter seeded but not confirmed is not numbered from before it is checked', async () => {
      const store = new StoredMaxima();
      store.chats.set(1, 10);
      const sequencer = await open(store);
      assert.equal(await sequencer.nextChatNumber(1), 11);
      const epoch = await admin.get(`${prefix}epoch`);
      // As a process would leave it that seeded from a lagging store after a loss, then crashed.
      await admin.hSet(`${prefix}{a:3}`, { n: '2', epoch: epoch!, confirmed: '0' });
      store.chats.set(3, 5);
      assert.equal(await sequencer.nextChatNumber(3), 6);
    });

    it('runs a script again from source when Redis has dropped its script cache', async () => {
      const store = new StoredMaxima();
      const client = await connectNodeRedis(testUrl());
      let noScript = 0;
      const forgetful = {
        ...client,
        evalSha: async (sha: string, keys: string[], args: string[]) => {
          if (noScript++ < 3) throw new NoScriptError('NOSCRIPT No matching script');
          return client.evalSha(sha, keys, args);
        },
      };
      const sequencer = new RedisSequencer(forgetful, store, { prefix });
      opened.push(sequencer);
      assert.deepEqual([await sequencer.nextChatNumber(1), await sequencer.nextChatNumber(1)], [1, 2]);
      assert.ok(noScript > 3);
    });

    it('a command Redis does not answer rejects with a 503 after the command timeout', {
      timeout: 10_000,
    }, async () => {
      const relay = await openStallingRelay(testUrl(), 'both');
      const client = await connectNodeRedis(relay.url, { commandTimeoutMs: 300 });
      try {
        await client.ping();
        relay.hang();
        const started = Date.now();
        const error = await client.get('anything').then(
          () => assert.fail('a stalled Redis answered'),
          (e: unknown) => e,
        );
        assert.ok(error instanceof RedisUnavailableError, String(error));
        assert.equal(error.status, 503);
        const waited = Date.now() - started;
        assert.ok(waited >= 290 && waited < 3000, `rejected after ${waited} ms, not after about 300`);
      } finally {
        relay.release();
        await client.close();
        relay.close();
      }
    });

    it('a create whose numbering answer is lost is of unknown outcome: its intent is kept for the reaper', {
      timeout: 10_000,
    }, async () => {
      const relay = await openStallingRelay(testUrl(), 'replies');
      const sequencer = await openRedisSequencer(relay.url, new StoredMaxima(), {
        prefix,
        commandTimeoutMs: 300,
      });
      const reaper = await open(new StoredMaxima());
      const at = new Date().toISOString();
      const intent = (n: number): ChatCreate => ({ kind: 'chat.create', applicationId: 1, number: n, at });
      try {
        assert.equal(await sequencer.nextChatNumber(1, intent(0)), 1);
        relay.hang();
        await assert.rejects(sequencer.nextChatNumber(1, intent(0)), CreateOutcomeUnknownError);
        // The script ran: number 2 is taken, and its intent waits beside the first (not settled here) for
        // the reaper, which publishes it.
        const overdue = await reaper.overdue(0, 10);
        assert.deepEqual(sorted(overdue.map((command) => command.number)), [1, 2]);
        assert.equal(await reaper.nextChatNumber(1), 3);
      } finally {
        relay.release();
        await sequencer.close();
        relay.close();
      }
    });

    it('ping answers and close releases the connection', async () => {
      const sequencer = await openRedisSequencer(testUrl(), new StoredMaxima(), { prefix });
      assert.equal(sequencer.name, 'redis');
      await sequencer.ping();
      await sequencer.close();
      await assert.rejects(sequencer.ping(), RedisUnavailableError);
    });
  });
});
