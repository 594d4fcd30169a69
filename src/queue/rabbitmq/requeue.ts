import { Connection } from 'rabbitmq-client';
import { ATTEMPT_HEADER } from './topology.ts';

/**
 * Moves the messages of the dead-letter queue `<queue>.dead` back to the work queue `<queue>` for a fresh
 * round of attempts: what an operator runs once the cause of the dead letters is fixed.
 *
 * Each message is published again (persistent, confirmed by the broker) before its dead copy is acked, so
 * a crash between the two leaves a duplicate, never a loss; handling is idempotent (the store's unique
 * keys, the index's external versions), so the duplicate is harmless. Attempt counts and the broker's
 * death headers are dropped: the message starts over. At most the number of messages found at the start
 * are moved, so one that fails again at once is not moved round in a loop. Returns how many were moved.
 */
export async function requeueDeadLetters(url: string, queue: string): Promise<number> {
  const dead = `${queue}.dead`;
  const connection = new Connection({ url, connectionName: `requeue ${dead} ${process.pid}` });
  connection.on('error', () => {});
  try {
    await connection.onConnect(10_000);
    // Passive: both must exist already (the worker declares them); a typo must not create a queue.
    await connection.queueDeclare({ queue, passive: true });
    const { messageCount } = await connection.queueDeclare({ queue: dead, passive: true });
    const channel = await connection.acquire();
    try {
      await channel.confirmSelect();
      let moved = 0;
      while (moved < messageCount) {
        const message = await channel.basicGet({ queue: dead });
        if (message === undefined) break;
        const headers = Object.fromEntries(
          Object.entries(message.headers ?? {}).filter(
            ([name]) => name !== ATTEMPT_HEADER && !name.startsWith('x-'),
          ),
        );
        // In confirm mode this resolves on the broker's ack of the persistent copy.
        await channel.basicPublish(
          {
            exchange: '',
            routingKey: queue,
            durable: true,
            messageId: message.messageId,
            contentType: message.contentType,
            headers,
          },
          message.body,
        );
        channel.basicAck({ deliveryTag: message.deliveryTag });
        moved++;
      }
      return moved;
    } finally {
      await channel.close();
    }
  } finally {
    await connection.close();
  }
}
