/**
 * Child process of the kill -9 test in queue.test.ts: consumes the given queue and, inside the handler of
 * its first batch, prints the batch's numbers and kills itself with SIGKILL. Nothing gets to run after
 * that (no ack, no channel close, no finally), just as when the writer is OOM-killed mid-commit.
 *
 * Usage: node crash-consumer.fixture.ts <amqp url> <RabbitQueueOptions as JSON> <maxBatch>
 */
import { openRabbitQueue } from './queue.ts';

const [url, optionsJson, maxBatch] = process.argv.slice(2);
if (!url || !optionsJson || !maxBatch)
  throw new Error('usage: crash-consumer.fixture.ts URL OPTIONS MAXBATCH');

const queue = await openRabbitQueue(url, JSON.parse(optionsJson));
queue.consume(
  async (batch) => {
    const numbers = batch.map((c) => (c.kind === 'chat.create' ? c.number : c.chatNumber));
    // Writes to a pipe are synchronous on Linux: the parent has the line before the signal lands.
    process.stdout.write(`${JSON.stringify(numbers)}\n`);
    process.kill(process.pid, 'SIGKILL');
    await new Promise(() => {});
  },
  { maxBatch: Number(maxBatch) },
);
