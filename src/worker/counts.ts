import type { Logger } from 'pino';
import type { Store } from '../domain/ports.ts';
import type { TouchedParents } from '../domain/types.ts';

/**
 * Keeps chats_count / messages_count equal to the stored rows, at most `intervalMs` behind. Counts are
 * recomputed from the rows (never incremented), so they cannot drift; a start-up repair covers parents
 * whose refresh a crash interrupted.
 */
export class CountsReconciler {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #dirty: TouchedParents = { applicationIds: new Set(), chatIds: new Set() };
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(store: Store, log: Logger, intervalMs: number) {
    this.#store = store;
    this.#log = log;
    this.#intervalMs = intervalMs;
  }

  async start(): Promise<void> {
    const repaired = await this.#store.repairAllCounts();
    if (repaired > 0) this.#log.warn({ repaired }, 'counts repaired at start-up');
    this.#timer = setInterval(() => void this.flush(), this.#intervalMs);
    this.#timer.unref();
  }

  markDirty(touched: TouchedParents): void {
    for (const id of touched.applicationIds) this.#dirty.applicationIds.add(id);
    for (const id of touched.chatIds) this.#dirty.chatIds.add(id);
  }

  async flush(): Promise<void> {
    if (this.#running) await this.#running;
    const dirty = this.#dirty;
    if (dirty.applicationIds.size === 0 && dirty.chatIds.size === 0) return;
    this.#dirty = { applicationIds: new Set(), chatIds: new Set() };
    this.#running = this.#store.refreshCounts(dirty).catch((error: unknown) => {
      this.markDirty(dirty);
      this.#log.error({ err: error }, 'counts refresh failed; will retry');
    });
    await this.#running;
    this.#running = undefined;
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.flush();
  }
}
