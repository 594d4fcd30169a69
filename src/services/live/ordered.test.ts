/**
 * OrderedDelivery on its own: what the feed and the store can do to a stream in the distributed mode
 * (events out of order, events lost, an edit overtaking its create, a number never stored) and what the
 * client must see anyway. The store is a plain array of stored messages; the sink records what was sent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { eventually } from '../../../test/helpers/server.ts';
import type { FeedEvent, Message } from '../../domain/types.ts';
import { OrderedDelivery } from './ordered.ts';
import type { CloseReason, StreamSink } from './sink.ts';

const at = (second: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, second)).toISOString();
const message = (number: number, body = `m${number}`, updated = number): Message => ({
  chatNumber: 1,
  number,
  body,
  createdAt: at(number),
  updatedAt: at(updated),
});
const created = (m: Message): FeedEvent => ({ kind: 'created', applicationId: 1, message: m });
const edited = (m: Message): FeedEvent => ({ kind: 'edited', applicationId: 1, message: m });

function harness(after: number, options: { gapWaitMs?: number; afterEdit?: number } = {}) {
  const stored: Message[] = [];
  /** The store's edits: each message at its latest edit, with its sequence number. */
  const edits = new Map<number, Message>();
  const sent: string[] = [];
  const closed: CloseReason[] = [];
  const skipped: [number, number][] = [];
  const reads = { count: 0 };
  const sink: StreamSink = {
    send: (kind, m, id) => {
      sent.push(`${kind} ${m.number} ${m.body} id=${id}`);
      return true;
    },
    writable: async () => {},
    start: () => {},
    close: (reason) => closed.push(reason),
  };
  const delivery = new OrderedDelivery({
    after,
    sink,
    backfill: async (from, limit) => {
      reads.count++;
      return stored
        .filter((m) => m.number > from)
        .sort((a, b) => a.number - b.number)
        .slice(0, limit);
    },
    afterEdit: options.afterEdit ?? 0,
    backfillEdits: async (from, limit) =>
      [...edits.values()]
        .filter((m) => m.editSeq! > from)
        .sort((a, b) => a.editSeq! - b.editSeq!)
        .slice(0, limit),
    gapWaitMs: options.gapWaitMs ?? 60_000,
    retryMs: 5,
    onGapSkipped: (from, to) => skipped.push([from, to]),
  });
  const store = (...messages: Message[]) => stored.push(...messages);
  /** Stores an edit as the store would: the message at its new text, with the next sequence number. */
  const edit = (m: Message): Message => {
    const seq = Math.max(0, ...[...edits.values()].map((e) => e.editSeq!)) + 1;
    const version = { ...m, editSeq: seq };
    edits.set(m.number, version);
    return version;
  };
  return { delivery, sent, closed, skipped, store, edit, reads };
}

