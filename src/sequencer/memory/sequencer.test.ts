import { sequencerConformance } from '../conformance.ts';
import { MemorySequencer } from './sequencer.ts';

sequencerConformance('memory', async (seed) => ({
  sequencer: new MemorySequencer(seed),
  cleanup: async () => {},
}));
