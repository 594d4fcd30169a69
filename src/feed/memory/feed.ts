import type { FeedListener, FeedSubscription, MessageFeed } from '../../domain/ports.ts';
import type { FeedEvent } from '../../domain/types.ts';
import { ChatListeners } from '../listeners.ts';

/**
 * The embedded feed: in-process fan-out. `publish` hands each event to every listener of its chat before
 * it returns, so the writer's announcement reaches subscribers before the create's 201 is sent.
 */
export class MemoryFeed implements MessageFeed {
  readonly name = 'memory';
  readonly #listeners: ChatListeners;

  constructor(onListenerError?: (error: unknown) => void) {
    this.#listeners = new ChatListeners(onListenerError);
  }

  async publish(events: readonly FeedEvent[]): Promise<void> {
    for (const event of events) {
      this.#listeners.deliver(ChatListeners.key(event.applicationId, event.message.chatNumber), event);
    }
  }

  async subscribe(
    applicationId: number,
    chatNumber: number,
    listener: FeedListener,
  ): Promise<FeedSubscription> {
    const key = ChatListeners.key(applicationId, chatNumber);
    this.#listeners.add(key, listener);
    return {
      unsubscribe: async () => {
        this.#listeners.remove(key, listener);
      },
    };
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {}
}
