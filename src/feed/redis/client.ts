/**
 * The Redis commands the feed uses (PUBLISH, SUBSCRIBE, UNSUBSCRIBE, PING), with node-redis behind them.
 * A connection in subscriber mode cannot run other commands, so there are two: one publishes, a duplicate
 * subscribes. node-redis resubscribes by itself after a reconnection; what was published meanwhile is
 * lost, which `onResubscribed` lets the owner make up for (from the store).
 */
import { createClient } from 'redis';

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
    socket: { reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 2000) },
  });
  const subscriber = publisher.duplicate();
  for (const client of [publisher, subscriber]) client.on('error', options.onError ?? (() => {}));
  await publisher.connect();
  try {
    await subscriber.connect();
  } catch (error) {
    await publisher.close();
    throw error;
  }
  return {
    async publish(channel, message) {
      await publisher.publish(channel, message);
    },
    subscribe: (channel, onMessage) => subscriber.subscribe(channel, (message) => onMessage(message)),
    unsubscribe: (channel) => subscriber.unsubscribe(channel),
    async ping() {
      await publisher.ping();
    },
    async close() {
      await Promise.all([publisher.close(), subscriber.close()]);
    },
    onResubscribed(listener) {
      // connect() above already saw the first 'ready'; every later one follows a reconnection.
      subscriber.on('ready', listener);
    },
  };
}
