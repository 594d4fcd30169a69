/**
 * The Redis commands the feed uses (PUBLISH, SUBSCRIBE, UNSUBSCRIBE, PING), with node-redis behind them.
 * A connection in subscriber mode cannot run other commands, so there are two: one publishes, the other
 * subscribes (connected on the first subscription). node-redis resubscribes by itself after a
 * reconnection; what was published meanwhile is lost, which `onResubscribed` lets the owner make up for
 * (from the store).
 */
import {
  createNodeRedisClient,
  type NodeRedisClientOptions,
  withCommandTimeout,
} from '../../redis/client.ts';

const COMMAND_TIMEOUT_MS = 5_000;
const timed = <T>(command: () => Promise<T>) => withCommandTimeout(command, COMMAND_TIMEOUT_MS);

export interface FeedRedis {
  publish(channel: string, message: string): Promise<void>;
  /** Resolves once Redis confirmed the subscription. */
  subscribe(channel: string, onMessage: (message: string) => void): Promise<void>;
  unsubscribe(channel: string): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The subscriber connection came back after a loss: messages published in between were missed. */
  onResubscribed(listener: () => void): void;
}

export type FeedRedisOptions = NodeRedisClientOptions;

export async function connectFeedRedis(url: string, options: FeedRedisOptions = {}): Promise<FeedRedis> {
  // Without an offline queue a live event is dropped while Redis is away rather than sent late: the store
  // has the message, and a stream that resubscribes makes up for what it missed (onResubscribed).
  const publishing = createNodeRedisClient(url, options);
  const subscribing = createNodeRedisClient(url, options);
  const { client: publisher } = publishing;
  const { client: subscriber } = subscribing;
  await publishing.connect();
  const resubscribed: (() => void)[] = [];
  // The subscriber connects on the first subscription: a worker only publishes and never needs it. A
  // first connection that fails (bounded, see createNodeRedisClient) fails that subscription; the next
  // one tries again.
  let subscriberUp: Promise<void> | undefined;
  const subscriberReady = () => {
    subscriberUp ??= subscribing.connect().then(
      () => {
        // connect() saw the first 'ready'; every later one follows a reconnection.
        subscriber.on('ready', () => {
          for (const listener of resubscribed) listener();
        });
      },
      (error: unknown) => {
        subscriberUp = undefined;
        throw error;
      },
    );
    return subscriberUp;
  };
  return {
    async publish(channel, message) {
      await timed(() => publisher.publish(channel, message));
    },
    async subscribe(channel, onMessage) {
      await subscriberReady();
      await timed(() => subscriber.subscribe(channel, (message) => onMessage(message)));
    },
    unsubscribe: (channel) => timed(() => subscriber.unsubscribe(channel)),
    async ping() {
      await timed(() => publisher.ping());
    },
    async close() {
      // Closing also ends a first connection still being attempted (its subscription then fails).
      await Promise.all(
        [publisher, subscriber].map((client) => (client.isOpen ? client.close() : undefined)),
      );
    },
    onResubscribed(listener) {
      resubscribed.push(listener);
    },
  };
}
