import type { FeedListener } from '../domain/ports.ts';
import type { FeedEvent } from '../domain/types.ts';

/**
 * Listeners per chat, shared by the feed adapters. A listener that throws must not keep the event from
 * the others (one broken stream cannot starve a chat's other subscribers), hence the catch per call.
 */
export class ChatListeners {
  readonly #byChat = new Map<string, Set<FeedListener>>();
  readonly #onError: (error: unknown) => void;

  constructor(onError: (error: unknown) => void = () => {}) {
    this.#onError = onError;
  }

  static key(applicationId: number, chatNumber: number): string {
    return `${applicationId}:${chatNumber}`;
  }

  add(key: string, listener: FeedListener): void {
    const set = this.#byChat.get(key);
    if (set) set.add(listener);
    else this.#byChat.set(key, new Set([listener]));
  }

  /** Removes a listener; true when it was the chat's last. */
  remove(key: string, listener: FeedListener): boolean {
    const set = this.#byChat.get(key);
    if (!set?.delete(listener) || set.size > 0) return false;
    this.#byChat.delete(key);
    return true;
  }

  has(key: string): boolean {
    return this.#byChat.has(key);
  }

  deliver(key: string, event: FeedEvent): void {
    for (const listener of this.#byChat.get(key) ?? []) this.#call(() => listener.event(event));
  }

  resyncAll(): void {
    for (const set of this.#byChat.values()) for (const listener of set) this.#call(() => listener.resync());
  }

  #call(run: () => void): void {
    try {
      run();
    } catch (error) {
      this.#onError(error);
    }
  }
}
