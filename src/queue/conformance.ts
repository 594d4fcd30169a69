/**
 * The WriteQueue port's conformance suite, run by every queue adapter (in-process, later RabbitMQ).
 *
 * The port promises: `publish` resolves once the command is durable; every accepted command reaches the
 * consumer at least once; batches never exceed `maxBatch`; a batch whose handler throws is delivered
 * again, an item it refuses is not; `close` stops accepting and waits until everything accepted was handled.
 *
 * Some adapters promise more. Those assertions sit behind `capabilities`, and a test that needs a
 * capability the adapter does not have is reported as skipped with the reason, never silently passed.
 *
 * The factory must return a fresh, empty queue (for a broker: its own queue name) with no consumer yet.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { setTimeout as delay, setImmediate as nextTurn } from 'node:timers/promises';
import type { WriteQueue } from '../domain/ports.ts';
import type { WriteCommand } from '../domain/types.ts';

export interface QueueCapabilities {
  /**
   * `publish` resolves only after a handler call containing the command returned successfully (the
   * in-process queue: durable = committed by the writer). A broker-backed queue resolves on the broker's
   * confirm instead, before the consumer has seen the command.
   */
  publishWaitsForHandler: boolean;
}

export interface QueueFixture {
  queue: WriteQueue;
  capabilities: QueueCapabilities;
  cleanup(): Promise<void>;
}

/** How long a poll waits before the test fails: generous, since a broker round trip is involved. */
const DEADLINE_MS = 10_000;

/**
 * Per test: an adapter that loses a command leaves a publish (or close) pending forever; the test must
 * then fail, not hang the run.
 */
const bounded = { timeout: 3 * DEADLINE_MS };

/** Polls `condition` until it holds or the deadline passes. Not a sleep: it returns as soon as it holds. */
async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + DEADLINE_MS;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await delay(1);
  }
}

