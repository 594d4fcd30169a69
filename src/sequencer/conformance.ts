/**
 * The Sequencer port's conformance suite, run by every Sequencer adapter (in-process, later Redis).
 *
 * A sequencer starts counting after what the store already holds, which it learns from a seed with the
 * store's `maxChatNumber` / `maxMessageNumber`. The suite hands the factory such a seed over a described
 * stored state: a plain in-memory stand-in for the store (not a mock of the sequencer under test) that
 * also counts how often it is asked, so "seeded once" can be checked.
 *
 * The factory must return a sequencer with no state of its own (for a networked one: a fresh key space).
 */
import assert from 'node:assert/strict';
import { afterEach, describe, it } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { numbered } from '../domain/commands.ts';
import type { Sequencer, Store } from '../domain/ports.ts';
import type { ChatCreate, MessageCreate, WriteCommand } from '../domain/types.ts';

/** What a sequencer reads from the store to seed its counters. */
export type SequencerSeed = Pick<Store, 'maxChatNumber' | 'maxMessageNumber'>;

export interface SequencerFixture {
  sequencer: Sequencer;
  cleanup(): Promise<void>;
}

/** What the store already holds: max chat number per application, max message number per "app:chat". */
export interface StoredNumbers {
  chats?: Record<number, number>;
  messages?: Record<string, number>;
}

interface CountingSeed extends SequencerSeed {
  /** Calls per counter: `a<app>` for chat numbers, `c<app>:<chat>` for message numbers. */
  calls: Map<string, number>;
  /** Makes the next `n` calls reject, as a store that is briefly unreachable would. */
  failNext(n: number): void;
}

