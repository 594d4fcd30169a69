/**
 * The distributed queue adapter (the WriteQueue of creates, and the IndexQueue of index events): RabbitMQ
 * (0-9-1, tested on 3.10) through `rabbitmq-client`, which reconnects, re-declares and re-subscribes by
 * itself after a broker restart or a dropped connection.
 *
 * - `publish` resolves on the broker's confirm of a persistent message on a durable quorum queue: the
 *   command is durable, not yet handled (`publishWaitsForHandler` is false). Confirms are pipelined: every
 *   publish is written at once and waits for its own ack, never for the publishes before it.
 * - `consume` gathers deliveries into batches (see batcher.ts), acks a batch's messages only after the
 *   handler resolved, and on failure moves each message to a delay queue for its next attempt, or after
 *   the last attempt to the dead-letter queue (see topology.ts); a failure because a dependency is away
 *   (UnavailableError) never dead-letters, it retries at the longest delay. A message the handler refused
 *   goes to the dead-letter queue at once. Nothing is acked before it is either
 *   handled or stored again by the broker, so delivery is at-least-once; the store's `persistBatch` is
 *   idempotent, which makes the duplicates harmless.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as delay, setImmediate as nextTurn } from 'node:timers/promises';
import {
  type AsyncMessage,
  Connection,
  type Consumer,
  ConsumerStatus,
  type Publisher,
  type ReturnedMessage,
} from 'rabbitmq-client';
import { isWriteCommand } from '../../domain/commands.ts';
import { QueueItemRefusedError, UnavailableError } from '../../domain/errors.ts';
import type { BatchHandler, ConsumeOptions, Queue } from '../../domain/ports.ts';
import type { WriteCommand } from '../../domain/types.ts';
import { withTimeout } from '../../timeout.ts';
import { Batcher } from './batcher.ts';
import {
  ATTEMPT_HEADER,
  deadQueueName,
  retryQueueName,
  retryQueueNames,
  type TopologySettings,
  topologyDeclarations,
  workQueueDeclaration,
} from './topology.ts';

/** Where an error reported through `onError` happened. */
export type RabbitErrorSource =
  | 'connection'
  | 'consumer'
  | 'handler'
  | 'retry'
  | 'dead-letter'
  | 'malformed'
  | 'depth'
  | 'close';

export interface RabbitQueueOptions extends Partial<TopologySettings> {
  /** Commands accepted and not handled beyond which `accepting()` turns false (the API answers 503). */
  maxDepth: number;
  /** Unacked deliveries the broker may push to this consumer (default 2 × maxBatch: one batch in the
   * handler, the next one filling). */
  prefetch?: number;
  /** See BatcherOptions.windowMs (default 5). */
  batchWindowMs?: number;
  /** A publish without the broker's confirm after this long rejects (default 5 000). */
  publishTimeoutMs?: number;
  /** How often the cached broker-side depth is refreshed (default 1 000). */
  depthRefreshMs?: number;
  /**
   * Longest `close()` of a consuming instance waits for the queue to drain before leaving the rest to the
   * next consumer (default 10 000): other API processes may keep publishing, so "empty" may never come.
   * Nothing is lost either way: messages not acked stay with the broker.
   */
  drainTimeoutMs?: number;
  /** Reconnect backoff bounds (rabbitmq-client's retryLow / retryHigh; defaults 250 and 5 000). */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** How long `openRabbitQueue` waits for the first connection (default 10 000). */
  connectTimeoutMs?: number;
  connectionName?: string;
  onError?: (error: unknown, source: RabbitErrorSource) => void;
}

export const DEFAULT_TOPOLOGY: TopologySettings = {
  queue: 'chat.writes',
  maxAttempts: 5,
  retryDelayMs: 1_000,
  maxRetryDelayMs: 60_000,
  redeliveryLimit: 20,
};