/** Command `n`: the number identifies it in the handler's batches. */
function command(n: number): WriteCommand {
  return {
    kind: 'chat.create',
    applicationId: 1,
    number: n,
    at: new Date(Date.UTC(2024, 0, 1)).toISOString(),
  };
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

/** A consumer that records what it was handed. */
function recorder() {
  const batches: number[][] = [];
  /** Numbers of commands in batches whose handler call returned successfully. */
  const handled = new Set<number>();
  return {
    batches,
    handled,
    /** First delivery of each command, in delivery order. */
    firstDeliveries(): number[] {
      const seen = new Set<number>();
      for (const n of batches.flat()) seen.add(n);
      return [...seen];
    },
    record(batch: WriteCommand[]): number[] {
      const numbers = batch.map((c) => (c.kind === 'chat.create' ? c.number : c.chatNumber));
      batches.push(numbers);
      return numbers;
    },
    /**
     * A consume handler that records each batch, runs `during` (a delay, a failure), and counts the batch
     * as handled only if that returned.
     */
    handler(during?: (numbers: number[]) => unknown) {
      return async (batch: WriteCommand[]): Promise<undefined> => {
        const numbers = this.record(batch);
        await during?.(numbers);
        for (const n of numbers) handled.add(n);
      };
    },
  };
}

export function queueConformance(name: string, factory: () => Promise<QueueFixture>): void {
  describe(`WriteQueue conformance: ${name}`, () => {
    let fixture: QueueFixture;
    let queue: WriteQueue;
    // Publishes whose outcome a test does not await must still not become unhandled rejections.
    const stray: Promise<unknown>[] = [];

    beforeEach(async () => {
      fixture = await factory();
      queue = fixture.queue;
    });

    // Bounded: cleanup closes the queue, and close() of an adapter that lost a command never returns.
    afterEach(
      async () => {
        await fixture.cleanup();
        await Promise.allSettled(stray.splice(0));
      },
      { timeout: DEADLINE_MS },
    );

    /** Publishes commands first..last back to back from one publisher (no await in between). */
    function publishAll(first: number, last: number): Promise<void>[] {
      const publishes = range(first, last).map((n) => queue.publish(command(n)));
      stray.push(...publishes);
      return publishes;
    }

    it('ping resolves and a fresh queue is empty and accepting', bounded, async () => {
      await queue.ping();
      assert.equal(queue.depth(), 0);
      assert.equal(queue.accepting(), true);
    });

    it(
      'every published command reaches the handler, in publish order for a single publisher',
      bounded,
      async () => {
        const r = recorder();
        queue.consume(r.handler(), { maxBatch: 50 });
        await Promise.all(publishAll(1, 300));
        await waitFor(() => r.handled.size === 300, 'all 300 commands were handled');
        assert.deepEqual(r.firstDeliveries(), range(1, 300));
      },
    );

    it('commands published before the consumer starts are delivered once it does', bounded, async () => {
      const publishes = publishAll(1, 5);
      const r = recorder();
      queue.consume(r.handler(), { maxBatch: 10 });
      await Promise.all(publishes);
      await waitFor(() => r.handled.size === 5, 'all 5 commands were handled');
      assert.deepEqual(r.firstDeliveries(), range(1, 5));
    });

    it('batches never exceed maxBatch, and many publishes at once do form batches', bounded, async () => {
      const r = recorder();
      queue.consume(
        r.handler(async () => {
          // A handler that takes a turn of the event loop, like a commit: more arrive meanwhile.
          await nextTurn();
        }),
        { maxBatch: 7 },
      );
      await Promise.all(publishAll(1, 100));
      await waitFor(() => r.handled.size === 100, 'all 100 commands were handled');
      const sizes = r.batches.map((b) => b.length);
      assert.ok(
        sizes.every((size) => size >= 1 && size <= 7),
        `batch sizes ${sizes.join(',')} exceed 7`,
      );
      assert.ok(
        sizes.some((size) => size > 1),
        `no batching happened: sizes ${sizes.join(',')}`,
      );
    });

    it(
      'a batch whose handler throws is delivered again, and its publishes still resolve',
      bounded,
      async () => {
        const r = recorder();
        let failed: number[] | undefined;
        queue.consume(
          r.handler(async (numbers) => {
            if (!failed) {
              failed = numbers;
              throw new Error('transient failure (conformance test)');
            }
          }),
          { maxBatch: 5 },
        );
        await Promise.all(publishAll(1, 12));
        await waitFor(() => r.handled.size === 12, 'all 12 commands were handled');
        assert.ok(failed && failed.length > 0);
        // The failed batch was the first handler call; its commands must show up again after it.
        const redelivered = new Set(r.batches.slice(1).flat());
        for (const n of failed)
          assert.ok(redelivered.has(n), `command ${n} of the failed batch was not redelivered`);
      },
    );

    it('a handler that keeps failing keeps getting its commands back', bounded, async () => {
      const r = recorder();
      let calls = 0;
      queue.consume(
        r.handler(async () => {
          calls++;
          if (calls <= 3) throw new Error('failing three times (conformance test)');
        }),
        { maxBatch: 10 },
      );
      await Promise.all(publishAll(1, 3));
      await waitFor(() => r.handled.size === 3, 'all 3 commands were handled');
      // Each failed call's commands come back in a later call: none is dropped after repeated failures.
      for (let i = 0; i < 3; i++) {
        const later = new Set(r.batches.slice(i + 1).flat());
        for (const n of r.batches[i]!)
          assert.ok(later.has(n), `command ${n} was dropped after failure ${i + 1}`);
      }
    });

    it(
      'an item the handler refuses is set aside for good, its batch counts as handled, and ping still resolves',
      bounded,
      async () => {
        const r = recorder();
        const deliveries = new Map<number, number>();
        queue.consume(
          async (batch) => {
            const numbers = r.record(batch);
            for (const n of numbers) deliveries.set(n, (deliveries.get(n) ?? 0) + 1);
            const refused = new Map<number, string>();
            for (const [i, n] of numbers.entries()) {
              if (n === 2) refused.set(i, 'command 2 can never be handled (conformance test)');
              else r.handled.add(n);
            }
            return { refused };
          },
          { maxBatch: 10 },
        );
        const outcomes = await Promise.allSettled(publishAll(1, 3));
        if (fixture.capabilities.publishWaitsForHandler) {
          // Its publisher is told; the others' publishes resolve.
          assert.deepEqual(
            outcomes.map((o) => o.status),
            ['fulfilled', 'rejected', 'fulfilled'],
          );
          const error = (outcomes[1] as PromiseRejectedResult).reason as Error;
          assert.equal(error.name, 'QueueItemRefusedError');
          assert.match(error.message, /command 2 can never be handled/);
        } else {
          assert.ok(outcomes.every((o) => o.status === 'fulfilled'));
        }
        await waitFor(() => r.handled.size === 2 && queue.depth() === 0, '1 and 3 handled, nothing left');
        // Had the refused item been retried, it would come back before (or with) one published after it.
        await Promise.allSettled(publishAll(4, 4));
        await waitFor(() => r.handled.has(4), 'a later command was handled');
        await waitFor(() => queue.depth() === 0, 'nothing left after it');
        assert.equal(deliveries.get(2), 1, 'the refused item was delivered again');
        assert.deepEqual([...r.handled].sort(), [1, 3, 4]);
        await queue.ping();
      },
    );

    it('publish resolves only after a handler call containing the command succeeded', bounded, async (t) => {
      if (!fixture.capabilities.publishWaitsForHandler) {
        t.skip('adapter resolves publish on broker confirm, before the handler (capability not claimed)');
        return;
      }
      const r = recorder();
      let failures = 0;
      queue.consume(
        r.handler(async () => {
          await nextTurn();
          // Fail every other call: a publish must not resolve on the failed attempt.
          if (failures++ % 2 === 0) throw new Error('every other call fails (conformance test)');
        }),
        { maxBatch: 4 },
      );
      const early: number[] = [];
      await Promise.all(
        publishAll(1, 20).map((publish, i) =>
          publish.then(() => {
            if (!r.handled.has(i + 1)) early.push(i + 1);
          }),
        ),
      );
      assert.deepEqual(early, [], 'these publishes resolved before their command was handled');
      assert.equal(r.handled.size, 20);
    });

    it(
      'depth counts accepted commands until they are handled, in-flight ones included',
      bounded,
      async () => {
        let open!: () => void;
        const gate = new Promise<void>((resolve) => {
          open = resolve;
        });
        const r = recorder();
        publishAll(1, 3);
        await waitFor(() => queue.depth() === 3, 'depth is 3 before any consumer');
        queue.consume(
          r.handler(async () => {
            await gate;
          }),
          { maxBatch: 10 },
        );
        try {
          await waitFor(() => r.batches.length > 0, 'the handler was called');
          // Handed to the handler is not handled: the commands still count.
          assert.equal(queue.depth(), 3);
        } finally {
          // Even when the assertion failed: a handler stuck on the gate would hang cleanup's close().
          open();
        }
        await waitFor(() => queue.depth() === 0, 'depth drops to 0 once handled');
        assert.equal(r.handled.size, 3);
      },
    );

    it('close waits until everything accepted was handled, then publish rejects', bounded, async () => {
      const r = recorder();
      queue.consume(
        r.handler(async () => {
          await nextTurn();
        }),
        { maxBatch: 8 },
      );
      const publishes = publishAll(1, 50);
      // Accepted by the broker (when publish waits only for that) before closing; with an in-process
      // queue these are simply the pending commands.
      if (!fixture.capabilities.publishWaitsForHandler) await Promise.all(publishes);
      const closing = queue.close();
      assert.equal(queue.accepting(), false, 'a closing queue does not accept');
      await closing;
      assert.equal(r.handled.size, 50, 'close returned before everything accepted was handled');
      assert.equal(queue.depth(), 0);
      await Promise.all(publishes);
      await assert.rejects(queue.publish(command(51)));
      assert.equal(r.handled.has(51), false);
    });

    it('close of an idle queue resolves and publish then rejects', bounded, async () => {
      queue.consume(async () => {}, { maxBatch: 8 });
      await queue.close();
      assert.equal(queue.accepting(), false);
      await assert.rejects(queue.publish(command(1)));
    });
  });
}
