import type { Logger } from 'pino';
import type { Sequencer, WriteQueue } from '../domain/ports.ts';
import type { Metrics } from '../metrics.ts';

/**
 * How old an intent must be before the reaper takes it for abandoned. A create holds its intent from its
 * number to its broker confirm, which times out after 5 s (the RabbitMQ queue's publishTimeoutMs); twice
 * that leaves room for a loaded event loop. Reaping a create that was still in flight only publishes it
 * twice, which the writer makes harmless (it skips a number it has stored).
 */
export const REAP_AFTER_MS = 10_000;

export interface ReaperDeps {
  sequencer: Sequencer;
  queue: WriteQueue;
  metrics: Metrics;
  log: Logger;
  afterMs?: number;
  /** Pause between two looks when nothing was overdue. Default 1 s. */
  intervalMs?: number;
  /** Intents taken per look. Default 500. */
  batch?: number;
}

export interface Reaper {
  stop(): Promise<void>;
}

/**
 * The reaper (worker role): publishes the creates that were numbered but never confirmed by the queue,
 * because their API process died or their publish failed, so that no number is left unused. Then it
 * settles them. Several workers may reap the same intent at once: the writer stores it once.
 */
export function startReaper(deps: ReaperDeps): Reaper {
  const { sequencer, queue, metrics, log } = deps;
  const afterMs = deps.afterMs ?? REAP_AFTER_MS;
  const intervalMs = deps.intervalMs ?? 1_000;
  const batch = deps.batch ?? 500;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();

  /** One look; true when it took a full batch (more may be waiting). */
  async function reap(): Promise<boolean> {
    const overdue = await sequencer.overdue(afterMs, batch);
    if (overdue.length === 0) return false;
    await Promise.all(overdue.map((command) => queue.publish(command)));
    for (const command of overdue) sequencer.settle(command);
    metrics.reapedCreates.inc(overdue.length);
    log.warn(
      { count: overdue.length, afterMs },
      'published creates that were numbered but never confirmed by the queue (their API process died, or their publish failed)',
    );
    return overdue.length === batch;
  }

  function schedule(ms: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      running = reap().then(
        (more) => schedule(more ? 0 : intervalMs),
        (error: unknown) => {
          log.error({ err: error }, 'reaping abandoned creates failed; trying again');
          schedule(intervalMs);
        },
      );
    }, ms);
  }

  schedule(intervalMs);
  log.info({ afterMs, intervalMs }, 'reaper started');
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
