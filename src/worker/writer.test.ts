import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { QueueItemRefusedError } from '../domain/errors.ts';
import type { FeedEvent, IndexEvent, WriteCommand } from '../domain/types.ts';
import { createMetrics } from '../metrics.ts';
import { MemoryQueue } from '../queue/memory/queue.ts';
import { openDatabase } from '../store/sqlite/database.ts';
import { SqliteStore } from '../store/sqlite/store.ts';
import { startWriter } from './writer.ts';

describe('writer', () => {
  it('refuses a command that can never be stored alone: its batch is stored, indexed and announced without it', async () => {
    const store = new SqliteStore(openDatabase({ dataDir: ':memory:', synchronous: 'NORMAL' }));
    const queue = new MemoryQueue<WriteCommand>({ maxDepth: 100 });
    const indexEvents = new MemoryQueue<IndexEvent>({ maxDepth: 100 });
    const indexed: IndexEvent[] = [];
    indexEvents.consume(async (batch) => void indexed.push(...batch), { maxBatch: 100 });
    const announced: FeedEvent[] = [];
    const metrics = createMetrics();
    startWriter({
      queue,
      store,
      metrics,
      log: pino({ level: 'silent' }),
      maxBatch: 100,
      indexEvents,
      announce: (events) => void announced.push(...events),
    });
    try {
      const app = await store.createApplication({ token: 'tok', name: 'app', at: new Date().toISOString() });
      const at = new Date().toISOString();
      const message = (applicationId: number, number: number): WriteCommand => ({
        kind: 'message.create',
        applicationId,
        chatNumber: 1,
        number,
        body: `body ${number}`,
        at,
      });
      // Published in one tick: one batch.
      const results = await Promise.allSettled([
        queue.publish({ kind: 'chat.create', applicationId: app.id, number: 1, at }),
        queue.publish(message(app.id, 1)),
        queue.publish(message(app.id + 99, 2)),
        queue.publish(message(app.id, 2)),
      ]);
      assert.deepEqual(
        results.map((result) => result.status),
        ['fulfilled', 'fulfilled', 'rejected', 'fulfilled'],
      );
      const refusal = (results[2] as PromiseRejectedResult).reason as Error;
      assert.ok(refusal instanceof QueueItemRefusedError);
      assert.match(refusal.message, new RegExp(`application ${app.id + 99} does not exist`));

      const chat = await store.findChat(app.id, 1);
      assert.equal(chat?.messagesCount, 2);
      assert.equal((await metrics.refusedCommands.get()).values[0]?.value, 1);
      assert.deepEqual(
        announced.map((event) => [event.kind, event.message.number]),
        [
          ['created', 1],
          ['created', 2],
        ],
      );
      assert.deepEqual(
        indexed
          .flatMap((event) => (event.kind === 'message.index.batch' ? event.events : [event]))
          .map((e) => e.number),
        [1, 2],
      );
      assert.equal(await queue.ping(), undefined, 'a refusal is not a failing writer');
    } finally {
      await queue.close();
      await indexEvents.close();
      await store.close();
    }
  });
});
