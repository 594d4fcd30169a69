/**
 * The RabbitMQ write queue against a real broker (AMQP_TEST_URL): the port's conformance suite, then what
 * only a broker can get wrong: dead-lettering after the last attempt, a consumer killed with kill -9
 * mid-batch, and a broker restart under load (that one also needs AMQP_TEST_STATE_DIR, the state directory
 * of scripts/services/start.sh, to restart the broker with).
 *
 * Every test gets its own queue names and deletes its queues afterwards.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Connection } from 'rabbitmq-client';
import { service } from '../../../test/helpers/services.ts';
import { UnavailableError } from '../../domain/errors.ts';
import type { WriteCommand } from '../../domain/types.ts';
import { queueConformance } from '../conformance.ts';
import { openRabbitQueue, type RabbitErrorSource, type RabbitQueueOptions } from './queue.ts';
import { requeueDeadLetters } from './requeue.ts';
import { deadQueueName, type TopologySettings, topologyQueueNames } from './topology.ts';

const amqp = service('amqp');
const stateDir = process.env.AMQP_TEST_STATE_DIR || undefined;

let counter = 0;

/** Fresh queue names, and retries quick enough for the conformance suite's 10 s deadlines. */
function testSettings(label: string, overrides: Partial<TopologySettings> = {}): TopologySettings {
  return {
    queue: `chat.writes.test.${label}.${process.pid}.${++counter}`,
    maxAttempts: 5,
    retryDelayMs: 10,
    maxRetryDelayMs: 80,
    redeliveryLimit: 20,
    ...overrides,
  };
}

function testOptions(
  settings: TopologySettings,
  extra: Partial<RabbitQueueOptions> = {},
): RabbitQueueOptions {
  return {
    ...settings,
    maxDepth: 100_000,
    depthRefreshMs: 50,
    reconnectMinMs: 100,
    reconnectMaxMs: 1_000,
    drainTimeoutMs: 8_000,
    ...extra,
  };
}

async function deleteQueues(settings: TopologySettings): Promise<void> {
  const connection = new Connection(amqp.url!);
  connection.on('error', () => {});
  try {
    await connection.onConnect(5_000);
    for (const queue of topologyQueueNames(settings)) await connection.queueDelete({ queue });
  } finally {
    await connection.close();
  }
}

function command(n: number): WriteCommand {
  return {
    kind: 'chat.create',
    applicationId: 1,
    number: n,
    at: new Date(Date.UTC(2024, 0, 1)).toISOString(),
  };
}

function numbersOf(batch: WriteCommand[]): number[] {
  return batch.map((c) => (c.kind === 'chat.create' ? c.number : c.chatNumber));
}

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

