/**
 * The Redis read cache in front of the real MySQL store, on a real Redis (MYSQL_TEST_URL, REDIS_TEST_URL):
 * the Store conformance suite through the cache, then what only a cache can get wrong (stale views after
 * writes, stampedes, a Redis outage). Each store gets its own scratch database and key prefix.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { failInsertsOf, ScratchDatabases } from '../../../test/helpers/mysql.ts';
import { deleteKeys, openRedisAdmin, type RedisAdmin } from '../../../test/helpers/redis.ts';
import { Relay } from '../../../test/helpers/relay.ts';
import { eventually } from '../../../test/helpers/server.ts';
import { service } from '../../../test/helpers/services.ts';
import type { Store } from '../../domain/ports.ts';
import type { Chat } from '../../domain/types.ts';
import { storeConformance } from '../../store/conformance.ts';
import { openMysqlStore } from '../../store/mysql/store.ts';
import { type CacheEvents, CacheInvalidationError, type CacheResult } from './cache.ts';
import { type CachedStore, type OpenCachedStoreOptions, openCachedStore } from './store.ts';

const mysql = service('mysql');
const redis = service('redis');
const skip = mysql.skip || redis.skip;

const at = (seconds: number) => new Date(Date.UTC(2024, 0, 1) + seconds * 1000).toISOString();

/** A gate the reads of a counting store stop at, after reading the store and before answering. */
interface Gate {
  /** Resolves once a read is waiting at the gate. */
  reached: Promise<void>;
  open(): void;
}

/**
 * A real store as one process's cache sees it: counts the calls it receives, can hold reads at a gate,
 * and leaves closing the real store to the test.
 */
function counting(inner: Store): { store: Store; calls: Map<string, number>; gate(): Gate } {
  const calls = new Map<string, number>();
  let gate: { arrive(): void; opened: Promise<void> } | undefined;
  const store = new Proxy(inner, {
    get(target, property) {
      if (property === 'close') return async () => {};
      const value = Reflect.get(target, property);
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      return async (...args: unknown[]) => {
        calls.set(property, (calls.get(property) ?? 0) + 1);
        const result = await value.apply(target, args);
        if (gate && /^(find|list)/.test(property)) {
          gate.arrive();
          await gate.opened;
        }
        return result;
      };
    },
  });
  return {
    store,
    calls,
    gate() {
      const reached = Promise.withResolvers<void>();
      const opened = Promise.withResolvers<void>();
      gate = { arrive: reached.resolve, opened: opened.promise };
      return {
        reached: reached.promise,
        open() {
          gate = undefined;
          opened.resolve();
        },
      };
    },
  };
}

/** What a cache reported. */
class Recorder implements CacheEvents {
  readonly reads: { view: string; result: CacheResult }[] = [];
  readonly failures: string[] = [];
  read(view: string, result: CacheResult): void {
    this.reads.push({ view, result });
  }
  failed(operation: string): void {
    this.failures.push(operation);
  }
  results(view: string): CacheResult[] {
    return this.reads.filter((r) => r.view === view).map((r) => r.result);
  }
}

