import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnavailableError } from '../domain/errors.ts';
import { MemoryQueue } from '../queue/memory/queue.ts';
import { handOff } from './writes.ts';

describe('handing a create to the write queue', () => {
  it('answers 503 when the queue cannot take it', async () => {
    const queue = new MemoryQueue({ maxDepth: 10 });
    await queue.close();
    await assert.rejects(
      handOff(queue, { kind: 'chat.create', applicationId: 1, number: 1, at: new Date().toISOString() }),
      (error: unknown) =>
        error instanceof UnavailableError && error.status === 503 && /write queue/.test(error.message),
    );
  });
});
