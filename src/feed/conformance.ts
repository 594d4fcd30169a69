/**
 * The MessageFeed port's conformance suite, run by every feed adapter (in-process, Redis pub/sub).
 *
 * The port promises: a listener receives every event of its chat published after `subscribe` resolved,
 * in publish order, exactly once, and nothing of other chats; fan-out to every listener; nothing after
 * `unsubscribe`; a throwing listener does not keep events from the others. Adapters that connect
 * processes also deliver what another feed instance (another process) published: a declared capability.
 *
 * The factory returns a fresh feed; `peer`, when the adapter has that capability, opens a second instance
 * on the same channels, as another process would.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { FeedListener, MessageFeed } from '../domain/ports.ts';
import type { FeedEvent } from '../domain/types.ts';

export interface FeedFixture {
  feed: MessageFeed;
  /** Another instance on the same channels (another process); absent when the adapter is in-process only. */
  peer?: () => Promise<MessageFeed>;
  cleanup(): Promise<void>;
}

const DEADLINE_MS = 10_000;

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await delay(2);
  }
}

function event(
  applicationId: number,
  chatNumber: number,
  number: number,
  kind: FeedEvent['kind'] = 'created',
) {
  const at = new Date(Date.UTC(2024, 0, 1, 0, 0, number)).toISOString();
  return {
    kind,
    applicationId,
    message: { chatNumber, number, body: `m${number}`, createdAt: at, updatedAt: at },
  } satisfies FeedEvent;
}

/** A listener that records the numbers it received (edits as negative numbers) and its resyncs. */
function recorder(): FeedListener & { seen: number[] } {
  const seen: number[] = [];
  return {
    seen,
    event: (e) => seen.push(e.kind === 'created' ? e.message.number : -e.message.number),
    resync: () => {},
  };
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

export function feedConformance(name: string, factory: () => Promise<FeedFixture>): void {
  describe(`MessageFeed conformance: ${name}`, () => {
    let fixture: FeedFixture;
    let feed: MessageFeed;
    beforeEach(async () => {
      fixture = await factory();
      feed = fixture.feed;
    });
    afterEach(() => fixture.cleanup());

    it('delivers a chat’s events to its listener in publish order, creates and edits alike', async () => {
      const listener = recorder();
      await feed.subscribe(1, 1, listener);
      await feed.publish(range(50).map((n) => event(1, 1, n)));
      for (const n of [51, 52]) await feed.publish([event(1, 1, n)]);
      await feed.publish([event(1, 1, 7, 'edited')]);
      await waitFor(() => listener.seen.length === 53, '53 events arrived');
      assert.deepEqual(listener.seen, [...range(52), -7]);
    });

    it('carries the whole message', async () => {
      let received: FeedEvent | undefined;
      await feed.subscribe(3, 4, { event: (e) => (received = e), resync: () => {} });
      const sent = event(3, 4, 9, 'edited');
      sent.message.body = 'héllo 👋 "quoted"\nline';
      await feed.publish([sent]);
      await waitFor(() => received !== undefined, 'the event arrived');
      assert.deepEqual(received, sent);
    });

    it('keeps chats and applications apart', async () => {
      const mine = recorder();
      await feed.subscribe(1, 2, mine);
      await feed.publish([event(1, 3, 1), event(2, 2, 1), event(12, 2, 1), event(1, 2, 5)]);
      await waitFor(() => mine.seen.length >= 1, 'own event arrived');
      // The own event was published last: everything else would have arrived before it.
      assert.deepEqual(mine.seen, [5]);
    });

    it('fans out to every listener of a chat, and stops at unsubscribe', async () => {
      const listeners = [recorder(), recorder(), recorder()];
      const subscriptions = await Promise.all(listeners.map((l) => feed.subscribe(1, 1, l)));
      await feed.publish([event(1, 1, 1)]);
      await waitFor(() => listeners.every((l) => l.seen.length === 1), 'every listener got event 1');
      await subscriptions[0]!.unsubscribe();
      await feed.publish([event(1, 1, 2)]);
      await waitFor(() => listeners.slice(1).every((l) => l.seen.length === 2), 'the others got event 2');
      assert.deepEqual(
        listeners.map((l) => l.seen),
        [[1], [1, 2], [1, 2]],
      );
    });

    it('delivers once to a listener that joined while another left (no double subscription)', async () => {
      const first = recorder();
      const second = recorder();
      const subscription = await feed.subscribe(1, 1, first);
      // Leave and join concurrently, twice, on the same chat.
      await Promise.all([subscription.unsubscribe(), feed.subscribe(1, 1, second)]);
      const third = recorder();
      const again = await feed.subscribe(1, 1, third);
      await Promise.all([again.unsubscribe(), feed.subscribe(1, 1, third)]);
      await feed.publish([event(1, 1, 1), event(1, 1, 2)]);
      await waitFor(() => second.seen.length >= 2 && third.seen.length >= 2, 'both got both events');
      await feed.publish([event(1, 1, 3)]);
      await waitFor(() => second.seen.length >= 3 && third.seen.length >= 3, 'both got event 3');
      assert.deepEqual(second.seen, [1, 2, 3]);
      assert.deepEqual(third.seen, [1, 2, 3]);
      assert.deepEqual(first.seen, []);
    });

    it('keeps delivering to the others when a listener throws', async () => {
      const good = recorder();
      await feed.subscribe(1, 1, {
        event: () => {
          throw new Error('a broken listener');
        },
        resync: () => {},
      });
      await feed.subscribe(1, 1, good);
      await feed.publish([event(1, 1, 1), event(1, 1, 2)]);
      await waitFor(() => good.seen.length === 2, 'the good listener got both');
      assert.deepEqual(good.seen, [1, 2]);
    });

    it('delivers what another instance (another process) published', async (t) => {
      if (!fixture.peer) {
        t.skip('in-process adapter: there is no other process to hear from');
        return;
      }
      const other = await fixture.peer();
      try {
        const listener = recorder();
        await feed.subscribe(5, 1, listener);
        await other.publish(range(20).map((n) => event(5, 1, n)));
        await waitFor(() => listener.seen.length === 20, '20 events from the peer');
        assert.deepEqual(listener.seen, range(20));
      } finally {
        await other.close();
      }
    });
  });
}
