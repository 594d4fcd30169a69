import { setImmediate as nextTurn } from 'node:timers/promises';
import { Connection, type SyncMessage } from 'rabbitmq-client';
import { withTimeout } from '../../timeout.ts';
import { ATTEMPT_HEADER } from './topology.ts';

/** A publish the broker has not confirmed after this long stops the command (a blocked broker). */
const CONFIRM_TIMEOUT_MS = 10_000;

/**
 * Moves the messages of the dead-letter queue `<queue>.dead` back to the work queue `<queue>` for a fresh
 * round of attempts: what an operator runs once the cause of the dead letters is fixed.
 *
 * Each message is published again (persistent, mandatory, confirmed by the broker) before its dead copy
 * is acked, so a crash between the two leaves a duplicate, never a loss; handling is idempotent (the
 * store's unique keys, the index's external versions), so the duplicate is harmless. A copy the broker
 * returns (the work queue is gone: it confirms a message no queue took) or does not confirm in time
 * stops the command with its dead copy kept. Attempt counts and the broker's death headers are dropped:
 * the message starts over. At most the number of messages found at the start are moved, so one that
 * fails again at once is not moved round in a loop. Returns how many were moved.
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
    let returned = false;
    channel.on('basic.return', () => {
      returned = true;
    });
    try {
      await channel.confirmSelect();
      let moved = 0;
      while (moved < messageCount) {
        const message = await channel.basicGet({ queue: dead });
        if (message === undefined) break;
        // In confirm mode this resolves on the broker's ack of the persistent copy.
        const confirmed = channel.basicPublish(
          { ...propertiesOf(message), exchange: '', routingKey: queue, durable: true, mandatory: true },
          bodyOf(message),
        );
        await withTimeout(
          confirmed,
          CONFIRM_TIMEOUT_MS,
          () => new Error(`no confirm from the broker within ${CONFIRM_TIMEOUT_MS} ms; stopped`),
        );
        // A returned message is acked too, right after its basic.return, whose event comes a turn later.
        await nextTurn();
        if (returned) throw new Error(`the broker returned a message: no queue ${queue}; stopped`);
        channel.basicAck({ deliveryTag: message.deliveryTag });
        moved++;
      }
      return moved;
    } finally {
      // Closing the channel hands back a message taken and not acked (after an error): it stays dead.
      await channel.close();
    }
  } finally {
    await connection.close();
  }
}

/** The message's properties as they were, without the attempt count and the broker's `x-` headers. */
function propertiesOf(message: SyncMessage) {
  const headers = Object.fromEntries(
    Object.entries(message.headers ?? {}).filter(
      ([name]) => name !== ATTEMPT_HEADER && !name.startsWith('x-'),
    ),
  );
  const { messageId, contentType, contentEncoding, correlationId, type, priority, appId, timestamp } =
    message;
  return {
    messageId,
    contentType,
    contentEncoding,
    correlationId,
    type,
    priority,
    appId,
    timestamp,
    headers,
  };
}

/**
 * The body as bytes. rabbitmq-client hands a JSON body over parsed (a string too, for a JSON string) and
 * would re-encode a string as text/plain: encode it back as it came, keeping the content type.
 */
function bodyOf(message: SyncMessage): Buffer {
  const { body } = message;
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string' && message.contentType !== 'application/json')
    return Buffer.from(body, 'utf8');
  return Buffer.from(JSON.stringify(body), 'utf8');
}
