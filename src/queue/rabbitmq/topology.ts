/**
 * The broker-side layout of the RabbitMQ write queue: names, arguments and retry delays. Pure functions,
 * so the adapter, its tests and an operator's script all derive the same queues from the same settings.
 *
 *   publish ──► <name>  (work queue) ──► consumer ──ack──► done
 *                  ▲         │ handler failed, attempt a < maxAttempts: republish to
 *                  │         │   <name>.retry.<delay>ms with header chat-attempt = a + 1, then ack
 *                  │         ▼
 *                  └── <name>.retry.<delay>ms   (x-message-ttl = delay; expired messages dead-letter back)
 *
 *   <name> ──nack(requeue=false) / x-delivery-limit exceeded──► <name>.dead  (kept for an operator)
 *
 * Every queue is a quorum queue. Why quorum rather than classic durable, on RabbitMQ 3.10:
 * - Dead-lettering (the retry queue's expiry back into the work queue, and the work queue into the dead
 *   queue) is at-least-once only for quorum queues (`x-dead-letter-strategy: at-least-once`, new in 3.10):
 *   the source keeps the message until the target queue has it. A classic queue dead-letters at-most-once,
 *   so a broker crash at the wrong moment would drop a command that was already confirmed to the API.
 * - `x-delivery-limit` bounds redeliveries of a message whose handling kills the consumer process
 *   (kill -9, OOM): such a message never reaches our failure path, and with a classic queue it would be
 *   redelivered to a crash-looping writer forever. A quorum queue counts returns and dead-letters it.
 * - Quorum queues are RabbitMQ's replicated durable queue type (classic mirroring is deprecated), so the
 *   same topology keeps confirmed commands when the broker becomes a cluster. On one node the cost is
 *   small: a quorum queue confirms after its write-ahead log is fsynced, as a classic queue does for
 *   persistent messages.
 * 3.10 quorum queues support what this layout needs: queue TTL, dead-letter exchanges, delivery limits.
 *
 * A retry queue is named after its delay, not after the attempt: every message in it has the same TTL,
 * so expiry happens in FIFO order (no message waits behind one with a longer TTL), and changing the delays
 * in the configuration declares new queues instead of failing on the old ones' arguments (RabbitMQ refuses
 * to redeclare a queue with different arguments). Old retry queues still dead-letter into the work queue.
 */
import type { Cmd, MethodParams } from 'rabbitmq-client';

/** Header carrying the attempt number of the delivery (1 when absent: first delivery). */
export const ATTEMPT_HEADER = 'chat-attempt';

export interface TopologySettings {
  /** Work queue name; the retry and dead-letter queues are derived from it. */
  queue: string;
  /** Handler calls a command gets before it is moved to the dead-letter queue. */
  maxAttempts: number;
  /** Delay before the 2nd attempt; it doubles for each further attempt, up to `maxRetryDelayMs`. */
  retryDelayMs: number;
  maxRetryDelayMs: number;
  /** Returns to the work queue (consumer crash, channel loss, nack) before the broker dead-letters. */
  redeliveryLimit: number;
}

type QueueDeclare = MethodParams[Cmd.QueueDeclare];

export function deadQueueName(settings: TopologySettings): string {
  return `${settings.queue}.dead`;
}

/** Delay before attempt `attempt + 1`, after attempt `attempt` failed. */
function retryDelay(settings: TopologySettings, attempt: number): number {
  return Math.min(settings.retryDelayMs * 2 ** (attempt - 1), settings.maxRetryDelayMs);
}

export function retryQueueName(settings: TopologySettings, attempt: number): string {
  return retryQueueOf(settings, retryDelay(settings, attempt));
}

function retryQueueOf(settings: TopologySettings, delayMs: number): string {
  return `${settings.queue}.retry.${delayMs}ms`;
}

/** The distinct retry queues of these settings (attempts sharing a capped delay share a queue). */
export function retryQueueNames(settings: TopologySettings): string[] {
  const names = new Set<string>();
  for (let attempt = 1; attempt < settings.maxAttempts; attempt++)
    names.add(retryQueueName(settings, attempt));
  return [...names];
}

/** Every queue of the topology: what a test deletes afterwards. */
export function topologyQueueNames(settings: TopologySettings): string[] {
  return [settings.queue, ...retryQueueNames(settings), deadQueueName(settings)];
}

const quorum = { 'x-queue-type': 'quorum' } as const;
/** At-least-once dead-lettering needs reject-publish overflow (no max length is set, so it never rejects). */
const safeDeadLettering = {
  'x-dead-letter-strategy': 'at-least-once',
  'x-overflow': 'reject-publish',
} as const;

export function workQueueDeclaration(settings: TopologySettings): QueueDeclare {
  return {
    queue: settings.queue,
    durable: true,
    arguments: {
      ...quorum,
      ...safeDeadLettering,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': deadQueueName(settings),
      'x-delivery-limit': settings.redeliveryLimit,
    },
  };
}

/** Declarations of the whole topology; the dead-letter and retry targets come before their sources. */
export function topologyDeclarations(settings: TopologySettings): QueueDeclare[] {
  const delays = new Set<number>();
  for (let attempt = 1; attempt < settings.maxAttempts; attempt++) delays.add(retryDelay(settings, attempt));
  return [
    { queue: deadQueueName(settings), durable: true, arguments: { ...quorum } },
    workQueueDeclaration(settings),
    ...[...delays].map((delay) => ({
      queue: retryQueueOf(settings, delay),
      durable: true,
      arguments: {
        ...quorum,
        ...safeDeadLettering,
        'x-message-ttl': delay,
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': settings.queue,
      },
    })),
  ];
}