interface Resolved {
  /** Whether a delivered body is an item of this queue; anything else is dead-lettered unhandled. */
  accepts: (body: unknown) => boolean;
  maxDepth: number;
  prefetch: number | undefined;
  batchWindowMs: number;
  publishTimeoutMs: number;
  depthRefreshMs: number;
  drainTimeoutMs: number;
  onError: (error: unknown, source: RabbitErrorSource) => void;
}

/** Declares the topology, then returns a queue publishing to it (consuming once `consume` is called). */
export async function openRabbitQueue<T = WriteCommand>(
  url: string,
  options: RabbitQueueOptions & { accepts?: (body: unknown) => body is T },
): Promise<RabbitQueue<T>> {
  const settings: TopologySettings = {
    queue: options.queue ?? DEFAULT_TOPOLOGY.queue,
    maxAttempts: Math.max(1, options.maxAttempts ?? DEFAULT_TOPOLOGY.maxAttempts),
    retryDelayMs: options.retryDelayMs ?? DEFAULT_TOPOLOGY.retryDelayMs,
    maxRetryDelayMs: options.maxRetryDelayMs ?? DEFAULT_TOPOLOGY.maxRetryDelayMs,
    redeliveryLimit: options.redeliveryLimit ?? DEFAULT_TOPOLOGY.redeliveryLimit,
  };
  const onError = options.onError ?? (() => {});
  const connection = new Connection({
    url,
    connectionName: options.connectionName ?? `chat ${settings.queue} ${process.pid}`,
    retryLow: options.reconnectMinMs ?? 250,
    retryHigh: options.reconnectMaxMs ?? 5_000,
  });
  // An EventEmitter 'error' without a listener would crash the process; reconnecting is the library's job.
  connection.on('error', (error) => onError(error, 'connection'));
  try {
    await connection.onConnect(options.connectTimeoutMs ?? 10_000);
    for (const declaration of topologyDeclarations(settings)) await connection.queueDeclare(declaration);
  } catch (error) {
    connection.unsafeDestroy();
    throw new Error(`rabbitmq: cannot open queue ${settings.queue}: ${(error as Error).message}`, {
      cause: error,
    });
  }
  const queue = new RabbitQueue<T>(connection, settings, {
    accepts: options.accepts ?? isWriteCommand,
    maxDepth: options.maxDepth,
    prefetch: options.prefetch,
    batchWindowMs: options.batchWindowMs ?? 5,
    publishTimeoutMs: options.publishTimeoutMs ?? 5_000,
    depthRefreshMs: options.depthRefreshMs ?? 1_000,
    drainTimeoutMs: options.drainTimeoutMs ?? 10_000,
    onError,
  });
  await queue.refreshDepth();
  return queue;
}

export class RabbitQueue<T = WriteCommand> implements Queue<T> {
  readonly name = 'rabbitmq';
  readonly #connection: Connection;
  readonly #settings: TopologySettings;
  readonly #options: Resolved;
  readonly #publisher: Publisher;
  /** The work queue and the retry queues: what counts as accepted and not yet handled. */
  readonly #countedQueues: string[];
  #consumer: Consumer | undefined;
  #batcher: Batcher<T> | undefined;
  #closing: Promise<void> | undefined;
  /** Publishes (and retry republishes) waiting for the broker's confirm. */
  readonly #pending = new Set<Promise<void>>();
  /** Message ids of those publishes, and the ones the broker returned as unroutable. */
  readonly #unconfirmed = new Set<string>();
  readonly #returned = new Set<string>();
  readonly #refreshTimer: NodeJS.Timeout;
  #refreshing = false;

  // depth() is synchronous, the broker's count is not: `#brokerReady` is the ready count of the counted
  // queues at the last passive declare, corrected by what this process saw since. Deliveries are counted
  // from when the declare was sent (one that raced with it is subtracted at worst twice, and the result
  // is clamped at 0); confirmed publishes from when the answer arrived (one that raced is missed at worst).
  // Either error lasts until the next refresh.
  #brokerReady = 0;
  #published = 0;
  #publishedAtSnapshot = 0;
  #delivered = 0;
  #deliveredAtSnapshot = 0;
  /** Delivered to this consumer and not yet acked, dead-lettered or moved to a retry queue. */
  #held = 0;

