/**
 * The reader pool's supervision: searches on a reader that dies fail with 503 rather than hang, and the
 * reader is replaced. (What readers answer is the search conformance suite's job: search.test.ts runs it
 * on reader threads.)
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { pino } from 'pino';
import { eventually } from '../../../test/helpers/server.ts';
import type { SearchQuery } from './queries.ts';
import { ThreadReaders } from './readers.ts';

const silent = pino({ level: 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'search-readers-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const query = (folded: string): SearchQuery => ({ chatId: 1, folded, below: 10, rows: 10, scanRows: 100 });

describe('sqlite search reader threads', () => {
  it('fails the searches of a reader that exits with 503 and starts a new reader', {
    timeout: 20_000,
  }, async () => {
    const script = new URL('./testing/exiting-reader.ts', import.meta.url);
    const readers = new ThreadReaders({ dataDir: dir, synchronous: 'NORMAL' }, 1, silent, script);
    try {
      assert.deepEqual(await readers.run(query('abc')), { rows: [] });
      await assert.rejects(readers.run(query('exit')), { status: 503, code: 'unavailable' });
      const replaced = await eventually(
        () => readers.run(query('abc')).catch(() => undefined),
        10_000,
        'a new reader',
      );
      assert.deepEqual(replaced, { rows: [] });
      await readers.ping();
    } finally {
      await readers.close();
    }
  });

  it('answers 503 and fails its readiness check while no reader can open the database', {
    timeout: 20_000,
  }, async () => {
    const notADirectory = join(dir, 'a-file');
    writeFileSync(notADirectory, '');
    const readers = new ThreadReaders({ dataDir: notADirectory, synchronous: 'NORMAL' }, 2, silent);
    try {
      await eventually(
        () =>
          readers.ping().then(
            () => false,
            (error: unknown) => /no reader thread is running/.test(String(error)),
          ),
        10_000,
        'readiness failing for want of a reader',
      );
      // Whether no reader is running or one is starting (and will fail again), the answer is a 503.
      await assert.rejects(readers.run(query('abc')), { status: 503, code: 'unavailable' });
    } finally {
      await readers.close();
    }
  });
});
