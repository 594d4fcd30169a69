/**
 * The IdempotencyGuard port's conformance suite: run by every adapter (embedded: an in-process lock over
 * the store's records; distributed: a shared one) from a `*.test.ts` beside it.
 *
 * The guard does not store answers itself: the writer stores each idempotency record with its create, in
 * the same transaction. The fixture's `persist` plays that writer.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { IdempotencyGuard, IdempotencyHold } from '../domain/ports.ts';
import type { IdempotencyRecord } from '../domain/types.ts';

export interface IdempotencyFixture {
  guard: IdempotencyGuard;
  /** Stores a record as the writer would, `ageMs` in the past. */
  persist(record: IdempotencyRecord, ageMs?: number): Promise<void>;
  /** The guard's time-to-live for records (the fixture chose it). */
  ttlMs: number;
  cleanup(): Promise<void>;
}

const record = (scope: string, key: string, response = '{"number":1}'): IdempotencyRecord => ({
  scope,
  key,
  fingerprint: 'fp',
  response,
});

const isHold = (value: IdempotencyRecord | IdempotencyHold): value is IdempotencyHold => 'release' in value;

export function idempotencyConformance(name: string, factory: () => Promise<IdempotencyFixture>): void {
  describe(`IdempotencyGuard conformance: ${name}`, () => {
    let fixture: IdempotencyFixture;
    beforeEach(async () => {
      fixture = await factory();
    });
    afterEach(() => fixture.cleanup());

    it('hands a fresh key to its first caller', async () => {
      const held = await fixture.guard.acquire('chats:1', 'k');
      assert.ok(isHold(held));
      await held.release();
    });

    it('answers a stored record instead of a hold', async () => {
      await fixture.persist(record('chats:1', 'k', '{"number":7}'));
      const found = await fixture.guard.acquire('chats:1', 'k');
      assert.ok(!isHold(found));
      assert.equal(found.response, '{"number":7}');
      assert.equal(found.fingerprint, 'fp');
    });

    it('keeps scopes and keys apart', async () => {
      await fixture.persist(record('chats:1', 'k'));
      for (const [scope, key] of [
        ['chats:2', 'k'],
        ['chats:1', 'K'],
        ['messages:1:1', 'k'],
      ] as const) {
        const held = await fixture.guard.acquire(scope, key);
        assert.ok(isHold(held), `${scope}/${key} is free`);
        await held.release();
      }
    });

    it('forgets records older than its time-to-live', async () => {
      await fixture.persist(record('chats:1', 'old'), fixture.ttlMs + 60_000);
      const held = await fixture.guard.acquire('chats:1', 'old');
      assert.ok(isHold(held));
      await held.release();
    });

    it('makes a concurrent caller wait, then gives it the stored answer', async () => {
      const first = await fixture.guard.acquire('chats:1', 'race');
      assert.ok(isHold(first));
      let settled = false;
      const second = fixture.guard.acquire('chats:1', 'race').then((value) => {
        settled = true;
        return value;
      });
      // Give the waiter every chance to (wrongly) get through while the key is held.
      for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
      assert.equal(settled, false, 'the second caller waits while the first holds the key');
      await fixture.persist(record('chats:1', 'race', '{"number":3}'));
      await first.release();
      const answer = await second;
      assert.ok(!isHold(answer));
      assert.equal(answer.response, '{"number":3}');
    });

    it('hands the key to a waiter when the holder failed and stored nothing', async () => {
      const first = await fixture.guard.acquire('chats:1', 'fail');
      assert.ok(isHold(first));
      const second = fixture.guard.acquire('chats:1', 'fail');
      await first.release();
      const next = await second;
      assert.ok(isHold(next), 'the waiter may now try the create itself');
      await next.release();
    });

    it('answers the record a successful holder released, before the writer has stored it', async () => {
      const first = await fixture.guard.acquire('messages:1:1', 'early');
      assert.ok(isHold(first));
      const waiting = fixture.guard.acquire('messages:1:1', 'early');
      await first.release(record('messages:1:1', 'early', '{"number":9}'));
      for (const answer of [await waiting, await fixture.guard.acquire('messages:1:1', 'early')]) {
        assert.ok(!isHold(answer));
        assert.equal(answer.response, '{"number":9}');
      }
    });

    it('lets exactly one of many concurrent callers hold the key at a time', async () => {
      let holding = 0;
      let most = 0;
      await Promise.all(
        Array.from({ length: 25 }, async () => {
          const held = await fixture.guard.acquire('chats:1', 'many');
          if (!isHold(held)) return;
          holding++;
          most = Math.max(most, holding);
          await new Promise((resolve) => setImmediate(resolve));
          holding--;
          await held.release();
        }),
      );
      assert.equal(most, 1);
    });
  });
}
