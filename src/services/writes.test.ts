import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CreateOutcomeUnknownError, UnavailableError } from '../domain/errors.ts';
import type { WriteQueue } from '../domain/ports.ts';
import type { ChatCreate, WriteCommand } from '../domain/types.ts';
import { MemoryQueue } from '../queue/memory/queue.ts';
import { MemorySequencer } from '../sequencer/memory/sequencer.ts';
import { numberAndHandOff } from './writes.ts';

/** The in-process sequencer over an empty store, recording the intents it was given and what was settled. */
function recordingSequencer() {
  const sequencer = new MemorySequencer({ maxChatNumber: async () => 0, maxMessageNumber: async () => 0 });
  const intents: ChatCreate[] = [];
  const settled: WriteCommand[] = [];
  return {
    intents,
    settled,
    sequencer: Object.assign(sequencer, {
      settle: (command: WriteCommand) => void settled.push(command),
    }),
    take: (intent: ChatCreate) => {
      intents.push(intent);
      return sequencer.nextChatNumber(1, intent);
    },
  };
}

const at = '2026-01-01T00:00:00.000Z';
const draft = (number: number) => ({
  view: { number },
  command: { kind: 'chat.create', applicationId: 1, number, at } as ChatCreate,
});

describe('numbering a create and handing it to the write queue', () => {
  it('keeps the command as the intent (without a number), publishes it numbered, then settles it', async () => {
    const queue = new MemoryQueue<WriteCommand>({ maxDepth: 10 });
    const published: WriteCommand[] = [];
    queue.consume(async (batch) => void published.push(...batch), { maxBatch: 10 });
    const { sequencer, take, intents, settled } = recordingSequencer();
    const view = await numberAndHandOff({ sequencer, queue }, take, draft, () => undefined);
    assert.deepEqual(view, { number: 1 });
    assert.deepEqual(intents, [draft(0).command]);
    assert.deepEqual(published, [draft(1).command]);
    assert.deepEqual(settled, [draft(1).command]);
    await queue.close();
  });

  it('answers 503 before taking a number when the queue cannot take more', async () => {
    const queue = new MemoryQueue<WriteCommand>({ maxDepth: 10 });
    await queue.close();
    const { sequencer, take, intents } = recordingSequencer();
    await assert.rejects(
      numberAndHandOff({ sequencer, queue }, take, draft, () => undefined),
      (error: unknown) => error instanceof UnavailableError && /write queue/.test(error.message),
    );
    assert.deepEqual(intents, [], 'no number taken, so none is left unused');
  });

  it('answers 503 and leaves the intent unsettled (for the reaper) when the publish fails', async () => {
    // A broker that takes the connection but loses the confirm: accepting, then the publish fails.
    const queue: WriteQueue = {
      name: 'losing confirms',
      publish: () => Promise.reject(new Error('confirm timed out')),
      consume: () => {},
      depth: () => 0,
      accepting: () => true,
      ping: async () => {},
      close: async () => {},
    };
    const { sequencer, take, intents, settled } = recordingSequencer();
    await assert.rejects(
      numberAndHandOff({ sequencer, queue }, take, draft, () => undefined),
      (error: unknown) =>
        error instanceof CreateOutcomeUnknownError &&
        error.status === 503 &&
        // The queue's own words go to the log (cause), not to the client.
        !/confirm timed out/.test(error.message) &&
        /confirm timed out/.test(String((error.cause as Error | undefined)?.message)),
    );
    assert.equal(intents.length, 1);
    assert.deepEqual(settled, []);
  });
});
