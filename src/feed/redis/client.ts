/**
 * The Redis commands the feed uses (PUBLISH, SUBSCRIBE, UNSUBSCRIBE, PING), with node-redis behind them.
 * A connection in subscriber mode cannot run other commands, so there are two: one publishes, a duplicate
 * subscribes (connected on the first subscription). node-redis resubscribes by itself after a reconnection; what was published meanwhile is
 * lost, which `onResubscribed` lets the owner make up for (from the store).
 */
import { createClient } from 'redis';
import { withCommandTimeout } from '../../sequencer/redis/client.ts';

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

export interface FeedRedisOptions {
  clientName?: string;
  onError?: (error: Error) => void;
}

export async function connectFeedRedis(url: string, options: FeedRedisOptions = {}): Promise<FeedRedis> {
  const publisher = createClient({
    url,
    ...(options.clientName === undefined ? {} : { name: options.clientName }),
    // A live event is worth nothing late: fail the publish (the store has the message) rather than queue it.
    disableOfflineQueue: true,
    // Timed by withCommandTimeout instead (see there): node-redis's own timeout costs a DOMException per command.
    commandOptions: { timeout: 0 },
    socket: { reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 2000) },
  });
  const subscriber = publisher.duplicate();
  for (const client of [publisher, subscriber]) client.on('error', options.onError ?? (() => {}));
  await publisher.connect();
  const resubscribed: (() => void)[] = [];
  // The subscriber connects on the first subscription: a worker only publishes and never needs it.
  let subscriberUp: Promise<void> | undefined;
  const subscriberReady = () => {
    subscriberUp ??= subscriber.connect().then(
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
      const up = await subscriberUp?.then(
        () => true,
        () => false,
      );
      await Promise.all([publisher.close(), up ? subscriber.close() : undefined]);
    },
    onResubscribed(listener) {
      resubscribed.push(listener);
    },
  };
}
