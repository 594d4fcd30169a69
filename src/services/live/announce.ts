import type { Logger } from 'pino';
import type { MessageFeed } from '../../domain/ports.ts';
import type { FeedEvent } from '../../domain/types.ts';

/** Hands stored messages to live subscribers. */
export type Announce = (events: readonly FeedEvent[]) => void;

/**
 * Announcing is best effort and never holds up a write: the message is already stored, and subscribers
 * that miss an event recover it from the store (the next event shows them the gap; a reconnected feed
 * tells them to resync). So a failed publish is logged, not retried, and nothing waits for it. Events are
 * sent in number order per chat, the order subscribers deliver them in.
 */
export function announcer(feed: MessageFeed, log: Logger): Announce {
  return (events) => {
    if (events.length === 0) return;
    const ordered = [...events].sort(
      (a, b) =>
        a.applicationId - b.applicationId ||
        a.message.chatNumber - b.message.chatNumber ||
        a.message.number - b.message.number,
    );
    feed.publish(ordered).catch((error: unknown) => log.warn({ err: error }, 'live feed publish failed'));
  };
}
