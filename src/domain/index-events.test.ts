import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  INDEX_BATCH_BODY_CHARS,
  INDEX_BATCH_EVENTS,
  indexBatches,
  indexEventsIn,
  isIndexEvent,
} from './index-events.ts';
import type { MessageIndex } from './types.ts';

const at = '2024-01-01T00:00:00.000Z';
const event = (number: number, body = 'b'): MessageIndex => ({
  kind: 'message.index',
  applicationId: 1,
  chatNumber: 1,
  number,
  body,
  createdAt: at,
  updatedAt: at,
});

describe('index events', () => {
  it('sends a batch as one queue message while it is within the bounds', () => {
    const events = [1, 2, 3].map((n) => event(n));
    assert.deepEqual(indexBatches(events), [{ kind: 'message.index.batch', events }]);
    assert.deepEqual(indexBatches([]), []);
  });

  it('splits a batch at the event count and at the body size, keeping every event once and in order', () => {
    const many = Array.from({ length: INDEX_BATCH_EVENTS * 2 + 1 }, (_, i) => event(i + 1));
    const byCount = indexBatches(many);
    assert.deepEqual(
      byCount.map((b) => b.events.length),
      [INDEX_BATCH_EVENTS, INDEX_BATCH_EVENTS, 1],
    );
    assert.deepEqual(byCount.flatMap(indexEventsIn), many);

    const large = 'x'.repeat(INDEX_BATCH_BODY_CHARS / 2 + 1);
    const big = [
      event(1, large),
      event(2, large),
      event(3, 'small'),
      event(4, 'x'.repeat(INDEX_BATCH_BODY_CHARS + 5)),
    ];
    const bySize = indexBatches(big);
    assert.deepEqual(
      bySize.map((b) => b.events.map((e) => e.number)),
      [[1], [2, 3], [4]],
      'a body larger than the bound still travels, alone',
    );
  });

  it('reads back single events and batches, and nothing else', () => {
    const batch = { kind: 'message.index.batch', events: [event(1), event(2)] };
    assert.equal(isIndexEvent(event(1)), true);
    assert.equal(isIndexEvent(batch), true);
    assert.deepEqual(indexEventsIn(batch as never), [event(1), event(2)]);
    for (const other of [
      null,
      'message.index',
      Buffer.from('{}'),
      {},
      { kind: 'message.create' },
      { kind: 'message.index.batch' },
      { kind: 'message.index.batch', events: [] },
      { kind: 'message.index.batch', events: [event(1), { kind: 'chat.create' }] },
      { kind: 'message.index.batch', events: 'no' },
    ]) {
      assert.equal(isIndexEvent(other), false, JSON.stringify(other));
    }
  });
});