describe('redis read cache over the mysql store', { skip }, () => {
  const scratch = new ScratchDatabases(mysql.url!);
  let admin: RedisAdmin;
  const prefixes: string[] = [];

  before(async () => {
    admin = await openRedisAdmin(redis.url!);
  });

  after(async () => {
    for (const prefix of prefixes) await deleteKeys(admin, prefix);
    await admin.close();
    await scratch.close();
  });

  function newPrefix(): string {
    const prefix = `cache-test:${randomUUID()}:`;
    prefixes.push(prefix);
    return prefix;
  }

  storeConformance('mysql + redis cache', async () => {
    const url = await scratch.migrated();
    const store = await openCachedStore(redis.url!, await openMysqlStore(url, { connectionLimit: 2 }), {
      prefix: newPrefix(),
      ttlMs: 60_000,
    });
    return {
      store,
      async cleanup() {
        await store.close();
        scratch.drop(url);
      },
      failInsertsOf: (body) => failInsertsOf(url, body),
    };
  });

  describe('cache specifics', () => {
    let url: string;
    let prefix: string;
    let mysqlStore: Store;
    const open: Store[] = [];

    beforeEach(async () => {
      url = await scratch.migrated();
      prefix = newPrefix();
      mysqlStore = await openMysqlStore(url, { connectionLimit: 4 });
    });

    afterEach(async () => {
      for (const store of open.splice(0)) await store.close();
      await mysqlStore.close();
      scratch.drop(url);
    });

    /**
     * A cached store as one process would have it: its own Redis connection, the shared key prefix, over
     * `inner` (the real store, or a counting wrapper of it). Closing it leaves the real store open.
     */
    async function process(
      inner: Store = counting(mysqlStore).store,
      options: Partial<OpenCachedStoreOptions> = {},
      redisUrl = redis.url!,
    ): Promise<{ store: CachedStore; events: Recorder }> {
      const events = new Recorder();
      const store = await openCachedStore(redisUrl, inner, { prefix, ttlMs: 60_000, events, ...options });
      open.push(store);
      return { store, events };
    }

    async function appWithChat(store: Store): Promise<{ id: number; token: string; chat: Chat }> {
      const app = await store.createApplication({ token: `tok-${randomUUID()}`, name: 'app', at: at(0) });
      await store.persistBatch([{ kind: 'chat.create', applicationId: app.id, number: 1, at: at(1) }]);
      const chat = await store.findChat(app.id, 1);
      assert.ok(chat);
      return { id: app.id, token: app.token, chat };
    }

    it('serves repeated reads from Redis: the store is read once per view', async () => {
      const { store: base, calls } = counting(mysqlStore);
      const { store, events } = await process(base);
      const { id, token, chat } = await appWithChat(store);
      calls.clear();
      for (let i = 0; i < 3; i++) {
        await store.findApplication(token);
        await store.findChat(id, 1);
        await store.listChats(id, { limit: 10 });
        await store.listMessages(chat, { limit: 10 });
      }
      // findChat was cached by appWithChat already.
      assert.deepEqual(Object.fromEntries(calls), {
        findApplication: 2, // the first in a process learns the token's id; the second fills the view
        listChats: 1,
        listMessages: 1,
      });
      assert.deepEqual(events.results('chats'), ['miss', 'hit', 'hit']);
    });

    it('a persisted create shows in the cached lists and counts of every process', async () => {
      const { store: api } = await process();
      const { store: worker } = await process();
      const { id, token, chat } = await appWithChat(worker);
      // Cached in the API process: one chat, no messages.
      assert.equal((await api.findApplication(token))?.chatsCount, 1);
      assert.equal((await api.findApplication(token))?.chatsCount, 1);
      assert.deepEqual(
        (await api.listChats(id, { limit: 10 })).items.map((c) => c.number),
        [1],
      );
      assert.deepEqual((await api.listMessages(chat, { limit: 10 })).items, []);
      assert.equal(await api.findMessage(chat, 1), undefined);

      await worker.persistBatch([
        { kind: 'chat.create', applicationId: id, number: 2, at: at(2) },
        { kind: 'message.create', applicationId: id, chatNumber: 1, number: 1, body: 'hello', at: at(3) },
      ]);

      assert.equal((await api.findApplication(token))?.chatsCount, 2);
      const chats = (await api.listChats(id, { limit: 10 })).items;
      assert.deepEqual(
        chats.map((c) => [c.number, c.messagesCount]),
        [
          [1, 1],
          [2, 0],
        ],
      );
      assert.equal((await api.findChat(id, 1))?.messagesCount, 1);
      const fresh = (await api.findChat(id, 1))!;
      assert.deepEqual(
        (await api.listMessages(fresh, { limit: 10 })).items.map((m) => m.body),
        ['hello'],
      );
      assert.equal((await api.findMessage(fresh, 1))?.body, 'hello');
    });

    it('an edit and a rename show at once, in every process', async () => {
      const { store: one } = await process();
      const { store: two } = await process();
      const { id, token, chat } = await appWithChat(one);
      await one.persistBatch([
        { kind: 'message.create', applicationId: id, chatNumber: 1, number: 1, body: 'before', at: at(2) },
      ]);
      assert.equal((await two.findMessage(chat, 1))?.body, 'before');
      assert.equal((await two.listMessages(chat, { limit: 5 })).items[0]?.body, 'before');
      assert.equal((await two.findApplication(token))?.name, 'app');
      assert.equal((await two.findApplication(token))?.name, 'app');

      await one.editMessage(chat, 1, 'after', at(10));
      await one.renameApplication(id, 'renamed', at(11));

      assert.equal((await two.findMessage(chat, 1))?.body, 'after');
      assert.equal((await two.listMessages(chat, { limit: 5 })).items[0]?.body, 'after');
      assert.equal((await two.findApplication(token))?.name, 'renamed');
    });

    it('a reader that read the store before a commit neither caches it nor shares it with a later read', async () => {
      const { store: base, gate } = counting(mysqlStore);
      const { store: reader } = await process(base);
      const { store: writer } = await process();
      const { id } = await appWithChat(writer);

      // The reader misses, reads one chat from the store, and is held before it fills the cache.
      const held = gate();
      const stale = reader.listChats(id, { limit: 10 });
      await held.reached;
      await writer.persistBatch([{ kind: 'chat.create', applicationId: id, number: 2, at: at(2) }]);
      // A read of the same view in the same process, after the create was persisted: it must not share
      // the held read's answer (single flight), which predates the create.
      const later = reader.listChats(id, { limit: 10 });
      held.open();
      assert.deepEqual(
        (await stale).items.map((c) => c.number),
        [1],
        'it answers what it read',
      );
      assert.deepEqual(
        (await later).items.map((c) => c.number),
        [1, 2],
        'a read that came after the create sees it',
      );
      assert.deepEqual(
        (await reader.listChats(id, { limit: 10 })).items.map((c) => c.number),
        [1, 2],
        'but did not cache it',
      );
    });

    it('no stampede: 3 processes × 40 concurrent misses of one view read the store once', async () => {
      const { store: base, calls } = counting(mysqlStore);
      const processes = await Promise.all([process(base), process(base), process(base)]);
      const { id } = await appWithChat(processes[0]!.store);
      calls.clear();
      const pages = await Promise.all(
        processes.flatMap(({ store }) => Array.from({ length: 40 }, () => store.listChats(id, { limit: 7 }))),
      );
      assert.equal(calls.get('listChats'), 1);
      for (const page of pages)
        assert.deepEqual(
          page.items.map((c) => c.number),
          [1],
        );
      const results = processes.flatMap(({ events }) => events.results('chats'));
      // Single flight: one read per process reached Redis; one of those missed.
      assert.deepEqual(
        results.filter((r) => r === 'miss'),
        ['miss'],
      );
      assert.equal(results.length, 3);
    });

    it('a holder that never fills (its process died) delays the others, never fails them', async () => {
      const { store, events } = await process(undefined, { waitMs: 100, lockMs: 60_000 });
      const { id } = await appWithChat(store);
      // A lock that lapses in a minute, by a process that is gone.
      await admin.hSet(`${prefix}{a:${id}}`, 'lock:chats:10::', `dead:${Date.now() + 60_000}`);
      const started = performance.now();
      assert.deepEqual(
        (await store.listChats(id, { limit: 10 })).items.map((c) => c.number),
        [1],
      );
      assert.ok(performance.now() - started >= 100, 'it waited for the holder first');
      assert.deepEqual(events.results('chats'), ['miss']);
    });

    it('Redis unreachable: reads and writes are served by the store; a lost invalidation lasts one TTL', async () => {
      const relay = new Relay(redis.url!);
      await relay.open();
      try {
        const { store: writer } = await process(undefined, { ttlMs: 1500 });
        const { store: reader, events } = await process(
          undefined,
          { ttlMs: 1500 },
          `redis://127.0.0.1:${relay.port}`,
        );
        const { id, token, chat } = await appWithChat(writer);
        assert.equal((await reader.findApplication(token))?.chatsCount, 1);
        assert.equal((await reader.listChats(id, { limit: 10 })).items.length, 1);
        await eventually(
          async () => {
            await reader.listChats(id, { limit: 10 });
            return events.results('chats').at(-1) === 'hit';
          },
          5000,
          'the list is cached',
        );

        await relay.cut();
        events.reads.length = 0;
        assert.equal((await reader.findApplication(token))?.chatsCount, 1);
        assert.equal((await reader.findChat(id, 1))?.number, 1);
        assert.deepEqual((await reader.listMessages(chat, { limit: 10 })).items, []);
        await reader.persistBatch([{ kind: 'chat.create', applicationId: id, number: 2, at: at(2) }]);
        assert.equal((await reader.listChats(id, { limit: 10 })).items.length, 2, 'the store answers');
        assert.ok(events.reads.every((r) => r.result === 'error'));
        assert.ok(events.failures.includes('read') && events.failures.includes('invalidate'));
        // An edit or a rename is stored, but answered 503 (the client repeats it once Redis is back, which
        // invalidates): answered 200, its cached old text would come back with Redis.
        await reader.persistBatch([
          { kind: 'message.create', applicationId: id, chatNumber: 1, number: 1, body: 'old', at: at(3) },
        ]);
        await assert.rejects(reader.editMessage(chat, 1, 'new', at(4)), CacheInvalidationError);
        assert.equal((await reader.findMessage(chat, 1))?.body, 'new');
        await assert.rejects(reader.renameApplication(id, 'renamed', at(5)), CacheInvalidationError);
        assert.equal((await reader.findApplication(token))?.name, 'renamed');

        // Back: the invalidation of chat 2 was lost, so the cached list is stale, until its TTL ends.
        await relay.open();
        await eventually(
          () =>
            reader.pingCache().then(
              () => true,
              () => false,
            ),
          5000,
          'reconnected',
        );
        await eventually(
          async () => (await reader.listChats(id, { limit: 10 })).items.length === 2,
          5000,
          'the stale list expired',
        );
        // While Redis is reachable: node-redis's close waits for replies a cut connection never brings.
        await reader.close();
      } finally {
        await relay.cut();
      }
    });
  });
});