async function waitFor(
  condition: () => boolean | Promise<boolean>,
  what: string,
  ms = 10_000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting until ${what}`);
    await delay(10);
  }
}

describe('rabbitmq write queue', { skip: amqp.skip }, () => {
  queueConformance('rabbitmq', async () => {
    const settings = testSettings('conformance');
    const queue = await openRabbitQueue(amqp.url!, testOptions(settings));
    return {
      queue,
      // publish resolves on the broker's confirm, before any consumer has seen the command.
      capabilities: { publishWaitsForHandler: false },
      cleanup: async () => {
        await queue.close();
        await deleteQueues(settings);
      },
    };
  });

  it('a command whose handler always fails is dead-lettered after maxAttempts', {
    timeout: 20_000,
  }, async () => {
    const settings = testSettings('dead', { maxAttempts: 3, retryDelayMs: 20 });
    const errors: RabbitErrorSource[] = [];
    const queue = await openRabbitQueue(
      amqp.url!,
      testOptions(settings, { onError: (_, source) => errors.push(source) }),
    );
    try {
      const attempts = new Map<number, number>();
      queue.consume(
        async (batch) => {
          for (const n of numbersOf(batch)) attempts.set(n, (attempts.get(n) ?? 0) + 1);
          throw new Error('always fails (test)');
        },
        { maxBatch: 10 },
      );
      await Promise.all([queue.publish(command(1)), queue.publish(command(2))]);
      await waitFor(async () => (await queue.deadLettered()) === 2, 'both commands are dead-lettered');
      assert.deepEqual([...attempts.entries()].sort(), [
        [1, 3],
        [2, 3],
      ]);
      await waitFor(() => queue.depth() === 0, 'depth no longer counts the dead-lettered commands');
      assert.equal(errors.filter((source) => source === 'dead-letter').length, 2);
      await queue.close();
      // Nothing comes back after the last attempt, and the dead letter is the command itself.
      assert.deepEqual([...attempts.values()], [3, 3]);
      const connection = new Connection(amqp.url!);
      try {
        const dead = await connection.basicGet({ queue: deadQueueName(settings), noAck: true });
        assert.ok(dead, 'the dead-letter queue is empty');
        assert.equal((dead.body as WriteCommand).kind, 'chat.create');
        // Dead-lettered by the work queue itself (nack without requeue), not published by the adapter.
        assert.equal(
          (dead.headers?.['x-death'] as { reason: string }[] | undefined)?.[0]?.reason,
          'rejected',
        );
      } finally {
        await connection.close();
      }
    } finally {
      await queue.close();
      await deleteQueues(settings);
    }
  });

  it('a command whose handler fails because a dependency is away is retried past maxAttempts, never dead-lettered', {
    timeout: 20_000,
  }, async () => {
    const settings = testSettings('away', { maxAttempts: 2, retryDelayMs: 20, maxRetryDelayMs: 40 });
    const queue = await openRabbitQueue(amqp.url!, testOptions(settings));
    try {
      let calls = 0;
      queue.consume(
        async () => {
          // Away for three times the attempts, as a database restart longer than the retries would be.
          if (++calls <= 3 * settings.maxAttempts) throw new UnavailableError('the database is away (test)');
        },
        { maxBatch: 10 },
      );
      await queue.publish(command(1));
      await waitFor(
        () => calls === 3 * settings.maxAttempts + 1,
        'the command is handled once the store is back',
      );
      await waitFor(() => queue.depth() === 0, 'nothing is left to handle');
      assert.equal(await queue.deadLettered(), 0);
    } finally {
      await queue.close();
      await deleteQueues(settings);
    }
  });

  it('requeueDeadLetters moves dead letters back for a fresh round of attempts, and nothing else', {
    timeout: 20_000,
  }, async () => {
    const settings = testSettings('requeue', { maxAttempts: 2, retryDelayMs: 20 });
    const queue = await openRabbitQueue(amqp.url!, testOptions(settings));
    try {
      let broken = true;
      const handled: number[] = [];
      queue.consume(
        async (batch) => {
          if (broken) throw new Error('the cause, not fixed yet (test)');
          handled.push(...numbersOf(batch));
        },
        { maxBatch: 10 },
      );
      await Promise.all([1, 2, 3].map((n) => queue.publish(command(n))));
      await waitFor(async () => (await queue.deadLettered()) === 3, 'all three are dead-lettered');
      broken = false;
      assert.equal(await requeueDeadLetters(amqp.url!, settings.queue), 3);
      await waitFor(() => handled.length === 3, 'the three are handled after the requeue');
      assert.deepEqual(handled.sort(), [1, 2, 3]);
      assert.equal(await queue.deadLettered(), 0);
      // An empty dead-letter queue: nothing to move.
      assert.equal(await requeueDeadLetters(amqp.url!, settings.queue), 0);
      // A queue that does not exist is an error, and is not created by the attempt.
      await assert.rejects(requeueDeadLetters(amqp.url!, `${settings.queue}.typo`), /NOT_FOUND|no queue/i);
    } finally {
      await queue.close();
      await deleteQueues(settings);
    }
  });

  it('requeueDeadLetters keeps each message as it was: body bytes, content type and encoding, own headers', async () => {
    const settings = testSettings('requeue-shapes');
    const queue = await openRabbitQueue(amqp.url!, testOptions(settings));
    await queue.close();
    const connection = new Connection(amqp.url!);
    connection.on('error', () => {});
    try {
      const dead = deadQueueName(settings);
      const channel = await connection.acquire();
      await channel.confirmSelect();
      const sent = [
        { contentType: 'application/json', body: Buffer.from('"a json string"') },
        { contentType: 'application/json', body: Buffer.from('{"kind":"chat.create","number":7}') },
        {
          contentType: 'application/json',
          contentEncoding: 'gzip',
          body: Buffer.from([0x1f, 0x8b, 0x08, 0x00]),
        },
        { contentType: 'application/octet-stream', body: Buffer.from([0xff, 0x00, 0x7b]) },
      ];
      for (const [i, { body, ...properties }] of sent.entries()) {
        await channel.basicPublish(
          {
            routingKey: dead,
            durable: true,
            messageId: `m${i}`,
            ...properties,
            headers: { 'chat-attempt': 5, 'x-death': 'gone', kept: 'yes' },
          },
          body,
        );
      }
      await channel.close();
      assert.equal(await requeueDeadLetters(amqp.url!, settings.queue), sent.length);
      for (const [i, expected] of sent.entries()) {
        const got = await connection.basicGet({ queue: settings.queue, noAck: true });
        assert.ok(got, `message ${i} requeued`);
        assert.equal(got.messageId, `m${i}`);
        assert.equal(got.contentType, expected.contentType);
        assert.equal(got.contentEncoding, expected.contentEncoding);
        // The broker's own x-delivery-count is the quorum queue's, not one carried over.
        assert.equal(got.headers?.kept, 'yes');
        assert.equal(got.headers?.['chat-attempt'], undefined);
        assert.equal(got.headers?.['x-death'], undefined);
        const bytes = Buffer.isBuffer(got.body) ? got.body : Buffer.from(JSON.stringify(got.body));
        assert.deepEqual(bytes, expected.body, `message ${i}'s body`);
      }
    } finally {
      await connection.close();
      await deleteQueues(settings);
    }
  });

  it('a command its handler refuses is dead-lettered at its first attempt, and ping stays green', async () => {
    const settings = testSettings('refused', { maxAttempts: 5, retryDelayMs: 20 });
    const errors: RabbitErrorSource[] = [];
    const queue = await openRabbitQueue(
      amqp.url!,
      testOptions(settings, { onError: (_, source) => errors.push(source) }),
    );
    try {
      const attempts: number[] = [];
      queue.consume(
        async (batch) => {
          attempts.push(...numbersOf(batch));
          return {
            refused: new Map(numbersOf(batch).flatMap((n, i) => (n === 1 ? [[i, 'poison (test)']] : []))),
          };
        },
        { maxBatch: 10 },
      );
      await Promise.all([queue.publish(command(1)), queue.publish(command(2))]);
      await waitFor(async () => (await queue.deadLettered()) === 1, 'the refused command is dead-lettered');
      await waitFor(() => queue.depth() === 0, 'nothing is left to deliver');
      await queue.ping();
      assert.deepEqual(errors, ['dead-letter']);
      await queue.close();
      assert.deepEqual(attempts.sort(), [1, 2]);
      const connection = new Connection(amqp.url!);
      try {
        const dead = await connection.basicGet({ queue: deadQueueName(settings), noAck: true });
        assert.equal((dead?.body as WriteCommand | undefined)?.kind, 'chat.create');
        assert.equal(numbersOf([dead!.body as WriteCommand])[0], 1);
      } finally {
        await connection.close();
      }
    } finally {
      await queue.close();
      await deleteQueues(settings);
    }
  });

  it('a message that is not a command is dead-lettered without reaching the handler', async () => {
    const settings = testSettings('malformed');
    const queue = await openRabbitQueue(amqp.url!, testOptions(settings));
    const connection = new Connection(amqp.url!);
    try {
      const handled: number[] = [];
      queue.consume(
        async (batch) => {
          handled.push(...numbersOf(batch));
        },
        { maxBatch: 10 },
      );
      // Someone else's publisher: JSON content type with a body that does not parse, then a valid command.
      const raw = connection.createPublisher({ confirm: true });
      await raw.send({ routingKey: settings.queue, contentType: 'application/json' }, Buffer.from('{oops'));
      await raw.close();
      await queue.publish(command(7));
      await waitFor(async () => (await queue.deadLettered()) === 1, 'the malformed message is dead-lettered');
      await waitFor(() => handled.length === 1, 'the valid command is handled');
      assert.deepEqual(handled, [7]);
    } finally {
      await connection.close();
      await queue.close();
      await deleteQueues(settings);
    }
  });

  it('a publish that no queue takes rejects, although the broker confirms it', async () => {
    const settings = testSettings('unroutable');
    const queue = await openRabbitQueue(amqp.url!, testOptions(settings));
    try {
      await queue.publish(command(1));
      // The work queue disappears under a publisher whose channel is already set up (and so does not
      // declare it again): the broker returns the mandatory message, then acks it.
      await deleteQueues(settings);
      await assert.rejects(queue.publish(command(2)), /returned the message/);
    } finally {
      await queue.close();
      await deleteQueues(settings);
    }
  });

  it('opening against an unreachable broker rejects within the connect timeout', async () => {
    const started = Date.now();
    await assert.rejects(
      openRabbitQueue('amqp://guest:guest@127.0.0.1:1', { maxDepth: 10, connectTimeoutMs: 300 }),
      /cannot open queue chat\.writes/,
    );
    assert.ok(Date.now() - started < 2_000);
  });

  it('a consumer killed with kill -9 inside its handler: the unacked batch goes to the next consumer', {
    timeout: 30_000,
  }, async () => {
    const settings = testSettings('crash');
    const options = testOptions(settings);
    const queue = await openRabbitQueue(amqp.url!, options);
    try {
      await Promise.all(range(1, 10).map((n) => queue.publish(command(n))));
      const fixture = fileURLToPath(new URL('./crash-consumer.fixture.ts', import.meta.url));
      const child = spawn(process.execPath, [fixture, amqp.url!, JSON.stringify(options), '4'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let output = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        output += chunk;
      });
      const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
        child.once('exit', (exitCode, exitSignal) => resolve([exitCode, exitSignal])),
      );
      assert.equal(signal, 'SIGKILL', `the child exited with code ${code} instead of being killed`);
      const crashed = JSON.parse(output.trim()) as number[];
      assert.ok(crashed.length > 0 && crashed.length <= 4, `child batch: ${output}`);

      const handled = new Set<number>();
      queue.consume(
        async (batch) => {
          for (const n of numbersOf(batch)) handled.add(n);
        },
        { maxBatch: 10 },
      );
      await waitFor(() => handled.size === 10, 'all 10 commands are handled by the next consumer');
      for (const n of crashed) assert.ok(handled.has(n), `command ${n} of the killed batch was lost`);
    } finally {
      await queue.close();
      await deleteQueues(settings);
    }
  });
});

