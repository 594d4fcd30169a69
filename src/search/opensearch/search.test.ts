import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Client } from '@opensearch-project/opensearch';
import { service } from '../../../test/helpers/services.ts';
import { UnavailableError } from '../../domain/errors.ts';
import type { SearchPage } from '../../domain/ports.ts';
import type { Chat, IndexDoc, Message } from '../../domain/types.ts';
import { type IndexedMessage, searchConformance } from '../conformance.ts';
import { foldCase } from '../fold.ts';
import { concreteIndexName } from './mapping.ts';
import { NUL_STAND_IN, OpenSearchIndex, openOpenSearchIndex, versionOf } from './search.ts';

const { url, skip } = service('search');

// Two chats of one application and one of another with the same chat number as the first. The index keys
// on the internal chat id, so the third differs from the first only by id.
const CHATS: Chat[] = [
  { id: 11, applicationId: 1, number: 1, messagesCount: 0, createdAt: '', updatedAt: '' },
  { id: 12, applicationId: 1, number: 2, messagesCount: 0, createdAt: '', updatedAt: '' },
  { id: 21, applicationId: 2, number: 1, messagesCount: 0, createdAt: '', updatedAt: '' },
];
const CREATED = '2024-01-01T00:00:00.000Z';
// A write with refresh 'wait_for' waits for the next scheduled refresh: 1 s by default, per write.
const REFRESH = '50ms';

/** A fresh alias (and index behind it) per test, so tests neither see nor wait for each other's data. */
function uniqueAlias(): string {
  return `chat-messages-test-${process.pid}-${randomBytes(4).toString('hex')}`;
}

async function dropIndex(alias: string): Promise<void> {
  const admin = new Client({ node: url! });
  try {
    await admin.indices.delete({ index: concreteIndexName(alias), ignore_unavailable: true });
  } finally {
    await admin.close();
  }
}

function docs(chat: Chat, messages: IndexedMessage[], updatedAt = CREATED): IndexDoc[] {
  return messages.map((m) => ({ chat, number: m.number, body: m.body, createdAt: CREATED, updatedAt }));
}

async function indexAll(search: OpenSearchIndex, batch: IndexDoc[]): Promise<void> {
  const result = await search.indexMessages(batch, { refresh: 'wait_for' });
  assert.deepEqual(result.failures, []);
}

async function searchAll(search: OpenSearchIndex, chat: Chat, query: string, limit = 100): Promise<number[]> {
  const numbers: number[] = [];
  let page: SearchPage | undefined = { limit };
  for (let requests = 0; page; requests++) {
    assert.ok(requests < 1000, 'paging ends');
    const result: { items: Message[]; next?: SearchPage } = await search.search(chat, query, page);
    numbers.push(...result.items.map((m) => m.number));
    page = result.next;
  }
  return numbers;
}

