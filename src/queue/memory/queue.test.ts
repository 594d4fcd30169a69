import { queueConformance } from '../conformance.ts';
import { MemoryQueue } from './queue.ts';

// pipeline 1 (the default) hands over one batch at a time; 64 is what src/wiring.ts runs with (a batch
// every tick, however many are still in flight). Both must keep every promise of the port.
for (const pipeline of [1, 64]) {
  queueConformance(`memory (pipeline ${pipeline})`, async () => {
    // A 1 ms retry delay keeps the at-least-once tests quick; the backoff doubling is still exercised.
    const queue = new MemoryQueue({ maxDepth: 100_000, retryDelayMs: 1, pipeline });
    return {
      queue,
      // publish resolves when the writer's handler has committed the command (see MemoryQueue).
      capabilities: { publishWaitsForHandler: true },
      cleanup: () => queue.close(),
    };
  });
}
