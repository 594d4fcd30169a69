import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { NotFoundError } from '../domain/errors.ts';
import { storeWaits, untilStored } from './until-stored.ts';

/** A record that appears once the store has been asked `after` times. */
function appearing(after: number) {
  let reads = 0;
  return {
    attempt: async () => (++reads > after ? { stored: true } : undefined),
    get reads() {
      return reads;
    },
  };
}

describe('untilStored', () => {
  it('answers a stored record at once, and a number never handed out with 404', async () => {
    const record = appearing(0);
    assert.deepEqual(await untilStored('chat', record.attempt, async () => true), { stored: true });
    assert.equal(record.reads, 1);
    await assert.rejects(
      untilStored('chat', appearing(99).attempt, async () => false),
      (error: unknown) => error instanceof NotFoundError,
    );
  });

  it('waits for a record handed out and not stored yet; reads of one record share one poll', async () => {
    const record = appearing(3);
    const readers = Array.from({ length: 20 }, () =>
      untilStored('message', record.attempt, async () => true, 'app:1:7'),
    );
    for (const found of await Promise.all(readers)) assert.deepEqual(found, { stored: true });
    // Each reader's first look (20), then one shared poll until the record is there.
    assert.ok(record.reads <= 20 + 4, `${record.reads} store reads`);
  });

  it('counts the requests waiting (store_waits) until their record is stored', async () => {
    let stored = false;
    const attempt = async () => (stored ? { stored: true } : undefined);
    const readers = [1, 2, 3, 4, 5].map((n) =>
      untilStored('message', attempt, async () => true, `app:1:${n % 2}`),
    );
    const deadline = Date.now() + 2_000;
    while (storeWaits() < 5 && Date.now() < deadline) await new Promise(setImmediate);
    assert.equal(storeWaits(), 5, 'shared polls count each request');
    stored = true;
    await Promise.all(readers);
    assert.equal(storeWaits(), 0);
  });

  it('does not share between callers that name no record (edits)', async () => {
    const record = appearing(3);
    await Promise.all([1, 2, 3].map(() => untilStored('message', record.attempt, async () => true)));
    assert.ok(record.reads >= 3 + 3, `${record.reads} store reads`);
  });
});
