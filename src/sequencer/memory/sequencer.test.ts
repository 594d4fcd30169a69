import { sequencerConformance } from '../conformance.ts';
import { MemorySequencer } from './sequencer.ts';

sequencerConformance(
  'memory',
  async (seed) => ({
    sequencer: new MemorySequencer(seed),
    cleanup: async () => {},
  }),
  {
    keepsIntents:
      'in-process: a create that dies before the queue dies with the whole process, and the restart numbers on from the store',
  },
);