  /** Consecutive failed handler calls, so ping() shows a writer that cannot commit. */
  #failures = 0;
  #lastFailure: unknown;

  /** Use openRabbitQueue: it declares the topology first. */
  constructor(connection: Connection, settings: TopologySettings, options: Resolved) {
    this.#connection = connection;
    this.#settings = settings;
    this.#options = options;
    this.#countedQueues = [settings.queue, ...retryQueueNames(settings)];
    this.#publisher = connection.createPublisher({
      confirm: true,
      // Re-declared on every new channel, so a broker that lost its definitions gets them back before the
      // first publish after reconnecting (a publish to a missing queue would be returned, see #send).
      queues: topologyDeclarations(settings),
    });
    this.#publisher.on('basic.return', (message: ReturnedMessage) => {
      if (message.messageId && this.#unconfirmed.has(message.messageId))
        this.#returned.add(message.messageId);
    });
    this.#refreshTimer = setInterval(() => {
      if (!this.#refreshing) void this.refreshDepth();
    }, options.depthRefreshMs);
    this.#refreshTimer.unref();
  }

  publish(command: T): Promise<void> {
    if (this.#closing) return Promise.reject(new Error('queue is closed'));
    // Fail fast instead of buffering in memory while reconnecting: the caller answers 503 and the client
    // retries with its idempotency key.
    if (!this.#connection.ready) {
      return Promise.reject(
        new Error('rabbitmq connection is not open (reconnecting, or blocked by a broker resource alarm)'),
      );
    }
    return this.#send(this.#settings.queue, command, undefined);
  }

  consume(handler: BatchHandler<T>, options: ConsumeOptions): void {
    if (this.#closing) throw new Error('queue is closed');
    if (this.#consumer) throw new Error('a rabbitmq queue instance has one consumer');
    const prefetch = Math.max(1, this.#options.prefetch ?? 2 * options.maxBatch);
    this.#batcher = new Batcher(
      async (commands) => {
        try {
          const outcome = await handler(commands);
          this.#failures = 0;
          return outcome;
        } catch (error) {
          this.#failures++;
          this.#lastFailure = error instanceof Error ? error.message : error;
          this.#options.onError(error, 'handler');
          throw error;
        }
      },
      { maxBatch: options.maxBatch, windowMs: this.#options.batchWindowMs },
    );
    this.#consumer = this.#connection.createConsumer(
      {
        queue: this.#settings.queue,
        // The Consumer declares its queue on every (re)subscription: it must be the very same declaration,
        // or the broker refuses it (PRECONDITION_FAILED, inequivalent arg).
        queueOptions: workQueueDeclaration(this.#settings),
        qos: { prefetchCount: prefetch },
        // Every prefetched delivery goes straight to the batcher; the Consumer's own buffer stays empty.
        concurrency: prefetch,
        // A callback that throws (the retry republish failed) nacks with requeue: the message comes back.
        requeue: true,
      },
      (message) => this.#onDelivery(message),
    );
    this.#consumer.on('error', (error) => this.#options.onError(error, 'consumer'));
  }

  /** How long a publish waits for its confirm before it fails: no publish begun earlier is still open. */
  get publishTimeoutMs(): number {
    return this.#options.publishTimeoutMs;
  }

  depth(): number {
    const sinceSnapshot =
      this.#published - this.#publishedAtSnapshot - (this.#delivered - this.#deliveredAtSnapshot);
    return Math.max(0, this.#brokerReady + sinceSnapshot) + this.#held;
  }

  accepting(): boolean {
    return !this.#closing && this.#connection.ready && this.depth() < this.#options.maxDepth;
  }

  async ping(): Promise<void> {
    if (!this.#connection.ready) throw new Error('rabbitmq connection is not open');
    if (this.#failures > 0) {
      throw new Error(
        `${this.#settings.queue}: batches failing (${this.#failures} in a row): ${String(this.#lastFailure)}`,
      );
    }
    // The queue itself must exist (a passive declare fails with NOT_FOUND otherwise).
    await answered(
      this.#connection.queueDeclare({ queue: this.#settings.queue, passive: true }),
      this.#options.publishTimeoutMs,
      'rabbitmq ping',
    );
  }

  /** Messages in the dead-letter queue: commands that failed every attempt. Metrics alarm on it. */
  async deadLettered(): Promise<number> {
    // A scrape must not wait for a reconnection (the channel would wait up to its acquire timeout, 20 s).
    if (!this.#connection.ready) throw new Error('rabbitmq connection is not open');
    const { messageCount } = await answered(
      this.#connection.queueDeclare({ queue: deadQueueName(this.#settings), passive: true }),
      this.#options.publishTimeoutMs,
      'rabbitmq dead-letter count',
    );
    return messageCount;
  }

  /**
   * Refreshes the broker-side part of depth() (done every `depthRefreshMs` in the background) and
   * returns the ready count of the work and retry queues, or undefined when the broker did not answer.
   */
  async refreshDepth(): Promise<number | undefined> {
    if (!this.#connection.ready) return undefined;
    this.#refreshing = true;
    const delivered = this.#delivered;
    try {
      const answers = await answered(
        Promise.all(
          this.#countedQueues.map((queue) => this.#connection.queueDeclare({ queue, passive: true })),
        ),
        this.#options.publishTimeoutMs,
        'rabbitmq queue depth',
      );
      this.#brokerReady = answers.reduce((sum, answer) => sum + answer.messageCount, 0);
      this.#deliveredAtSnapshot = delivered;
      this.#publishedAtSnapshot = this.#published;
      return this.#brokerReady;
    } catch (error) {
      this.#options.onError(error, 'depth');
      return undefined;
    } finally {
      this.#refreshing = false;
    }
  }

  /**
   * Stops accepting publishes and waits for their confirms. With a consumer, waits until the work and
   * retry queues are empty and every batch in flight was handled and acked (at most `drainTimeoutMs`),
   * then cancels the consumer. Finally closes the connection.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
    if (this.#consumer) {
      await this.#drain();
      // Waits for the callbacks in flight (so their acks go out), then closes the consumer's channel:
      // deliveries that arrived after the cancel return to the queue.
      await answered(this.#consumer.close(), 10_000, 'rabbitmq consumer close').catch((error) =>
        this.#options.onError(error, 'close'),
      );
    }
    clearInterval(this.#refreshTimer);
    try {
      await answered(this.#publisher.close(), 5_000, 'rabbitmq publisher close');
      await answered(this.#connection.close(), 5_000, 'rabbitmq connection close');
    } catch (error) {
      this.#options.onError(error, 'close');
      this.#connection.unsafeDestroy();
    }
  }

  /** True once the broker reported nothing ready twice in a row while nothing was held or delivered. */
  async #drain(): Promise<boolean> {
    const deadline = Date.now() + this.#options.drainTimeoutMs;
    let quiet = 0;
    while (Date.now() < deadline) {
      const delivered = this.#delivered;
      const ready = await this.refreshDepth();
      // A delivery can be on the wire while the broker already counts it as not ready: only a second
      // empty answer, after the first one had time to arrive, shows an empty queue.
      if (ready === 0 && this.#held === 0 && this.#delivered === delivered) {
        if (++quiet >= 2) return true;
      } else {
        quiet = 0;
      }
      await delay(quiet > 0 ? 50 : 20);
    }
    this.#options.onError(
      new Error(`close: ${this.#settings.queue} not drained after ${this.#options.drainTimeoutMs} ms`),
      'close',
    );
    return false;
  }

  /** One delivery: wait for its batch, then ack it, or move it to its next attempt or the dead letters. */
  async #onDelivery(message: AsyncMessage): Promise<ConsumerStatus> {
    this.#delivered++;
    this.#held++;
    try {
      const command = this.#options.accepts(message.body) ? (message.body as T) : undefined;
      if (command === undefined) {
        // rabbitmq-client leaves a body it could not parse as JSON a Buffer. Retrying cannot help.
        this.#options.onError(
          new Error(
            `malformed command in ${this.#settings.queue} (message ${message.messageId}); dead-lettered`,
          ),
          'malformed',
        );
        return ConsumerStatus.DROP;
      }
      const attempt = attemptOf(message.headers);
      try {
        await this.#batcher!.add(command);
        return ConsumerStatus.ACK;
      } catch (error) {
        if (error instanceof QueueItemRefusedError) {
          // The handler knows retrying cannot help: straight to the dead letters, where it is an alarm.
          this.#options.onError(
            new Error(`message ${message.messageId} dead-lettered: ${error.message}`),
            'dead-letter',
          );
          return ConsumerStatus.DROP;
        }
        // A dependency that is away (the database restarting, failing over) is waited for however long it
        // takes, at the longest delay: only failures of another kind use up a command's attempts.
        const away = error instanceof UnavailableError;
        if (attempt >= this.#settings.maxAttempts && !away) {
          // nack without requeue: the work queue dead-letters it (at-least-once) into <name>.dead.
          this.#options.onError(
            new Error(`command failed ${attempt} attempts; dead-lettered`, { cause: error }),
            'dead-letter',
          );
          return ConsumerStatus.DROP;
        }
        // Stored again (confirmed) in the delay queue before the original is acked. Should this fail, the
        // callback throws and the Consumer nacks with requeue: the same attempt comes back.
        const next = Math.min(attempt, this.#settings.maxAttempts - 1);
        await this.#send(retryQueueName(this.#settings, next), command, { [ATTEMPT_HEADER]: next + 1 });
        return ConsumerStatus.ACK;
      }
    } catch (error) {
      this.#options.onError(error, 'retry');
      throw error;
    } finally {
      this.#held--;
    }
  }

  /** A persistent, mandatory publish to `queue` through the default exchange; resolves on the confirm. */
  #send(queue: string, command: T, headers: Record<string, number> | undefined): Promise<void> {
    const messageId = randomUUID();
    this.#unconfirmed.add(messageId);
    const confirmed = this.#publisher.send(
      { exchange: '', routingKey: queue, durable: true, mandatory: true, messageId, headers },
      command,
    );
    const publish = answered(confirmed, this.#options.publishTimeoutMs, `rabbitmq confirm of ${queue}`)
      .then(async () => {
        // A mandatory message that no queue took is returned (basic.return) and then *acked*, and
        // rabbitmq-client resolves send() on that ack. The return is emitted on a setImmediate scheduled
        // when its frame was parsed, before the ack's: one turn later it has been seen, if there was one.
        await nextTurn();
        if (this.#returned.has(messageId))
          throw new Error(`rabbitmq returned the message: no queue ${queue}`);
        this.#published++;
      })
      .finally(() => {
        this.#unconfirmed.delete(messageId);
        this.#returned.delete(messageId);
        this.#pending.delete(publish);
      });
    this.#pending.add(publish);
    return publish;
  }
}

function attemptOf(headers: Record<string, unknown> | undefined): number {
  const attempt = headers?.[ATTEMPT_HEADER];
  return typeof attempt === 'number' && Number.isInteger(attempt) && attempt >= 1 ? attempt : 1;
}

function answered<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return withTimeout(promise, ms, () => new Error(`${what}: no answer within ${ms} ms`));
}