describe('OrderedDelivery', () => {
  it('replays the store after the position, then delivers live events without duplicates', async () => {
    const h = harness(1);
    h.store(message(1), message(2), message(3));
    // Arrives during the replay: 3 is also replayed, 4 is new.
    h.delivery.event(created(message(3)));
    h.delivery.event(created(message(4)));
    await h.delivery.start();
    h.delivery.event(created(message(4)));
    h.delivery.event(created(message(5)));
    assert.deepEqual(h.sent, [
      'created 2 m2 id=2',
      'created 3 m3 id=3',
      'created 4 m4 id=4',
      'created 5 m5 id=5',
    ]);
  });

  it('holds an event whose predecessor is missing, and reads the store for it', async () => {
    const h = harness(0);
    await h.delivery.start();
    // 2 was stored but its event lost (or still on its way from another publisher).
    h.store(message(1), message(2), message(3));
    h.delivery.event(created(message(1)));
    h.delivery.event(created(message(3)));
    assert.deepEqual(h.sent, ['created 1 m1 id=1']);
    await eventually(async () => h.sent.length === 3, 5000, 'the store filled the hole');
    assert.deepEqual(h.sent, ['created 1 m1 id=1', 'created 2 m2 id=2', 'created 3 m3 id=3']);
  });

  it('sends an edit of a delivered message at once, with the current position as id', async () => {
    const h = harness(0);
    await h.delivery.start();
    h.delivery.event(created(message(1)));
    h.delivery.event(created(message(2)));
    h.delivery.event(edited(message(1, 'one again', 9)));
    assert.deepEqual(h.sent.at(-1), 'edited 1 one again id=2');
  });

  it('lets an edit that overtook its create replace the held copy (the newest wins, sent once)', async () => {
    const h = harness(0);
    await h.delivery.start();
    h.store(message(1), message(2, 'two, edited', 9));
    h.delivery.event(edited(message(2, 'two, edited', 9)));
    h.delivery.event(created(message(2)));
    h.delivery.event(created(message(1)));
    assert.deepEqual(h.sent, ['created 1 m1 id=1', 'created 2 two, edited id=2']);
  });

  it('moves past a number that is never stored once the wait is over, and says so', async () => {
    const h = harness(0, { gapWaitMs: 50 });
    await h.delivery.start();
    h.store(message(1), message(4));
    h.delivery.event(created(message(1)));
    h.delivery.event(created(message(4)));
    assert.deepEqual(h.sent, ['created 1 m1 id=1']);
    await eventually(async () => h.sent.length === 2, 5000, 'moved past 2..3');
    assert.deepEqual(h.sent, ['created 1 m1 id=1', 'created 4 m4 id=4']);
    assert.deepEqual(h.skipped, [[2, 3]]);
  });

  it('backs off its store reads while a number stays missing', async () => {
    // retryMs 5: reads at 5, 10, 20, 40 … ms after the hole appeared, so about 9 reads in 1.5 s, not 300.
    const h = harness(0, { gapWaitMs: 1500 });
    await h.delivery.start();
    const before = h.reads.count;
    h.store(message(3));
    h.delivery.event(created(message(3)));
    await eventually(async () => h.skipped.length === 1, 5000, 'moved past 1..2');
    const reads = h.reads.count - before;
    assert.ok(reads >= 5 && reads <= 12, `${reads} reads`);
    assert.deepEqual(h.sent, ['created 3 m3 id=3']);
  });

  it('reads the store on resync (events lost while the feed reconnected)', async () => {
    const h = harness(0);
    await h.delivery.start();
    h.store(message(1), message(2));
    h.delivery.resync();
    await eventually(async () => h.sent.length === 2, 5000, 'both from the store');
    assert.deepEqual(h.sent, ['created 1 m1 id=1', 'created 2 m2 id=2']);
  });

  it('closes a stream holding too much as a slow consumer', async () => {
    const h = harness(0);
    await h.delivery.start();
    for (let n = 2; n <= 10_002; n++) h.delivery.event(created(message(n)));
    assert.deepEqual(h.closed, ['slow_consumer']);
    h.delivery.close();
  });

  it('takes numbered edits in sequence: one that skips ahead makes it read the missed ones from the store', async () => {
    const h = harness(2, { afterEdit: 0 });
    h.store(message(1), message(2));
    await h.delivery.start();
    const e1 = h.edit(message(1, 'one v2', 10));
    const e2 = h.edit(message(2, 'two v2', 11));
    const e3 = h.edit(message(1, 'one v3', 12));
    // The feed delivers 3 first (another process published it sooner), then 1 and 2 late.
    h.delivery.event(edited(e3));
    await eventually(async () => h.sent.length === 2, 2000, 'the store read');
    h.delivery.event(edited(e1));
    h.delivery.event(edited(e2));
    assert.deepEqual(h.sent, ['edited 2 two v2 id=2:2', 'edited 1 one v3 id=2:3']);
    assert.equal(h.delivery.id, '2:3');
  });
});