function countingSeed(stored: StoredNumbers): CountingSeed {
  const calls = new Map<string, number>();
  let failures = 0;
  async function answer(key: string, value: number): Promise<number> {
    calls.set(key, (calls.get(key) ?? 0) + 1);
    // A real turn of the event loop, like a store round trip: concurrent callers arrive while it is
    // outstanding, which is what the load-once test needs.
    await nextTurn();
    if (failures > 0) {
      failures--;
      throw new Error('seed unavailable');
    }
    return value;
  }
  return {
    calls,
    failNext(n) {
      failures = n;
    },
    maxChatNumber: (applicationId) => answer(`a${applicationId}`, stored.chats?.[applicationId] ?? 0),
    maxMessageNumber: (applicationId, chatNumber) =>
      answer(`c${applicationId}:${chatNumber}`, stored.messages?.[`${applicationId}:${chatNumber}`] ?? 0),
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

function sorted(values: number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/**
 * Declared differences between adapters. `keepsIntents`: false, or the reason the adapter need not keep
 * intents (the tests about them are then skipped with that reason).
 */
export interface SequencerCapabilities {
  keepsIntents: true | string;
}

const chatIntent = (applicationId: number): ChatCreate => ({
  kind: 'chat.create',
  applicationId,
  number: 0,
  at: '2026-01-01T00:00:00.000Z',
});

const messageIntent = (applicationId: number, chatNumber: number, body: string): MessageCreate => ({
  kind: 'message.create',
  applicationId,
  chatNumber,
  number: 0,
  body,
  at: '2026-01-01T00:00:00.000Z',
  idempotency: {
    scope: `messages:${applicationId}:${chatNumber}`,
    key: `key-${body}`,
    fingerprint: 'f',
    response: JSON.stringify({ number: 0, chat_number: chatNumber, body }),
  },
});

/** Polls `overdue` until it returns what `done` accepts, for at most 5 s (settling may be asynchronous). */
async function overdueUntil(
  sequencer: Sequencer,
  done: (commands: WriteCommand[]) => boolean,
): Promise<WriteCommand[]> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const commands = await sequencer.overdue(0, 100);
    if (done(commands) || Date.now() > deadline) return commands;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

export function sequencerConformance(
  name: string,
  factory: (seed: SequencerSeed) => Promise<SequencerFixture>,
  capabilities: SequencerCapabilities = { keepsIntents: true },
): void {
  describe(`Sequencer conformance: ${name}`, () => {
    const fixtures: SequencerFixture[] = [];

    async function setUp(stored: StoredNumbers = {}): Promise<{ sequencer: Sequencer; seed: CountingSeed }> {
      const seed = countingSeed(stored);
      const fixture = await factory(seed);
      fixtures.push(fixture);
      return { sequencer: fixture.sequencer, seed };
    }

    afterEach(async () => {
      for (const fixture of fixtures.splice(0)) await fixture.cleanup();
    });

    it('ping resolves', async () => {
      const { sequencer } = await setUp();
      await sequencer.ping();
    });

    it('numbers start at 1 when nothing is stored', async () => {
      const { sequencer } = await setUp();
      assert.equal(await sequencer.nextChatNumber(1), 1);
      assert.equal(await sequencer.nextChatNumber(1), 2);
      assert.equal(await sequencer.nextMessageNumber(1, 1), 1);
      assert.equal(await sequencer.nextMessageNumber(1, 1), 2);
      assert.equal(await sequencer.nextMessageNumber(1, 2), 1);
    });

    it('numbers continue after what is stored', async () => {
      const { sequencer } = await setUp({ chats: { 7: 41 }, messages: { '7:3': 99 } });
      assert.equal(await sequencer.nextChatNumber(7), 42);
      assert.equal(await sequencer.nextChatNumber(7), 43);
      assert.equal(await sequencer.nextMessageNumber(7, 3), 100);
      assert.equal(await sequencer.nextMessageNumber(7, 3), 101);
      assert.equal(await sequencer.nextMessageNumber(7, 4), 1, 'a chat without stored messages');
      assert.equal(await sequencer.nextChatNumber(8), 1, 'an application without stored chats');
    });

    it('1000 concurrent message numbers on one chat are exactly 1..1000', async () => {
      const { sequencer } = await setUp();
      const got = await Promise.all(range(1, 1000).map(() => sequencer.nextMessageNumber(1, 1)));
      assert.deepEqual(sorted(got), range(1, 1000));
    });

    it('1000 concurrent numbers continue exactly after what is stored', async () => {
      const { sequencer } = await setUp({ chats: { 1: 250 }, messages: { '1:1': 250 } });
      const [chats, messages] = await Promise.all([
        Promise.all(range(1, 1000).map(() => sequencer.nextChatNumber(1))),
        Promise.all(range(1, 1000).map(() => sequencer.nextMessageNumber(1, 1))),
      ]);
      assert.deepEqual(sorted(chats), range(251, 1250));
      assert.deepEqual(sorted(messages), range(251, 1250));
    });

    it('counters of different chats and applications are independent, also when interleaved', async () => {
      // (1, 12) and (11, 2) would collide under a careless key such as `${app}${chat}`.
      const { sequencer } = await setUp({ messages: { '1:12': 5 } });
      const calls: { key: string; call: () => Promise<number> }[] = [];
      for (let i = 0; i < 200; i++) {
        calls.push({ key: 'm1:1', call: () => sequencer.nextMessageNumber(1, 1) });
        calls.push({ key: 'm1:12', call: () => sequencer.nextMessageNumber(1, 12) });
        calls.push({ key: 'm11:2', call: () => sequencer.nextMessageNumber(11, 2) });
        calls.push({ key: 'm2:1', call: () => sequencer.nextMessageNumber(2, 1) });
        calls.push({ key: 'c1', call: () => sequencer.nextChatNumber(1) });
        calls.push({ key: 'c2', call: () => sequencer.nextChatNumber(2) });
      }
      const results = await Promise.all(calls.map(({ call }) => call()));
      const byKey = new Map<string, number[]>();
      for (const [i, { key }] of calls.entries()) byKey.set(key, [...(byKey.get(key) ?? []), results[i]!]);
      assert.deepEqual(sorted(byKey.get('m1:1')!), range(1, 200));
      assert.deepEqual(sorted(byKey.get('m1:12')!), range(6, 205));
      assert.deepEqual(sorted(byKey.get('m11:2')!), range(1, 200));
      assert.deepEqual(sorted(byKey.get('m2:1')!), range(1, 200));
      assert.deepEqual(sorted(byKey.get('c1')!), range(1, 200));
      assert.deepEqual(sorted(byKey.get('c2')!), range(1, 200));
    });

    it('chatExists is true exactly for the stored and handed-out chat numbers', async () => {
      const { sequencer } = await setUp({ chats: { 7: 3 } });
      const exists = async (n: number) => sequencer.chatExists(7, n);
      // Stored only.
      assert.deepEqual(await Promise.all([1, 2, 3].map(exists)), [true, true, true]);
      assert.deepEqual(await Promise.all([0, -1, 4, 100].map(exists)), [false, false, false, false]);
      // Handed out on top of the stored ones (their rows may not be written yet).
      assert.equal(await sequencer.nextChatNumber(7), 4);
      assert.equal(await sequencer.nextChatNumber(7), 5);
      assert.deepEqual(await Promise.all([1, 2, 3, 4, 5].map(exists)), [true, true, true, true, true]);
      assert.deepEqual(await Promise.all([0, -1, 6].map(exists)), [false, false, false]);
    });

    it('messageExists is true exactly for the stored and handed-out message numbers of that chat', async () => {
      const { sequencer } = await setUp({ messages: { '7:2': 2 } });
      const exists = async (chat: number, n: number) => sequencer.messageExists(7, chat, n);
      assert.deepEqual(await Promise.all([1, 2, 3, 0, -1].map((n) => exists(2, n))), [
        true,
        true,
        false,
        false,
        false,
      ]);
      assert.equal(await sequencer.nextMessageNumber(7, 2), 3);
      assert.equal(await exists(2, 3), true);
      assert.equal(await exists(2, 4), false);
      assert.equal(await exists(1, 1), false, 'another chat of the application');
    });

    it('chatExists is false everywhere for an application with nothing stored or handed out', async () => {
      const { sequencer } = await setUp({ chats: { 7: 3 } });
      assert.equal(await sequencer.chatExists(8, 1), false);
      assert.equal(await sequencer.chatExists(8, 0), false);
      // Message numbers are not chat numbers.
      await sequencer.nextMessageNumber(8, 1);
      assert.equal(await sequencer.chatExists(8, 1), false);
      assert.equal(await sequencer.nextChatNumber(8), 1);
      assert.equal(await sequencer.chatExists(8, 1), true);
      assert.equal(await sequencer.chatExists(8, 2), false);
    });

    it('each counter is seeded once, even when many callers ask at the same moment', async () => {
      const { sequencer, seed } = await setUp({ chats: { 7: 10 }, messages: { '7:1': 20 } });
      const [chats, , messages] = await Promise.all([
        Promise.all(range(1, 100).map(() => sequencer.nextChatNumber(7))),
        Promise.all(range(1, 100).map((i) => sequencer.chatExists(7, i))),
        Promise.all(range(1, 100).map(() => sequencer.nextMessageNumber(7, 1))),
      ]);
      assert.deepEqual(sorted(chats), range(11, 110));
      assert.deepEqual(sorted(messages), range(21, 120));
      // And not again afterwards.
      await sequencer.nextChatNumber(7);
      await sequencer.chatExists(7, 1);
      await sequencer.nextMessageNumber(7, 1);
      assert.deepEqual(
        Object.fromEntries(seed.calls),
        { a7: 1, 'c7:1': 1 },
        'the seed was asked more than once per counter',
      );
    });

    it('a failed seed load is not remembered: the next call loads again and numbers stay exact', async () => {
      const { sequencer, seed } = await setUp({ chats: { 7: 10 } });
      seed.failNext(1);
      const first = await Promise.allSettled(range(1, 10).map(() => sequencer.nextChatNumber(7)));
      // Callers may see the failure (the in-process sequencer passes it on) or the adapter may retry
      // internally; either way nothing is numbered from a guessed seed, and later calls continue exactly.
      const handed = first.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
      const later = await Promise.all(range(1, 5).map(() => sequencer.nextChatNumber(7)));
      assert.deepEqual(sorted([...handed, ...later]), range(11, 10 + handed.length + 5));
    });

    describe('intents', {
      skip: capabilities.keepsIntents === true ? false : capabilities.keepsIntents,
    }, () => {
      it('an intent never settled comes back overdue, numbered, its idempotency answer too', async () => {
        const { sequencer } = await setUp({ chats: { 3: 4 } });
        const chat = await sequencer.nextChatNumber(3, chatIntent(3));
        const message = await sequencer.nextMessageNumber(3, 5, messageIntent(3, 5, 'hello'));
        assert.equal(chat, 5);
        assert.equal(message, 1);
        const overdue = await sequencer.overdue(0, 10);
        assert.deepEqual(
          overdue.sort((a, b) => a.kind.localeCompare(b.kind)),
          [numbered(chatIntent(3), 5), numbered(messageIntent(3, 5, 'hello'), 1)],
        );
        const answer = JSON.parse((overdue[1] as MessageCreate).idempotency!.response) as { number: number };
        assert.equal(answer.number, 1);
      });

      it('settled intents are dropped; the others stay, oldest first', async () => {
        const { sequencer } = await setUp();
        const numbers = [];
        for (const body of ['a', 'b', 'c', 'd']) {
          numbers.push(await sequencer.nextMessageNumber(1, 1, messageIntent(1, 1, body)));
        }
        assert.deepEqual(numbers, [1, 2, 3, 4]);
        sequencer.settle(numbered(messageIntent(1, 1, 'b'), 2));
        sequencer.settle(numbered(messageIntent(1, 1, 'd'), 4));
        const left = await overdueUntil(sequencer, (commands) => commands.length === 2);
        assert.deepEqual(
          left.map((c) => [c.number, (c as MessageCreate).body]),
          [
            [1, 'a'],
            [3, 'c'],
          ],
        );
        assert.equal((await sequencer.overdue(0, 1)).length, 1, 'limit');
      });

      it('an intent is not overdue before it reached the given age', async () => {
        const { sequencer } = await setUp();
        await sequencer.nextChatNumber(2, chatIntent(2));
        assert.deepEqual(await sequencer.overdue(60_000, 10), []);
        assert.equal((await sequencer.overdue(0, 10)).length, 1);
      });

      it('numbers taken without an intent leave nothing behind', async () => {
        const { sequencer } = await setUp();
        await Promise.all(range(1, 20).map(() => sequencer.nextMessageNumber(1, 1)));
        assert.deepEqual(await sequencer.overdue(0, 100), []);
      });

      it('500 concurrent creates with intents, all settled: none overdue, numbers exact', async () => {
        const { sequencer } = await setUp();
        const got = await Promise.all(
          range(1, 500).map(async (i) => {
            const intent = messageIntent(9, 9, `m${i}`);
            const number = await sequencer.nextMessageNumber(9, 9, intent);
            sequencer.settle(numbered(intent, number));
            return number;
          }),
        );
        assert.deepEqual(sorted(got), range(1, 500));
        assert.deepEqual(await overdueUntil(sequencer, (commands) => commands.length === 0), []);
      });
    });
  });
}
