import type { FeedListener, FeedSubscription, MessageFeed } from '../../domain/ports.ts';
import type { FeedEvent } from '../../domain/types.ts';
import { ChatListeners } from '../listeners.ts';
import { connectFeedRedis, type FeedRedis, type FeedRedisOptions } from './client.ts';

export interface RedisFeedOptions {
  /** Channel prefix: `<prefix><applicationId>:<chatNumber>`, so deployments sharing a Redis stay apart. */
  prefix: string;
  onListenerError?: (error: unknown) => void;
}

/**
 * The distributed feed: Redis pub/sub, one channel per chat. A process subscribes to a chat's channel
 * while at least one of its listeners follows that chat, so 1 000 browsers on one chat cost one channel
 * per API process, and Redis sends each event once to each process.
 */
export class RedisFeed implements MessageFeed {
  readonly name = 'redis pub/sub';
  readonly #redis: FeedRedis;
  readonly #prefix: string;
  readonly #listeners: ChatListeners;
  readonly #subscribed = new Set<string>();
  /** Each channel's last subscription change, which the next one waits for. */
  readonly #pending = new Map<string, Promise<void>>();

  constructor(redis: FeedRedis, options: RedisFeedOptions) {
    this.#redis = redis;
    this.#prefix = options.prefix;
    this.#listeners = new ChatListeners(options.onListenerError);
    redis.onResubscribed(() => this.#listeners.resyncAll());
  }

  async publish(events: readonly FeedEvent[]): Promise<void> {
    // One message per event, in order, on one connection: Redis delivers them to a subscriber in that order.
    await Promise.all(
      events.map((event) =>
        this.#redis.publish(
          this.#channel(event.applicationId, event.message.chatNumber),
          JSON.stringify(event),
        ),
      ),
    );
  }

  async subscribe(
    applicationId: number,
    chatNumber: number,
    listener: FeedListener,
  ): Promise<FeedSubscription> {
    const key = ChatListeners.key(applicationId, chatNumber);
    const channel = this.#channel(applicationId, chatNumber);
    this.#listeners.add(key, listener);
    await this.#reconcile(channel, key).catch((error: unknown) => {
      this.#listeners.remove(key, listener);
      throw error;
    });
    return {
      unsubscribe: async () => {
        if (this.#listeners.remove(key, listener)) await this.#reconcile(channel, key);
      },
    };
  }

  ping(): Promise<void> {
    return this.#redis.ping();
  }

  close(): Promise<void> {
    return this.#redis.close();
  }

  #channel(applicationId: number, chatNumber: number): string {
    return `${this.#prefix}${applicationId}:${chatNumber}`;
  }

  /**
   * Brings the channel's subscription in line with its listeners, one change at a time per channel:
   * listeners come and go while SUBSCRIBE and UNSUBSCRIBE are in flight, and a channel subscribed twice
   * would deliver every event twice.
   */
  #reconcile(channel: string, key: string): Promise<void> {
    const run = async () => {
      const wanted = this.#listeners.has(key);
      if (wanted && !this.#subscribed.has(channel)) {
        await this.#redis.subscribe(channel, (text) =>
          this.#listeners.deliver(key, JSON.parse(text) as FeedEvent),
        );
        this.#subscribed.add(channel);
      } else if (!wanted && this.#subscribed.has(channel)) {
        this.#subscribed.delete(channel);
        await this.#redis.unsubscribe(channel);
      }
    };
    const next = (this.#pending.get(channel) ?? Promise.resolve()).catch(() => {}).then(run);
    this.#pending.set(channel, next);
    const clear = () => {
      if (this.#pending.get(channel) === next) this.#pending.delete(channel);
    };
    next.then(clear, clear);
    return next;
  }
}

export async function openRedisFeed(
  url: string,
  options: RedisFeedOptions & FeedRedisOptions,
): Promise<RedisFeed> {
  return new RedisFeed(await connectFeedRedis(url, options), options);
}
