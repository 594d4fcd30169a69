import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { failInsertsIn } from '../../../test/helpers/sqlite.ts';
import type { MessageCreate } from '../../domain/types.ts';
import { openDatabase } from './database.ts';
import { SqliteStore } from './store.ts';
import { ThreadWriteChannel } from './write-channel.ts';

const at = '2026-01-01T00:00:00.000Z';
const message = (applicationId: number, number: number): MessageCreate => ({
  kind: 'message.create',
  applicationId,
  chatNumber: 1,
  number,
  body: `m${number}`,
  at,
});

describe('sqlite writer thread', () => {
  let dir: string;
  let channel: ThreadWriteChannel;
  let store: SqliteStore;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'write-channel-'));
    const options = { dataDir: dir, synchronous: 'NORMAL' as const };
    channel = new ThreadWriteChannel(options, pino({ level: 'silent' }));
    store = new SqliteStore(openDatabase(options), channel);
  });
  after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('commits nothing sent after a failed batch until the failure was seen, then takes the retry', async () => {
    const app = await store.createApplication({ token: 't', name: 'n', at });
    await store.persistBatch([{ kind: 'chat.create', applicationId: app.id, number: 1, at }]);
    // The database fails the insert of this body (a trigger), as it would fail a batch for any reason.
    failInsertsIn(dir, 'boom');
    // Sent back to back, before any answer: a good batch, one that fails, another write (which ends the
    // thread's group commit, so the failed batch commits alone), and two more good batches.
    const results = await Promise.allSettled([
      store.persistBatch([message(app.id, 1)]),
      store.persistBatch([{ ...message(app.id, 2), body: 'boom' }]),
      store.createApplication({ token: 'between', name: 'n', at }),
      store.persistBatch([message(app.id, 3)]),
      store.persistBatch([message(app.id, 4)]),
    ]);
    assert.equal(results[1]!.status, 'rejected');
    assert.equal(results[2]!.status, 'fulfilled');
    assert.equal(results[3]!.status, 'rejected', 'a batch sent after the failed one is refused');
    assert.equal(results[4]!.status, 'rejected');
    const chat = (await store.findChat(app.id, 1))!;
    const stored = (await store.listMessages(chat, { limit: 10 })).items.map((m) => m.number);
    // Batch 1 may have shared the failed transaction (group commit) or committed before it; 3 and 4 never.
    assert.ok(stored.length === 0 || (stored.length === 1 && stored[0] === 1), `stored: ${stored}`);

    // What is sent after the failure was seen is the retry, and it commits.
    await store.persistBatch([message(app.id, 1), message(app.id, 3), message(app.id, 4)]);
    const after = (await store.listMessages(chat, { limit: 10 })).items.map((m) => m.number);
    assert.deepEqual(after, [1, 3, 4]);
  });

  it('answers writes other than batches while serving them in order', async () => {
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.createApplication({ token: `tok-${i}`, name: `n${i}`, at })),
    );
    assert.deepEqual(
      created.map((a) => a.token),
      Array.from({ length: 20 }, (_, i) => `tok-${i}`),
    );
    await channel.ping();
  });
});
