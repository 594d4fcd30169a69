/**
 * The reindex command against a real MariaDB (a scratch database) and OpenSearch (an alias of its own per
 * test): whatever the index held before, afterwards a search answers exactly what the store holds, the
 * alias points at the new index only, and writes made while the copy ran are not lost.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { Client } from '@opensearch-project/opensearch';
import { pino } from 'pino';
import { ScratchDatabases } from '../../../test/helpers/mysql.ts';
import { service } from '../../../test/helpers/services.ts';
import type { Chat, Message } from '../../domain/types.ts';
import { type MysqlStore, openMysqlStore } from '../../store/mysql/store.ts';
import { reindex } from './reindex.ts';
import { OpenSearchIndex } from './search.ts';

const mysql = service('mysql');
const search = service('search');
const skip = mysql.skip || search.skip;

const MAIN = new URL('../../main.ts', import.meta.url).pathname;
const REFRESH = '50ms';
const log = pino({ level: 'silent' });
const at = (seconds: number) => new Date(Date.UTC(2024, 0, 1) + seconds * 1000).toISOString();

describe('reindex', { skip }, () => {
  const scratch = new ScratchDatabases(mysql.url!);
  let url: string;
  let store: MysqlStore;
  let alias: string;
  let index: OpenSearchIndex;
  let admin: Client;
  let chats: Chat[];

  after(() => scratch.close());

  beforeEach(async () => {
    url = await scratch.migrated();
    store = await openMysqlStore(url, { connectionLimit: 4 });
    alias = `reindex-test-${randomBytes(4).toString('hex')}-messages`;
    index = new OpenSearchIndex(search.url!, { index: alias, refreshInterval: REFRESH });
    admin = new Client({ node: search.url! });
    // Two applications, three chats, 130 messages (bodies tell where they belong).
    chats = [];
    for (const token of ['first', 'second']) {
      const app = await store.createApplication({ token, name: token, at: at(0) });
      const numbers = token === 'first' ? [1, 2] : [1];
      await store.persistBatch(
        numbers.map((number) => ({ kind: 'chat.create', applicationId: app.id, number, at: at(0) })),
      );
      for (const number of numbers) {
        await store.persistBatch(
          Array.from({ length: token === 'first' ? 50 : 30 }, (_, i) => ({
            kind: 'message.create' as const,
            applicationId: app.id,
            chatNumber: number,
            number: i + 1,
            body: `${token} chat ${number} message ${i + 1}`,
            at: at(i + 1),
          })),
        );
        chats.push((await store.findChat(app.id, number))!);
      }
    }
  });

  afterEach(async () => {
    const targets = await admin.indices.getAlias({ name: alias }).then(
      (response) => Object.keys(response.body as Record<string, unknown>),
      () => [],
    );
    if (targets.length > 0) await admin.indices.delete({ index: targets });
    await admin.close();
    await index.close();
    await store.close();
    scratch.drop(url);
  });

  /** Every message of a chat, from the store and from the search index (empty query: all), newest first. */
  async function both(chat: Chat): Promise<{ stored: Message[]; found: Message[] }> {
    const stored = (await store.listMessages(chat, { limit: 1000 })).items.reverse();
    const found = (await index.search(chat, '', { limit: 1000 })).items;
    const plain = (ms: Message[]) =>
      ms.map(({ chatNumber, number, body, createdAt, updatedAt }) => ({
        chatNumber,
        number,
        body,
        createdAt,
        updatedAt,
      }));
    return { stored: plain(stored), found: plain(found) };
  }

  async function assertIndexMatchesStore(): Promise<void> {
    for (const chat of chats) {
      const { stored, found } = await both(chat);
      assert.equal(stored.length > 0, true);
      assert.deepEqual(found, stored, `chat ${chat.id}`);
    }
    const targets = Object.keys(
      (await admin.indices.getAlias({ name: alias })).body as Record<string, unknown>,
    );
    assert.equal(targets.length, 1, 'the alias names one index');
  }

  it('replaces a wrong and incomplete index: search answers what the store holds, the old index is gone', async () => {
    await index.ensureIndex();
    const [chat] = chats as [Chat];
    // Wrong text for one message, a message the store never had, and nothing at all for the other chats.
    const result = await index.indexMessages(
      [
        { chat, number: 1, body: 'wrong text', createdAt: at(1), updatedAt: at(9999) },
        { chat, number: 999, body: 'phantom', createdAt: at(1), updatedAt: at(1) },
      ],
      { refresh: 'wait_for' },
    );
    assert.deepEqual(result.failures, []);
    const before = Object.keys(
      (await admin.indices.getAlias({ name: alias })).body as Record<string, unknown>,
    );

    const report = await reindex({
      url: search.url!,
      alias,
      messages: store,
      log,
      batchSize: 17,
      refreshInterval: REFRESH,
    });

    assert.equal(report.copied, 130);
    assert.deepEqual(report.removed, before);
    await assertIndexMatchesStore();
    const targets = Object.keys(
      (await admin.indices.getAlias({ name: alias })).body as Record<string, unknown>,
    );
    assert.deepEqual(targets, [report.index]);
    assert.equal(
      (await admin.indices.exists({ index: before[0]! })).body,
      false,
      'the old index was deleted',
    );
  });

  it('rebuilds a deleted index (no alias at all)', async () => {
    const report = await reindex({
      url: search.url!,
      alias,
      messages: store,
      log,
      batchSize: 50,
      refreshInterval: REFRESH,
    });
    assert.deepEqual(report.removed, []);
    await assertIndexMatchesStore();
  });

  it('keeps what the indexer wrote during the copy: an edit and a create end up in the new index', async () => {
    await index.ensureIndex();
    const [chat] = chats as [Chat];
    let wrote = false;
    const report = await reindex({
      url: search.url!,
      alias,
      messages: store,
      log,
      batchSize: 20,
      refreshInterval: REFRESH,
      // After the first batch (which copied message 1 of the first chat), the API edits message 1 and the
      // worker stores message 51; the indexer writes both through the alias, i.e. into the old index.
      async onBatch() {
        if (wrote) return;
        wrote = true;
        const now = new Date().toISOString();
        const edited = (await store.editMessage(chat, 1, 'edited during the reindex', now))!;
        await store.persistBatch([
          {
            kind: 'message.create',
            applicationId: chat.applicationId,
            chatNumber: chat.number,
            number: 51,
            body: 'created during the reindex',
            at: now,
          },
        ]);
        const written = await index.indexMessages([
          { chat, number: 1, body: edited.body, createdAt: edited.createdAt, updatedAt: edited.updatedAt },
          { chat, number: 51, body: 'created during the reindex', createdAt: now, updatedAt: now },
        ]);
        assert.deepEqual(written.failures, []);
      },
    });
    assert.ok(report.caughtUp >= 2, `caught up ${report.caughtUp}`);
    await assertIndexMatchesStore();
    const { found } = await both(chat);
    assert.equal(found.find((m) => m.number === 1)?.body, 'edited during the reindex');
    assert.equal(found[0]?.number, 51);
  });

  it('as a command: `node src/main.ts reindex` exits 0 when done, 1 with a message when it cannot', async () => {
    const name = alias.slice(0, -'-messages'.length);
    const env = {
      PATH: process.env.PATH,
      DEPLOYMENT_NAME: name,
      MYSQL_URL: url,
      REDIS_URL: 'redis://127.0.0.1:1',
      AMQP_URL: 'amqp://127.0.0.1:1',
      SEARCH_URL: search.url!,
    };
    const done = await run(env);
    assert.equal(done.code, 0, done.output);
    assert.match(done.output, /reindex: done/);
    await assertIndexMatchesStore();

    const failed = await run({ ...env, SEARCH_URL: 'http://127.0.0.1:1' });
    assert.equal(failed.code, 1, failed.output);
    assert.match(failed.output, /reindex failed before switching the alias \(nothing changed\)/);
  });
});

function run(env: Record<string, string | undefined>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MAIN, 'reindex'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.once('exit', (code) => resolve({ code, output }));
  });
}