// Last: it restarts the broker that the tests above use.
describe('rabbitmq write queue across a broker restart', { skip: amqp.skip }, () => {
  it('every publish that resolved is handled, and the consumer resumes by itself', {
    skip: stateDir
      ? false
      : 'service unavailable: set AMQP_TEST_STATE_DIR (the state dir of scripts/services/start.sh) ' +
        'to restart the broker',
    timeout: 90_000,
  }, async (t) => {
    const settings = testSettings('restart');
    const queue = await openRabbitQueue(amqp.url!, testOptions(settings, { drainTimeoutMs: 20_000 }));
    const handled = new Set<number>();
    const resolved = new Set<number>();
    let rejected = 0;
    let next = 0;
    let publishing = true;
    try {
      queue.consume(
        async (batch) => {
          for (const n of numbersOf(batch)) handled.add(n);
        },
        { maxBatch: 50 },
      );
      // A steady stream: ten publishes in flight at a time, a short pause between rounds.
      const stream = (async () => {
        while (publishing) {
          const round = range(next + 1, next + 10);
          next += 10;
          await Promise.all(
            round.map((n) =>
              queue.publish(command(n)).then(
                () => resolved.add(n),
                () => rejected++,
              ),
            ),
          );
          await delay(queue.accepting() ? 5 : 50);
        }
      })();
      await waitFor(() => handled.size >= 200, 'the stream is flowing before the restart');

      const scripts = fileURLToPath(new URL('../../../scripts/services/', import.meta.url));
      const run = promisify(execFile);
      const started = Date.now();
      await run('bash', [`${scripts}stop.sh`, stateDir!, 'rabbitmq']);
      const stoppedAt = next;
      await run('bash', [`${scripts}start.sh`, stateDir!, 'rabbitmq']);
      t.diagnostic(`broker restarted in ${Date.now() - started} ms`);
      const restartedAt = next;

      // Not just one command: a steady flow again, published and handled after the restart.
      await waitFor(
        () => [...resolved].filter((n) => n > restartedAt && handled.has(n)).length >= 100,
        '100 commands published after the restart are handled',
        30_000,
      );
      publishing = false;
      await stream;
      await waitFor(
        () => [...resolved].every((n) => handled.has(n)),
        'every publish that resolved is handled',
        30_000,
      );
      t.diagnostic(
        `published ${next}, resolved ${resolved.size}, rejected ${rejected} (${stoppedAt}..${restartedAt} ` +
          `issued while the broker was down), handled ${handled.size}`,
      );
      assert.ok(rejected > 0, 'no publish failed while the broker was down');
    } finally {
      publishing = false;
      await queue.close();
      await deleteQueues(settings);
    }
  });
});
