/**
 * The Redis feed against a real Redis (REDIS_TEST_URL). Each fixture uses a channel prefix of its own, so
 * runs in parallel (and other test files) never hear each other's events.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, it } from 'node:test';
import { openRedisAdmin } from '../../../test/helpers/redis.ts';
import { eventually } from '../../../test/helpers/server.ts';
import { service } from '../../../test/helpers/services.ts';
import { feedConformance } from '../conformance.ts';
import { openRedisFeed } from './feed.ts';

const redis = service('redis');

describe('redis feed', { skip: redis.skip }, () => {
  feedConformance('redis pub/sub', async () => {
    const prefix = `feed-test:${randomUUID()}:`;
    const open = () => openRedisFeed(redis.url!, { prefix });
    const feed = await open();
    return { feed, peer: open, cleanup: () => feed.close() };
  });

  it('opens its subscriber connection only when something subscribes (a worker only publishes)', async () => {
    const clientName = `feed-test-${randomUUID()}`;
    const feed = await openRedisFeed(redis.url!, { prefix: `feed-test:${randomUUID()}:`, clientName });
    const admin = await openRedisAdmin(redis.url!);
    const connections = async () =>
      String(await admin.sendCommand(['CLIENT', 'LIST']))
        .split('\n')
        .filter((l) => l.includes(` name=${clientName} `)).length;
    try {
      await feed.publish([]);
      assert.equal(await connections(), 1);
      await feed.subscribe(1, 1, { event: () => {}, resync: () => {} });
      assert.equal(await connections(), 2);
    } finally {
      await Promise.all([feed.close(), admin.close()]);
    }
  });

  it('tells its listeners to resync after the subscriber connection was lost, and is subscribed again', async () => {
    const prefix = `feed-test:${randomUUID()}:`;
    const clientName = `feed-test-${randomUUID()}`;
    const feed = await openRedisFeed(redis.url!, { prefix, clientName });
    const admin = await openRedisAdmin(redis.url!);
    try {
      let resyncs = 0;
      const events: number[] = [];
      await feed.subscribe(1, 1, { event: (e) => events.push(e.message.number), resync: () => resyncs++ });
      // Only this feed's subscriber connection: other tests' connections share this Redis.
      const line = String(await admin.sendCommand(['CLIENT', 'LIST']))
        .split('\n')
        .find((l) => l.includes(` name=${clientName} `) && / sub=[1-9]/.test(l));
      assert.ok(line, 'the subscriber connection is listed');
      await admin.sendCommand(['CLIENT', 'KILL', 'ID', /\bid=(\d+)/.exec(line)![1]!]);
      await eventually(async () => resyncs > 0, 10_000, 'a resync after the reconnection');
      const at = new Date().toISOString();
      const message = { chatNumber: 1, number: 1, body: 'x', createdAt: at, updatedAt: at };
      await feed.publish([{ kind: 'created', applicationId: 1, message }]);
      await eventually(async () => events.length > 0, 10_000, 'an event after the reconnection');
      assert.deepEqual(events, [1]);
    } finally {
      await Promise.all([feed.close(), admin.close()]);
    }
  });
});
