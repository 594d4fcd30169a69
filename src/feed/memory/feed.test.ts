import { feedConformance } from '../conformance.ts';
import { MemoryFeed } from './feed.ts';

feedConformance('memory', async () => {
  const feed = new MemoryFeed();
  return { feed, cleanup: () => feed.close() };
});