describe('opensearch search', { skip }, () => {
  // Each edit gets a later updatedAt, as the API's edits do: the index refuses an older one (external
  // versioning), so the fixture must not reuse the creation time.
  let clock = Date.parse(CREATED);

  searchConformance('opensearch', async () => {
    const alias = uniqueAlias();
    const search = openOpenSearchIndex(url!, { index: alias, refreshInterval: REFRESH });
    await search.ensureIndex();
    return {
      search,
      chats: CHATS,
      async index(chat, messages) {
        await indexAll(search, docs(chat, messages));
      },
      async edit(chat, number, body) {
        clock += 1000;
        await indexAll(search, [
          { chat, number, body, createdAt: CREATED, updatedAt: new Date(clock).toISOString() },
        ]);
      },
      async cleanup() {
        await search.close();
        await dropIndex(alias);
      },
    };
  });

  describe('opensearch specifics', () => {
    let alias: string;
    let search: OpenSearchIndex;
    const chat = CHATS[0]!;

    beforeEach(async () => {
      alias = uniqueAlias();
      search = new OpenSearchIndex(url!, { index: alias, refreshInterval: REFRESH });
      await search.ensureIndex();
    });

    afterEach(async () => {
      await search.close();
      await dropIndex(alias);
    });

    it('ensureIndex is idempotent, also when several run at once, and points the alias at -v<INDEX_VERSION>', async () => {
      const others = Array.from({ length: 3 }, () => new OpenSearchIndex(url!, { index: alias }));
      await Promise.all([search.ensureIndex(), ...others.map((o) => o.ensureIndex())]);
      await Promise.all(others.map((o) => o.close()));
      const admin = new Client({ node: url! });
      try {
        const aliases = (await admin.indices.getAlias({ name: alias })).body as Record<string, unknown>;
        assert.deepEqual(Object.keys(aliases), [concreteIndexName(alias)]);
      } finally {
        await admin.close();
      }
    });

    it('ensureIndex gives an existing index the configured refresh interval', async () => {
      const reconfigured = new OpenSearchIndex(url!, { index: alias, refreshInterval: '750ms' });
      const admin = new Client({ node: url! });
      try {
        await reconfigured.ensureIndex();
        const settings = (await admin.indices.getSettings({ index: alias })).body as Record<
          string,
          { settings: { index: { refresh_interval?: string } } }
        >;
        assert.equal(settings[concreteIndexName(alias)]?.settings.index.refresh_interval, '750ms');
      } finally {
        await reconfigured.close();
        await admin.close();
      }
    });

    it('returns created_at and updated_at byte-identical, sub-millisecond digits included', async () => {
      const createdAt = '2024-02-29T23:59:59.123456Z';
      const updatedAt = '2024-03-01T00:00:00.000001Z';
      await indexAll(search, [{ chat, number: 1, body: 'stamp', createdAt, updatedAt }]);
      const [message] = (await search.search(chat, 'stamp', { limit: 1 })).items;
      assert.deepEqual(message, { chatNumber: chat.number, number: 1, body: 'stamp', createdAt, updatedAt });
    });

    it('keeps the newest edit when an older event arrives late (external version from updatedAt)', async () => {
      const at = (s: number) => new Date(Date.parse(CREATED) + s * 1000).toISOString();
      const doc = (body: string, updatedAt: string): IndexDoc => ({
        chat,
        number: 1,
        body,
        createdAt: CREATED,
        updatedAt,
      });
      await indexAll(search, [doc('original text', at(0))]);
      await indexAll(search, [doc('second edit', at(2))]);
      // The first edit and a redelivered create arrive after the second edit: both are refused.
      const late = await search.indexMessages([doc('first edit', at(1)), doc('original text', at(0))], {
        refresh: 'wait_for',
      });
      assert.deepEqual(late, { failures: [], superseded: 2 });
      // Redelivering the current event is an idempotent overwrite.
      assert.deepEqual(await search.indexMessages([doc('second edit', at(2))], { refresh: 'wait_for' }), {
        failures: [],
        superseded: 0,
      });
      assert.deepEqual(await searchAll(search, chat, 'edit'), [1]);
      assert.deepEqual(
        (await search.search(chat, 'edit', { limit: 5 })).items.map((m) => m.body),
        ['second edit'],
      );
      assert.deepEqual(await searchAll(search, chat, 'original'), []);
      assert.deepEqual(await searchAll(search, chat, 'first'), []);
      // Sub-millisecond digits order edits within one millisecond.
      assert.ok(versionOf('2024-01-01T00:00:00.000002Z')! > versionOf('2024-01-01T00:00:00.000001Z')!);
      assert.equal(versionOf('2024-01-01T00:00:00Z'), versionOf('2024-01-01T00:00:00.000000Z'));
    });

    it('reports per-item failures and keeps the rest of the batch', async () => {
      const result = await search.indexMessages(
        [
          { chat, number: 1, body: 'good one', createdAt: CREATED, updatedAt: CREATED },
          { chat, number: 2, body: 'bad stamp', createdAt: 'yesterday', updatedAt: CREATED },
          { chat, number: 3, body: 'bad version', createdAt: CREATED, updatedAt: 'never' },
        ],
        { refresh: 'wait_for' },
      );
      assert.deepEqual(
        result.failures.map((f) => ({ number: f.doc.number, retryable: f.retryable, type: f.type })),
        [
          { number: 3, retryable: false, type: 'invalid_updated_at' },
          { number: 2, retryable: false, type: 'mapper_parsing_exception' },
        ],
      );
      assert.deepEqual(await searchAll(search, chat, ' '), [1]);
    });

    it('reports a closed or write-blocked index as retryable: a state of the index, not of the documents', async () => {
      const admin = new Client({ node: url! });
      try {
        const index = concreteIndexName(alias);
        await admin.indices.putSettings({ index, body: { 'index.blocks.write': true } });
        const blocked = await search.indexMessages(docs(chat, [{ number: 1, body: 'x' }]));
        await admin.indices.putSettings({ index, body: { 'index.blocks.write': false } });
        await admin.indices.close({ index });
        const closed = await search.indexMessages(docs(chat, [{ number: 2, body: 'y' }]));
        await admin.indices.open({ index, wait_for_active_shards: '1' });
        assert.deepEqual(
          [...blocked.failures, ...closed.failures].map((f) => [f.doc.number, f.type, f.retryable]),
          [
            [1, 'cluster_block_exception', true],
            [2, 'index_closed_exception', true],
          ],
        );
      } finally {
        await admin.close();
      }
    });

    it('refuses to write without the alias instead of auto-creating a dynamically mapped index', async () => {
      const stray = new OpenSearchIndex(url!, { index: uniqueAlias() });
      try {
        const result = await stray.indexMessages(docs(chat, [{ number: 1, body: 'x' }]));
        assert.equal(result.failures.length, 1);
        assert.equal(result.failures[0]!.type, 'index_not_found_exception');
        assert.equal(result.failures[0]!.retryable, true);
        // Searching before the index exists is "not yet", not a server error.
        await assert.rejects(stray.search(chat, 'x', { limit: 1 }), UnavailableError);
      } finally {
        await stray.close();
      }
    });

    it('answers queries exactly around NUL, backslash and the NUL stand-in (checked by the adapter)', async () => {
      const bodies = [
        'a\0after', // 1: NUL as second character (the 2.19 tokenizer would stop there)
        'x\0\0after', // 2: two NULs
        '\0after', // 3: leading NUL
        'one\0two', // 4
        `stand${NUL_STAND_IN}in`, // 5: the private-use stand-in itself
        'back\\slash', // 6
        'k\\\\s two', // 7: two backslashes
        'plain after', // 8
        '\0\0\0', // 9
        '*?\\', // 10
      ];
      const messages = bodies.map((body, i) => ({ number: i + 1, body }));
      await indexAll(search, docs(chat, messages));
      const queries = ['after', 'a', 'two', 'e\0t', '\0', '\0\0', '\0\0\0', 'x\0', 'd\0i', NUL_STAND_IN];
      queries.push(`d${NUL_STAND_IN}i`, '\\', 'k\\', 'k\\s', '\\\\', 'k\\\\s', '\\s', '?\\', '*?', '\\?');
      for (const query of queries) {
        const q = foldCase(query);
        const expected = messages
          .filter((m) => foldCase(m.body).includes(q))
          .map((m) => m.number)
          .reverse();
        for (const limit of [1, 3, 100])
          assert.deepEqual(await searchAll(search, chat, query, limit), expected, JSON.stringify(query));
      }
    });

    it('answers long queries exactly (beyond the wildcard automaton limit), up to 1024 code points', async () => {
      const shapes = ['x', 'ab', '😀', 'a😀', 'Σσ', '中文'];
      const messages = shapes.map((shape, i) => ({
        number: i + 1,
        body: `pre ${shape.repeat(1100)} post`,
      }));
      messages.push({ number: 7, body: 'x'.repeat(1023) });
      await indexAll(search, docs(chat, messages));
      for (const shape of shapes) {
        const query = [...shape.repeat(1024)].slice(0, 1024).join('');
        const q = foldCase(query);
        const expected = messages
          .filter((m) => foldCase(m.body).includes(q))
          .map((m) => m.number)
          .reverse();
        assert.ok(expected.length > 0);
        assert.deepEqual(await searchAll(search, chat, query, 1), expected, shape);
      }
      // Message 7 is a candidate for the 128-character piece but not a match: a short page, then the end.
      assert.deepEqual(await searchAll(search, chat, `${'x'.repeat(1024)}!`), []);
    });

    it('indexes and finds bodies of 64 KiB (no doc-values size limit on the folded field)', async () => {
      const body = `${'é'.repeat(32_000)}needle`;
      await indexAll(search, docs(chat, [{ number: 1, body }]));
      assert.deepEqual(await searchAll(search, chat, 'NEEDLE'), [1]);
      assert.deepEqual(await searchAll(search, chat, 'éN'), [1]);
    });
  });
});

describe('opensearch search: unreachable engine', () => {
  let port: number;
  let search: OpenSearchIndex;

  before(async () => {
    // A port that was just free and now has nobody listening: connections are refused at once.
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve, reject) =>
      server.close((error) => (error ? reject(error) : resolve())),
    );
    search = openOpenSearchIndex(`http://127.0.0.1:${port}`, { index: 'chat-messages' });
  });

  after(async () => {
    await search.close();
  });

  it('search, ping and indexMessages reject with UnavailableError (503 with Retry-After)', async () => {
    const chat = CHATS[0]!;
    for (const attempt of [
      () => search.search(chat, 'anything', { limit: 10 }),
      () => search.ping(),
      () => search.indexMessages(docs(chat, [{ number: 1, body: 'x' }])),
      () => search.ensureIndex(),
    ]) {
      await assert.rejects(attempt(), (error: unknown) => {
        assert.ok(error instanceof UnavailableError, `got ${String(error)}`);
        assert.equal(error.status, 503);
        assert.ok((error.retryAfter ?? 0) > 0);
        return true;
      });
    }
  });
});
