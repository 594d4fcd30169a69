/**
 * The Store port's conformance suite. Every Store adapter (embedded node:sqlite, later MySQL) runs this
 * very suite from a `*.test.ts` runner next to it, so "a Store" means the same thing everywhere.
 *
 * The factory must hand out an empty store each time it is called: every test starts from nothing, so
 * tests can assert exact counts and maxima without seeing each other's rows.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { MESSAGE_MAX_BYTES_LIMIT } from '../domain/commands.ts';
import { MAX_NUMBER } from '../domain/paging.ts';
import type { Store } from '../domain/ports.ts';
import type {
  Application,
  Chat,
  ChatCreate,
  IdempotencyRecord,
  Message,
  MessageCreate,
  NumberPage,
} from '../domain/types.ts';
import { messageView } from '../domain/views.ts';

export interface StoreFixture {
  store: Store;
  /** Closes the store and removes whatever the factory created (files, schemas). */
  cleanup(): Promise<void>;
  /** Makes the database itself fail (a trigger) every insert of a message with this body. */
  failInsertsOf(body: string): Promise<void>;
}

/** A second-resolution timestamp `seconds` after a fixed origin, in the ISO form the core uses. */
function at(seconds: number): string {
  return new Date(Date.UTC(2024, 0, 1) + seconds * 1000).toISOString();
}

function chatCreate(applicationId: number, number: number, time = at(0), idempotency?: IdempotencyRecord) {
  const command: ChatCreate = { kind: 'chat.create', applicationId, number, at: time };
  if (idempotency) command.idempotency = idempotency;
  return command;
}

function messageCreate(
  applicationId: number,
  chatNumber: number,
  number: number,
  body: string,
  time = at(0),
  idempotency?: IdempotencyRecord,
) {
  const command: MessageCreate = {
    kind: 'message.create',
    applicationId,
    chatNumber,
    number,
    body,
    at: time,
  };
  if (idempotency) command.idempotency = idempotency;
  return command;
}

// Adapters may return rows with extra (internal) fields or a null prototype (node:sqlite does); the suite
// compares the fields the port promises, as plain objects.
function appFields(app: Application | undefined) {
  if (!app) return undefined;
  const { token, name, chatsCount, createdAt, updatedAt } = app;
  return { token, name, chatsCount, createdAt, updatedAt };
}

function chatFields(chat: Chat | undefined) {
  if (!chat) return undefined;
  const { applicationId, number, messagesCount, createdAt, updatedAt } = chat;
  return { applicationId, number, messagesCount, createdAt, updatedAt };
}

function messageFields(message: Message | undefined) {
  if (!message) return undefined;
  const { chatNumber, number, body, createdAt, updatedAt } = message;
  return { chatNumber, number, body, createdAt, updatedAt };
}

function numbers(items: { number: number }[]): number[] {
  return items.map((item) => item.number);
}

/** Follows `next` from `first` to the end, returning every page; bails out instead of looping forever. */
async function walk<T>(
  first: NumberPage,
  read: (page: NumberPage) => Promise<{ items: T[]; next?: NumberPage }>,
): Promise<{ items: T[]; next?: NumberPage }[]> {
  const pages: { items: T[]; next?: NumberPage }[] = [];
  let page: NumberPage | undefined = first;
  while (page) {
    const result = await read(page);
    pages.push(result);
    assert.ok(pages.length <= 1000, 'paging did not terminate');
    page = result.next;
  }
  return pages;
}

/**
 * A store that has `listMessagesRendered` answers every listMessages of the suite both ways, and the
 * rendered page must be the plain page's JSON, with the same next cursor.
 */
function checkingRendered(store: Store): Store {
  const { listMessagesRendered } = store;
  if (!listMessagesRendered) return store;
  const listMessages: Store['listMessages'] = async (chat, page) => {
    // Both at once: the rendered list runs beside the plain one, as concurrent requests do.
    const [plain, rendered] = await Promise.all([
      store.listMessages(chat, page),
      listMessagesRendered.call(store, chat, page),
    ]);
    const where = `rendered page of chat ${chat.number} at ${JSON.stringify(page)}`;
    assert.equal(rendered.json, JSON.stringify(plain.items.map(messageView)), where);
    assert.deepEqual(rendered.next, plain.next, `next cursor of the ${where}`);
    return plain;
  };
  return new Proxy(store, {
    get(target, key) {
      if (key === 'listMessages') return listMessages;
      const value: unknown = Reflect.get(target, key, target);
      // Bound to the store itself: adapters keep their state in private fields.
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

export function storeConformance(name: string, factory: () => Promise<StoreFixture>): void {
  describe(`Store conformance: ${name}`, () => {
    let fixture: StoreFixture;
    let store: Store;

    beforeEach(async () => {
      fixture = await factory();
      store = checkingRendered(fixture.store);
    });

    afterEach(async () => {
      await fixture.cleanup();
    });

    /** An application plus `chats` chat rows numbered 1..chats, all created at at(0). */
    async function appWithChats(chats: number, token = 'app-main'): Promise<Application> {
      const app = await store.createApplication({ token, name: token, at: at(0) });
      const commands = [];
      for (let n = 1; n <= chats; n++) commands.push(chatCreate(app.id, n));
      if (commands.length > 0) await store.persistBatch(commands);
      return app;
    }

    async function chat(applicationId: number, number: number): Promise<Chat> {
      const found = await store.findChat(applicationId, number);
      assert.ok(found, `chat ${applicationId}/${number} should exist`);
      return found;
    }

    it('ping resolves', async () => {
      await store.ping();
    });

    describe('applications', () => {
      it('createApplication returns the new row and findApplication finds it by token', async () => {
        const app = await store.createApplication({ token: 'tok-1', name: 'First', at: at(5) });
        assert.equal(typeof app.id, 'number');
        const expected = { token: 'tok-1', name: 'First', chatsCount: 0, createdAt: at(5), updatedAt: at(5) };
        assert.deepEqual(appFields(app), expected);
        const found = await store.findApplication('tok-1');
        assert.deepEqual(appFields(found), expected);
        assert.equal(found?.id, app.id);
      });

      it('findApplication of an unknown token is undefined', async () => {
        await store.createApplication({ token: 'tok-1', name: 'First', at: at(0) });
        assert.equal(await store.findApplication('tok-2'), undefined);
        assert.equal(await store.findApplication(''), undefined);
      });

      it('tokens are case-sensitive (they are base64url)', async () => {
        // A case-insensitive collation would make these one key, or find one by the other.
        const lower = await store.createApplication({ token: 'abcdef', name: 'lower', at: at(0) });
        const upper = await store.createApplication({ token: 'ABCDEF', name: 'upper', at: at(0) });
        assert.notEqual(lower.id, upper.id);
        assert.equal((await store.findApplication('abcdef'))?.name, 'lower');
        assert.equal((await store.findApplication('ABCDEF'))?.name, 'upper');
        assert.equal(await store.findApplication('AbCdEf'), undefined);
      });

      it('a duplicate token is refused', async () => {
        await store.createApplication({ token: 'same', name: 'one', at: at(0) });
        await assert.rejects(store.createApplication({ token: 'same', name: 'two', at: at(1) }));
        assert.equal((await store.findApplication('same'))?.name, 'one');
      });

      it('renameApplication changes name and updatedAt only', async () => {
        const app = await store.createApplication({ token: 'tok-1', name: 'Old', at: at(0) });
        const other = await store.createApplication({ token: 'tok-2', name: 'Other', at: at(0) });
        const renamed = await store.renameApplication(app.id, 'New', at(60));
        const expected = { token: 'tok-1', name: 'New', chatsCount: 0, createdAt: at(0), updatedAt: at(60) };
        assert.deepEqual(appFields(renamed), expected);
        assert.equal(renamed?.id, app.id);
        assert.deepEqual(appFields(await store.findApplication('tok-1')), expected);
        // Only the addressed row changed.
        assert.equal((await store.findApplication('tok-2'))?.name, 'Other');
        assert.equal((await store.findApplication('tok-2'))?.id, other.id);
      });

      it('renameApplication of an unknown id is undefined and changes nothing', async () => {
        const app = await store.createApplication({ token: 'tok-1', name: 'Keep', at: at(0) });
        assert.equal(await store.renameApplication(app.id + 1000, 'Nope', at(1)), undefined);
        assert.equal((await store.findApplication('tok-1'))?.name, 'Keep');
      });

      it('listApplications pages by (createdAt, token) and next walks every row exactly once', async () => {
        // Ties on createdAt are deliberate: the token must break them. Tokens are lowercase letters and
        // digits so that byte order and any sane collation agree on the expected order.
        const rows: [string, number][] = [
          ['k2', 2],
          ['b1', 1],
          ['a1', 1],
          ['z3', 3],
          ['c1', 1],
          ['a2', 2],
          ['q0', 0],
        ];
        for (const [token, seconds] of rows)
          await store.createApplication({ token, name: token, at: at(seconds) });
        const expected = [...rows]
          .sort(([ta, sa], [tb, sb]) => sa - sb || (ta < tb ? -1 : ta > tb ? 1 : 0))
          .map(([token]) => token);
        assert.deepEqual(expected, ['q0', 'a1', 'b1', 'c1', 'a2', 'k2', 'z3']);

        const seen: string[] = [];
        let cursor: { createdAt: string; token: string } | undefined;
        let pages = 0;
        do {
          const page = await store.listApplications(cursor ? { limit: 3, after: cursor } : { limit: 3 });
          pages++;
          assert.ok(page.items.length <= 3, 'a page never exceeds its limit');
          seen.push(...page.items.map((app) => app.token));
          if (page.next) {
            const last = page.items.at(-1)!;
            assert.deepEqual({ ...page.next }, { createdAt: last.createdAt, token: last.token });
          }
          cursor = page.next;
          assert.ok(pages <= 10, 'paging did not terminate');
        } while (cursor);
        assert.deepEqual(seen, expected);
        assert.equal(pages, 3);
      });

      it('listApplications has no next when the rest fits the page', async () => {
        for (let i = 0; i < 4; i++) await store.createApplication({ token: `t${i}`, name: 'x', at: at(i) });
        const exact = await store.listApplications({ limit: 4 });
        assert.equal(exact.items.length, 4);
        assert.equal(exact.next, undefined);
        const roomy = await store.listApplications({ limit: 10 });
        assert.equal(roomy.items.length, 4);
        assert.equal(roomy.next, undefined);
        const afterLast = await store.listApplications({
          limit: 2,
          after: { createdAt: at(3), token: 't3' },
        });
        assert.deepEqual(afterLast.items, []);
        assert.equal(afterLast.next, undefined);
      });
    });

    describe('persistBatch', () => {
      it('stores chat.create commands with their numbers and times', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([chatCreate(app.id, 1, at(10)), chatCreate(app.id, 2, at(11))]);
        for (const [number, seconds] of [
          [1, 10],
          [2, 11],
        ] as const) {
          const found = await store.findChat(app.id, number);
          assert.equal(typeof found?.id, 'number');
          assert.deepEqual(chatFields(found), {
            applicationId: app.id,
            number,
            messagesCount: 0,
            createdAt: at(seconds),
            updatedAt: at(seconds),
          });
        }
        assert.equal(await store.findChat(app.id, 3), undefined);
        assert.notEqual((await chat(app.id, 1)).id, (await chat(app.id, 2)).id);
      });

      it('stores message.create commands with their numbers, bodies and times', async () => {
        const app = await appWithChats(1);
        await store.persistBatch([
          messageCreate(app.id, 1, 1, 'hello', at(20)),
          messageCreate(app.id, 1, 2, 'world', at(21)),
        ]);
        const c = await chat(app.id, 1);
        assert.deepEqual(messageFields(await store.findMessage(c, 1)), {
          chatNumber: 1,
          number: 1,
          body: 'hello',
          createdAt: at(20),
          updatedAt: at(20),
        });
        assert.deepEqual(messageFields(await store.findMessage(c, 2)), {
          chatNumber: 1,
          number: 2,
          body: 'world',
          createdAt: at(21),
          updatedAt: at(21),
        });
        assert.equal(await store.findMessage(c, 3), undefined);
      });

      it('a message whose chat row is not stored yet creates the chat', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([messageCreate(app.id, 4, 1, 'early bird', at(30))]);
        const c = await chat(app.id, 4);
        assert.equal(c.createdAt, at(30));
        assert.equal((await store.findMessage(c, 1))?.body, 'early bird');
        assert.equal(await store.maxChatNumber(app.id), 4);
      });

      it('replaying the same batch is harmless: no error, no duplicate, stored rows unchanged', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const batch = [
          chatCreate(app.id, 1, at(1)),
          messageCreate(app.id, 1, 1, 'one', at(2)),
          messageCreate(app.id, 1, 2, 'two', at(3)),
        ];
        await store.persistBatch(batch);
        await store.persistBatch(batch);
        await store.persistBatch(batch);
        const c = await chat(app.id, 1);
        const page = await store.listMessages(c, { limit: 10 });
        assert.deepEqual(
          page.items.map((m) => [m.number, m.body, m.createdAt]),
          [
            [1, 'one', at(2)],
            [2, 'two', at(3)],
          ],
        );
        const chats = await store.listChats(app.id, { limit: 10 });
        assert.deepEqual(numbers(chats.items), [1]);
        assert.equal(c.createdAt, at(1));
      });

      it('a redelivered create never overwrites a body edited in between', async () => {
        const app = await appWithChats(1);
        const batch = [messageCreate(app.id, 1, 1, 'original', at(1))];
        await store.persistBatch(batch);
        const c = await chat(app.id, 1);
        await store.editMessage(c, 1, 'edited', at(2));
        await store.persistBatch(batch);
        const found = await store.findMessage(c, 1);
        assert.equal(found?.body, 'edited');
        assert.equal(found?.updatedAt, at(2));
      });

      it('a chat created by a message keeps the earliest time when its chat.create arrives later', async () => {
        // The distributed queue does not order across parents: the message may be stored first.
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([messageCreate(app.id, 1, 1, 'first', at(50))]);
        await store.persistBatch([chatCreate(app.id, 1, at(40))]);
        assert.equal((await chat(app.id, 1)).createdAt, at(40));
      });

      it('the earliest time also wins when both arrive in one batch', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([
          messageCreate(app.id, 1, 1, 'first', at(50)),
          chatCreate(app.id, 1, at(40)),
        ]);
        assert.equal((await chat(app.id, 1)).createdAt, at(40));
      });

      it('a later message does not move the creation time of an existing chat', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([chatCreate(app.id, 1, at(40))]);
        await store.persistBatch([messageCreate(app.id, 1, 1, 'later', at(50))]);
        assert.equal((await chat(app.id, 1)).createdAt, at(40));
      });

      it('a batch that fails is stored not at all, and does not disturb later batches', async () => {
        // The database refuses one message of the batch: the commands before it must be rolled back with
        // it. The writer then retries (at-least-once), which must work.
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await fixture.failInsertsOf('boom');
        const good = [chatCreate(app.id, 1, at(1)), messageCreate(app.id, 1, 1, 'kept?', at(2))];
        await assert.rejects(store.persistBatch([...good, messageCreate(app.id, 1, 2, 'boom', at(3))]));
        assert.equal(await store.findChat(app.id, 1), undefined);
        assert.equal(await store.maxChatNumber(app.id), 0);
        assert.equal((await store.findApplication('tok'))?.chatsCount, 0);

        // Another application's chat, stored in between, must not be confused with the rolled-back one.
        const other = await store.createApplication({ token: 'other', name: 'other', at: at(0) });
        await store.persistBatch([chatCreate(other.id, 1, at(4))]);

        assert.equal((await store.persistBatch(good)).refused.size, 0);
        const c = await chat(app.id, 1);
        assert.equal(c.createdAt, at(1));
        assert.equal(c.messagesCount, 1);
        assert.equal((await store.findMessage(c, 1))?.body, 'kept?');
        const otherChat = await chat(other.id, 1);
        assert.notEqual(otherChat.id, c.id);
        assert.deepEqual((await store.listMessages(otherChat, { limit: 10 })).items, []);
      });

      it('refuses a command naming an unknown application alone, and stores the rest of its batch', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const missing = app.id + 1000;
        const outcome = await store.persistBatch([
          chatCreate(app.id, 1, at(1)),
          chatCreate(missing, 1, at(2)),
          messageCreate(app.id, 1, 1, 'kept', at(3)),
          messageCreate(missing, 2, 1, 'lost', at(4)),
        ]);
        assert.deepEqual([...outcome.refused.keys()], [1, 3]);
        for (const reason of outcome.refused.values())
          assert.match(reason, new RegExp(`application ${missing}`));
        const c = await chat(app.id, 1);
        assert.equal(c.messagesCount, 1);
        assert.equal((await store.findMessage(c, 1))?.body, 'kept');
        assert.equal((await store.findApplication('tok'))?.chatsCount, 1);
        assert.equal(await store.maxChatNumber(missing), 0);
        assert.equal(await store.findChat(missing, 2), undefined);
      });

      it('refuses malformed commands alone, and stores the rest of their batch', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const message = messageCreate(app.id, 1, 1, 'fine', at(1));
        const chat1 = chatCreate(app.id, 1, at(1));
        const malformed: [string, unknown][] = [
          ['number 0', { ...chat1, number: 0 }],
          ['number past the largest', { ...chat1, number: MAX_NUMBER + 1 }],
          ['a fractional number', { ...message, number: 1.5 }],
          ['a chat number as a string', { ...message, chatNumber: '1' }],
          ['no application', { ...chat1, applicationId: undefined }],
          ['a time without a zone', { ...chat1, at: '2024-01-01T00:00:00' }],
          ['a time with an offset', { ...chat1, at: '2024-01-01T00:00:00.000+01:00' }],
          ['a body that is no string', { ...message, body: 42 }],
          ['an empty body', { ...message, body: '' }],
          ['an unpaired surrogate', { ...message, body: 'a\ud800b' }],
          ['a body past the limit', { ...message, body: 'é'.repeat(MESSAGE_MAX_BYTES_LIMIT / 2 + 1) }],
          ['an unknown kind', { ...chat1, kind: 'chat.delete' }],
          ['a broken idempotency record', { ...chat1, idempotency: { scope: 'x', key: 1 } }],
        ];
        let number = 0;
        for (const [what, bad] of malformed) {
          number++;
          const good = messageCreate(app.id, 1, number, `good ${number}`, at(number));
          const outcome = await store.persistBatch([good, bad as MessageCreate]);
          assert.deepEqual([...outcome.refused.keys()], [1], what);
          const stored = await store.findMessage(await chat(app.id, 1), number);
          assert.equal(stored?.body, `good ${number}`, what);
        }
        const c = await chat(app.id, 1);
        assert.equal(c.messagesCount, malformed.length);
        assert.equal(await store.maxChatNumber(app.id), 1);
      });
    });

    describe('idempotency records', () => {
      const record: IdempotencyRecord = {
        scope: 'chats:tok',
        key: 'key-1',
        fingerprint: 'sha256:abc',
        response: '{"number":1,"messages_count":0}',
      };

      it('are stored with the batch and found by scope and key', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([chatCreate(app.id, 1, at(100), record)]);
        assert.deepEqual({ ...(await store.findIdempotency(record.scope, record.key, at(0))) }, record);
        // A message.create carries them the same way.
        const messageRecord = { ...record, scope: 'messages:tok:1', response: '{"number":1}' };
        await store.persistBatch([messageCreate(app.id, 1, 1, 'hi', at(100), messageRecord)]);
        assert.deepEqual(
          { ...(await store.findIdempotency(messageRecord.scope, record.key, at(0))) },
          messageRecord,
        );
      });

      it('are not found under another scope or key', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([chatCreate(app.id, 1, at(100), record)]);
        assert.equal(await store.findIdempotency('chats:other', record.key, at(0)), undefined);
        assert.equal(await store.findIdempotency(record.scope, 'key-2', at(0)), undefined);
      });

      it('are found at notBefore and not when older than it', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([chatCreate(app.id, 1, at(100), record)]);
        assert.ok(await store.findIdempotency(record.scope, record.key, at(100)), 'exactly at notBefore');
        assert.equal(await store.findIdempotency(record.scope, record.key, at(101)), undefined);
      });

      it('are not stored when their batch fails', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await fixture.failInsertsOf('boom');
        await assert.rejects(
          store.persistBatch([chatCreate(app.id, 1, at(100), record), messageCreate(app.id, 1, 1, 'boom')]),
        );
        assert.equal(await store.findIdempotency(record.scope, record.key, at(0)), undefined);
      });

      it('are not stored with a refused command, and are with the rest of its batch', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const refused = { ...record, key: 'refused' };
        const outcome = await store.persistBatch([
          chatCreate(app.id + 1000, 1, at(100), refused),
          chatCreate(app.id, 1, at(100), record),
        ]);
        assert.deepEqual([...outcome.refused.keys()], [0]);
        assert.equal(await store.findIdempotency(refused.scope, refused.key, at(0)), undefined);
        assert.deepEqual({ ...(await store.findIdempotency(record.scope, record.key, at(0))) }, record);
      });

      it('survive a replay of their batch unchanged', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const batch = [chatCreate(app.id, 1, at(100), record)];
        await store.persistBatch(batch);
        await store.persistBatch(batch);
        assert.deepEqual({ ...(await store.findIdempotency(record.scope, record.key, at(0))) }, record);
      });

      it('are replaced by a later create that reuses their key once expired; an older replay changes nothing', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const first = [chatCreate(app.id, 1, at(100), record)];
        await store.persistBatch(first);
        // The key expired (its record is older than notBefore) and was used again for chat 2.
        const reused = { ...record, fingerprint: 'sha256:def', response: '{"number":2,"messages_count":0}' };
        await store.persistBatch([chatCreate(app.id, 2, at(500), reused)]);
        assert.deepEqual({ ...(await store.findIdempotency(record.scope, record.key, at(400))) }, reused);
        // The first batch redelivered late: the later record stays.
        await store.persistBatch(first);
        assert.deepEqual({ ...(await store.findIdempotency(record.scope, record.key, at(400))) }, reused);
      });

      it('purgeIdempotency removes the ones created before the cut-off and counts them', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([
          chatCreate(app.id, 1, at(10), { ...record, key: 'old-1' }),
          chatCreate(app.id, 2, at(20), { ...record, key: 'old-2' }),
          chatCreate(app.id, 3, at(30), { ...record, key: 'young' }),
        ]);
        assert.equal(await store.purgeIdempotency(at(10)), 0, 'nothing is older than the oldest');
        assert.equal(await store.purgeIdempotency(at(30)), 2);
        assert.equal(await store.findIdempotency(record.scope, 'old-1', at(0)), undefined);
        assert.equal(await store.findIdempotency(record.scope, 'old-2', at(0)), undefined);
        assert.ok(await store.findIdempotency(record.scope, 'young', at(0)));
        // The chats themselves are untouched by the purge.
        assert.equal(await store.maxChatNumber(app.id), 3);
      });
    });

    describe('chats', () => {
      it('findChat is undefined for an unknown number and for another application', async () => {
        const app = await appWithChats(2);
        const other = await store.createApplication({ token: 'other', name: 'other', at: at(0) });
        assert.ok(await store.findChat(app.id, 2));
        assert.equal(await store.findChat(app.id, 3), undefined);
        assert.equal(await store.findChat(app.id, 0), undefined);
        assert.equal(await store.findChat(other.id, 1), undefined);
      });

      it('listChats pages ascending with after and next', async () => {
        const app = await appWithChats(7);
        const first = await store.listChats(app.id, { limit: 3 });
        assert.deepEqual(numbers(first.items), [1, 2, 3]);
        assert.deepEqual({ ...first.next }, { limit: 3, after: 3 });
        const second = await store.listChats(app.id, { limit: 3, after: 3 });
        assert.deepEqual(numbers(second.items), [4, 5, 6]);
        assert.deepEqual({ ...second.next }, { limit: 3, after: 6 });
        const third = await store.listChats(app.id, { limit: 3, after: 6 });
        assert.deepEqual(numbers(third.items), [7]);
        assert.equal(third.next, undefined);
        const past = await store.listChats(app.id, { limit: 3, after: 7 });
        assert.deepEqual(past.items, []);
        assert.equal(past.next, undefined);
      });

      it('listChats with before returns the page just below, ascending, and next continues below it', async () => {
        const app = await appWithChats(7);
        const page = await store.listChats(app.id, { limit: 3, before: 6 });
        assert.deepEqual(numbers(page.items), [3, 4, 5]);
        assert.deepEqual({ ...page.next }, { limit: 3, before: 3 });
        const lower = await store.listChats(app.id, { limit: 3, before: 3 });
        assert.deepEqual(numbers(lower.items), [1, 2]);
        assert.equal(lower.next, undefined);
        assert.deepEqual((await store.listChats(app.id, { limit: 3, before: 1 })).items, []);
      });

      it('listChats with after and before reads only between them, downwards, and next keeps the floor', async () => {
        const app = await appWithChats(9);
        const page = await store.listChats(app.id, { limit: 2, after: 3, before: 8 });
        assert.deepEqual(numbers(page.items), [6, 7]);
        assert.deepEqual({ ...page.next }, { limit: 2, after: 3, before: 6 });
        const last = await store.listChats(app.id, { limit: 2, after: 3, before: 6 });
        assert.deepEqual(numbers(last.items), [4, 5]);
        assert.equal(last.next, undefined);
        assert.deepEqual((await store.listChats(app.id, { limit: 2, after: 5, before: 6 })).items, []);
      });

      it('listChats next cursors walk all chats exactly once, forwards and backwards', async () => {
        const app = await appWithChats(10);
        for (const limit of [1, 3, 4, 10, 11]) {
          const forwards = await walk({ limit }, (p) => store.listChats(app.id, p));
          assert.deepEqual(numbers(forwards.flatMap((p) => p.items)), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
          const backwards = await walk({ limit, before: 11 }, (p) => store.listChats(app.id, p));
          // Each page is ascending; the pages themselves come newest first.
          assert.deepEqual(
            numbers(backwards.reverse().flatMap((p) => p.items)),
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
          );
          for (const p of [...forwards, ...backwards]) assert.ok(p.items.length <= limit);
        }
      });

      it("listChats never shows another application's chats", async () => {
        const app = await appWithChats(3);
        const other = await appWithChats(5, 'other');
        assert.deepEqual(numbers((await store.listChats(app.id, { limit: 10 })).items), [1, 2, 3]);
        const otherChats = (await store.listChats(other.id, { limit: 10 })).items;
        assert.deepEqual(numbers(otherChats), [1, 2, 3, 4, 5]);
        assert.ok(otherChats.every((c) => c.applicationId === other.id));
      });
    });

    describe('messages', () => {
      // Numbers with gaps: a store may hold 1, 2, 3, 5, 8 while 4, 6, 7 are still on their way.
      const gappy = [1, 2, 3, 5, 8];

      async function chatWithMessages(list: number[]): Promise<{ app: Application; chat: Chat }> {
        const app = await appWithChats(1);
        await store.persistBatch(list.map((n) => messageCreate(app.id, 1, n, `body ${n}`, at(n))));
        return { app, chat: await chat(app.id, 1) };
      }

      it('findMessage is undefined for an unknown number', async () => {
        const { chat: c } = await chatWithMessages(gappy);
        assert.equal(await store.findMessage(c, 4), undefined);
        assert.equal(await store.findMessage(c, 9), undefined);
        assert.equal(await store.findMessage(c, 0), undefined);
      });

      it('listMessages pages ascending with after and next, carrying the chat number', async () => {
        const { chat: c } = await chatWithMessages(gappy);
        const first = await store.listMessages(c, { limit: 2 });
        assert.deepEqual(first.items.map(messageFields), [
          { chatNumber: 1, number: 1, body: 'body 1', createdAt: at(1), updatedAt: at(1) },
          { chatNumber: 1, number: 2, body: 'body 2', createdAt: at(2), updatedAt: at(2) },
        ]);
        assert.deepEqual({ ...first.next }, { limit: 2, after: 2 });
        const second = await store.listMessages(c, { limit: 2, after: 2 });
        assert.deepEqual(numbers(second.items), [3, 5]);
        assert.deepEqual({ ...second.next }, { limit: 2, after: 5 });
        const third = await store.listMessages(c, { limit: 2, after: 5 });
        assert.deepEqual(numbers(third.items), [8]);
        assert.equal(third.next, undefined);
        // An after that falls in a gap continues from the next stored number.
        assert.deepEqual(numbers((await store.listMessages(c, { limit: 2, after: 4 })).items), [5, 8]);
      });

      it('listMessages with before returns the page just below, ascending, and next continues below it', async () => {
        const { chat: c } = await chatWithMessages(gappy);
        const page = await store.listMessages(c, { limit: 2, before: 8 });
        assert.deepEqual(numbers(page.items), [3, 5]);
        assert.deepEqual({ ...page.next }, { limit: 2, before: 3 });
        const lower = await store.listMessages(c, { limit: 2, before: 3 });
        assert.deepEqual(numbers(lower.items), [1, 2]);
        assert.equal(lower.next, undefined, 'exactly limit rows remained: no further page');
        const top = await store.listMessages(c, { limit: 10, before: MAX_NUMBER });
        assert.deepEqual(numbers(top.items), gappy);
        assert.equal(top.next, undefined);
      });

      it('listMessages next cursors walk all messages exactly once, forwards and backwards', async () => {
        const { chat: c } = await chatWithMessages(gappy);
        for (const limit of [1, 2, 4, 5, 6]) {
          const forwards = await walk({ limit }, (p) => store.listMessages(c, p));
          assert.deepEqual(numbers(forwards.flatMap((p) => p.items)), gappy);
          const backwards = await walk({ limit, before: 9 }, (p) => store.listMessages(c, p));
          assert.deepEqual(numbers(backwards.reverse().flatMap((p) => p.items)), gappy);
        }
      });

      it("messages of one chat never appear in another chat's reads", async () => {
        // Same chat number in two applications, and two chats of one application.
        const app = await appWithChats(2);
        const other = await appWithChats(1, 'other');
        await store.persistBatch([
          messageCreate(app.id, 1, 1, 'app chat 1 #1'),
          messageCreate(app.id, 1, 2, 'app chat 1 #2'),
          messageCreate(app.id, 2, 1, 'app chat 2 #1'),
          messageCreate(other.id, 1, 1, 'other chat 1 #1'),
          messageCreate(other.id, 1, 2, 'other chat 1 #2'),
          messageCreate(other.id, 1, 3, 'other chat 1 #3'),
        ]);
        const a1 = await chat(app.id, 1);
        const a2 = await chat(app.id, 2);
        const o1 = await chat(other.id, 1);
        const bodies = async (c: Chat) =>
          (await store.listMessages(c, { limit: 10 })).items.map((m) => m.body);
        assert.deepEqual(await bodies(a1), ['app chat 1 #1', 'app chat 1 #2']);
        assert.deepEqual(await bodies(a2), ['app chat 2 #1']);
        assert.deepEqual(await bodies(o1), ['other chat 1 #1', 'other chat 1 #2', 'other chat 1 #3']);
        assert.equal((await store.findMessage(a2, 2))?.body, undefined);
        assert.equal((await store.findMessage(o1, 1))?.body, 'other chat 1 #1');
        const below = await store.listMessages(a2, { limit: 10, before: 4 });
        assert.deepEqual(
          below.items.map((m) => m.body),
          ['app chat 2 #1'],
        );
        assert.equal(await store.maxMessageNumber(app.id, 2), 1);
        assert.equal(await store.maxMessageNumber(other.id, 1), 3);
      });

      it('editMessage returns the updated row and later reads see it', async () => {
        const { chat: c } = await chatWithMessages([1, 2]);
        const edited = await store.editMessage(c, 2, 'changed', at(99));
        const expected = { chatNumber: 1, number: 2, body: 'changed', createdAt: at(2), updatedAt: at(99) };
        assert.deepEqual(messageFields(edited), expected);
        assert.deepEqual(messageFields(await store.findMessage(c, 2)), expected);
        assert.equal((await store.findMessage(c, 1))?.body, 'body 1', 'the neighbour is untouched');
      });

      it('each edit moves updatedAt forward, even when it carries an earlier or the same time', async () => {
        // Edits take their time before the store orders them (another process, another clock): the one
        // stored last must carry the latest time, since search keeps the document with the latest.
        const app = await appWithChats(1);
        await store.persistBatch([messageCreate(app.id, 1, 1, 'v0', at(10))]);
        const c = await chat(app.id, 1);
        const first = await store.editMessage(c, 1, 'v1', at(20));
        assert.equal(first?.updatedAt, at(20));
        const earlier = await store.editMessage(c, 1, 'v2', at(15));
        assert.equal(earlier?.updatedAt, '2024-01-01T00:00:20.001Z');
        const same = await store.editMessage(c, 1, 'v3', '2024-01-01T00:00:20.001Z');
        assert.equal(same?.updatedAt, '2024-01-01T00:00:20.002Z');
        const found = await store.findMessage(c, 1);
        assert.deepEqual([found?.body, found?.updatedAt], ['v3', '2024-01-01T00:00:20.002Z']);
      });

      it('editMessage of an unknown message is undefined and creates nothing', async () => {
        const { chat: c } = await chatWithMessages([1]);
        assert.equal(await store.editMessage(c, 2, 'ghost', at(9)), undefined);
        assert.equal(await store.findMessage(c, 2), undefined);
        assert.equal(await store.maxMessageNumber(c.applicationId, c.number), 1);
      });

      it('edits are numbered per chat in order; listEdits returns each message once, at its latest edit', async () => {
        const { chat: c } = await chatWithMessages([1, 2, 3]);
        assert.equal(await store.lastEditSeq(c), 0);
        assert.deepEqual(await store.listEdits(c, 0, 10), []);
        assert.equal((await store.editMessage(c, 2, 'two, once', at(10)))?.editSeq, 1);
        assert.equal((await store.editMessage(c, 1, 'one, once', at(11)))?.editSeq, 2);
        assert.equal(await store.editMessage(c, 9, 'no such message', at(12)), undefined);
        assert.equal(
          (await store.editMessage(c, 2, 'two, twice', at(13)))?.editSeq,
          3,
          'a failed edit takes no number',
        );
        assert.equal(await store.lastEditSeq(c), 3);
        const edits = (after: number, limit = 10) =>
          store.listEdits(c, after, limit).then((list) => list.map((m) => [m.editSeq, m.number, m.body]));
        assert.deepEqual(await edits(0), [
          [2, 1, 'one, once'],
          [3, 2, 'two, twice'],
        ]);
        assert.deepEqual(await edits(2), [[3, 2, 'two, twice']]);
        assert.deepEqual(await edits(0, 1), [[2, 1, 'one, once']]);
        assert.deepEqual(await edits(3), []);
        const other = await store
          .persistBatch([chatCreate(c.applicationId, 2)])
          .then(() => chat(c.applicationId, 2));
        assert.equal(await store.lastEditSeq(other), 0, 'another chat has its own sequence');
      });

      it('editMessage touches only the addressed chat', async () => {
        const app = await appWithChats(2);
        await store.persistBatch([
          messageCreate(app.id, 1, 1, 'in one'),
          messageCreate(app.id, 2, 1, 'in two'),
        ]);
        await store.editMessage(await chat(app.id, 1), 1, 'edited one', at(5));
        assert.equal((await store.findMessage(await chat(app.id, 2), 1))?.body, 'in two');
      });

      it('Unicode bodies round-trip exactly', async () => {
        const bodies = [
          'emoji 🎉 family 👨‍👩‍👧‍👦 flag 🇯🇵 skin 👍🏽',
          '中文测试消息 日本語 한국어',
          'Ελληνικά ΣΟΦΙΑ σοφία',
          'العربية עברית', // right-to-left
          'e\u0301 vs \u00e9', // decomposed and precomposed é: must not be normalised into each other
          'math 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 and zero\u200bwidth',
          'quotes \' " ` \\ and %_ wildcards',
          'line\r\nbreaks\tand\ttabs\n',
          '  leading and trailing spaces  ',
        ];
        const app = await appWithChats(1);
        await store.persistBatch(bodies.map((body, i) => messageCreate(app.id, 1, i + 1, body)));
        const c = await chat(app.id, 1);
        for (const [i, body] of bodies.entries())
          assert.equal((await store.findMessage(c, i + 1))?.body, body);
        const listed = await store.listMessages(c, { limit: 100 });
        assert.deepEqual(
          listed.items.map((m) => m.body),
          bodies,
        );
        const edited = await store.editMessage(c, 1, '🦄 edited 中文', at(1));
        assert.equal(edited?.body, '🦄 edited 中文');
        assert.equal((await store.findMessage(c, 1))?.body, '🦄 edited 中文');
      });

      it('a 64 KiB body round-trips', async () => {
        // 1 + 2 + 3 + 4 UTF-8 bytes per repetition: a store that limits bodies to 65535 bytes (MySQL TEXT)
        // or counts characters instead of bytes fails here.
        const body = `${'aé中😀'.repeat(6553)}abcdef`;
        assert.equal(Buffer.byteLength(body, 'utf8'), 65536);
        const app = await appWithChats(1);
        await store.persistBatch([messageCreate(app.id, 1, 1, body)]);
        const c = await chat(app.id, 1);
        const found = await store.findMessage(c, 1);
        assert.equal(found?.body.length, body.length);
        assert.ok(found?.body === body, 'the body differs from what was stored');
        const edited = `${body.slice(0, -6)}fedcba`;
        await store.editMessage(c, 1, edited, at(1));
        assert.ok((await store.findMessage(c, 1))?.body === edited, 'the edited body differs');
      });
    });

    it('the largest body the configuration allows, all control characters, is stored with its idempotent 201', async () => {
      // The worst case for a store that keeps the 201 as JSON: every byte escaped to 6 (\u0001).
      const body = '\u0001'.repeat(MESSAGE_MAX_BYTES_LIMIT);
      const app = await appWithChats(1);
      const view = { number: 1, chat_number: 1, body, created_at: at(1), updated_at: at(1) };
      const record = {
        scope: 'messages:app-main:1',
        key: 'k',
        fingerprint: 'f',
        response: JSON.stringify(view),
      };
      await store.persistBatch([messageCreate(app.id, 1, 1, body, at(1), record)]);
      const found = await store.findMessage(await chat(app.id, 1), 1);
      assert.ok(found?.body === body, 'the body differs from what was stored');
      const kept = await store.findIdempotency(record.scope, record.key, at(0));
      assert.ok(kept?.response === record.response, 'the 201 differs from what was stored');
    });

    describe('counts', () => {
      it('are exact as soon as persistBatch has committed', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([chatCreate(app.id, 1), chatCreate(app.id, 2), chatCreate(app.id, 3)]);
        await store.persistBatch([
          messageCreate(app.id, 1, 1, 'a'),
          messageCreate(app.id, 1, 2, 'b'),
          messageCreate(app.id, 1, 3, 'c'),
          messageCreate(app.id, 1, 4, 'd'),
          messageCreate(app.id, 2, 1, 'e'),
          messageCreate(app.id, 2, 2, 'f'),
        ]);
        assert.equal((await store.findApplication('tok'))?.chatsCount, 3);
        assert.equal((await chat(app.id, 1)).messagesCount, 4);
        assert.equal((await chat(app.id, 2)).messagesCount, 2);
        assert.equal((await chat(app.id, 3)).messagesCount, 0);
        // listChats reports the same counts as findChat.
        const listed = (await store.listChats(app.id, { limit: 10 })).items.map((c) => c.messagesCount);
        assert.deepEqual(listed, [4, 2, 0]);
      });

      it('count a chat that a message created', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([messageCreate(app.id, 1, 1, 'a'), messageCreate(app.id, 2, 1, 'b')]);
        assert.equal((await chat(app.id, 1)).messagesCount, 1);
        assert.equal((await store.findApplication('tok'))?.chatsCount, 2);
        // The chat.create arriving after its message adds no second chat.
        await store.persistBatch([chatCreate(app.id, 1)]);
        assert.equal((await store.findApplication('tok'))?.chatsCount, 2);
      });

      it("move their parent's updatedAt to when they changed, never back, and not on a replay", async () => {
        // Times of the commands are long past (at()); the counts change now.
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const between = async (work: () => Promise<unknown>) => {
          const before = new Date().toISOString();
          await work();
          return [before, new Date().toISOString()] as const;
        };
        const inRange = (time: string | undefined, [low, high]: readonly [string, string], what: string) =>
          assert.ok(time !== undefined && time >= low && time <= high, `${what}: ${time} in ${low}..${high}`);

        const chatStored = await between(() => store.persistBatch([chatCreate(app.id, 1, at(10))]));
        const touched = await store.findApplication('tok');
        assert.equal(touched?.createdAt, at(0));
        inRange(touched?.updatedAt, chatStored, 'application after a chat');
        assert.equal((await chat(app.id, 1)).updatedAt, at(10));

        const batch = [messageCreate(app.id, 1, 1, 'a', at(20))];
        const messageStored = await between(() => store.persistBatch(batch));
        const c = await chat(app.id, 1);
        assert.equal(c.createdAt, at(10));
        inRange(c.updatedAt, messageStored, 'chat after a message');
        await store.persistBatch(batch);
        assert.equal((await chat(app.id, 1)).updatedAt, c.updatedAt, 'a replay changes nothing');
        assert.equal((await store.findApplication('tok'))?.updatedAt, touched?.updatedAt);

        // A chat stored by its message first: its later chat.create moves the creation back, not updatedAt.
        await store.persistBatch([messageCreate(app.id, 2, 1, 'early', at(50))]);
        const early = await chat(app.id, 2);
        await store.persistBatch([chatCreate(app.id, 2, at(40))]);
        const backdated = await chat(app.id, 2);
        assert.equal(backdated.createdAt, at(40));
        assert.equal(backdated.updatedAt, early.updatedAt);
        assert.ok(early.updatedAt > at(50));
      });

      it('are not inflated by replays, whole or partial', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const batch = [
          chatCreate(app.id, 1),
          messageCreate(app.id, 1, 1, 'a'),
          messageCreate(app.id, 1, 2, 'b'),
        ];
        await store.persistBatch(batch);
        await store.persistBatch(batch);
        await store.persistBatch([batch[2]!, messageCreate(app.id, 1, 3, 'c')]);
        assert.equal((await store.findApplication('tok'))?.chatsCount, 1);
        assert.equal((await chat(app.id, 1)).messagesCount, 3);
      });

      it('equal the stored rows after many interleaved batches with replays', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const sent: ReturnType<typeof messageCreate>[] = [];
        let seed = 7;
        const random = (n: number) => {
          seed = (seed * 48271) % 2147483647;
          return seed % n;
        };
        const next = new Map<number, number>();
        for (let round = 0; round < 30; round++) {
          const batch: (ReturnType<typeof messageCreate> | ReturnType<typeof chatCreate>)[] = [];
          for (let i = 0; i < 10; i++) {
            const chatNumber = 1 + random(4);
            const number = (next.get(chatNumber) ?? 0) + 1;
            next.set(chatNumber, number);
            const command = messageCreate(app.id, chatNumber, number, `r${round}-${i}`);
            sent.push(command);
            batch.push(command);
          }
          // Replay a few earlier commands in the same batch, as a redelivery would.
          for (let i = 0; i < 3 && sent.length > 10; i++) batch.push(sent[random(sent.length - 10)]!);
          if (round % 5 === 0) batch.push(chatCreate(app.id, 1 + random(4)));
          await store.persistBatch(batch);
        }
        const chats = (await store.listChats(app.id, { limit: 10 })).items;
        assert.equal((await store.findApplication('tok'))?.chatsCount, chats.length);
        for (const c of chats) {
          const rows = (await store.listMessages(c, { limit: 1000 })).items.length;
          assert.equal(c.messagesCount, rows, `chat ${c.number}`);
          assert.equal(rows, next.get(c.number));
        }
      });
    });

    describe('maxima (the sequencer seed)', () => {
      it('are 0 when nothing is stored, including for unknown applications and chats', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        assert.equal(await store.maxChatNumber(app.id), 0);
        assert.equal(await store.maxMessageNumber(app.id, 1), 0);
        assert.equal(await store.maxChatNumber(app.id + 1000), 0);
        assert.equal(await store.maxMessageNumber(app.id + 1000, 1), 0);
      });

      it('are the highest stored numbers, per application and per chat', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const other = await store.createApplication({ token: 'other', name: 'other', at: at(0) });
        await store.persistBatch([
          chatCreate(app.id, 1),
          chatCreate(app.id, 2),
          chatCreate(app.id, 5),
          chatCreate(other.id, 1),
          messageCreate(app.id, 1, 1, 'x'),
          messageCreate(app.id, 1, 2, 'x'),
          messageCreate(app.id, 1, 9, 'x'),
          messageCreate(app.id, 2, 3, 'x'),
          messageCreate(other.id, 1, 40, 'x'),
        ]);
        assert.equal(await store.maxChatNumber(app.id), 5);
        assert.equal(await store.maxChatNumber(other.id), 1);
        assert.equal(await store.maxMessageNumber(app.id, 1), 9);
        assert.equal(await store.maxMessageNumber(app.id, 2), 3);
        assert.equal(await store.maxMessageNumber(app.id, 5), 0, 'a chat without messages');
        assert.equal(await store.maxMessageNumber(app.id, 3), 0, 'an unknown chat');
        assert.equal(await store.maxMessageNumber(other.id, 1), 40);
      });

      it('handle numbers up to the unsigned 32-bit maximum', async () => {
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        await store.persistBatch([
          chatCreate(app.id, MAX_NUMBER),
          messageCreate(app.id, MAX_NUMBER, MAX_NUMBER, 'top'),
          messageCreate(app.id, MAX_NUMBER, 1, 'bottom'),
        ]);
        assert.equal(await store.maxChatNumber(app.id), MAX_NUMBER);
        assert.equal(await store.maxMessageNumber(app.id, MAX_NUMBER), MAX_NUMBER);
        const c = await chat(app.id, MAX_NUMBER);
        assert.deepEqual(numbers((await store.listMessages(c, { limit: 10 })).items), [1, MAX_NUMBER]);
      });
    });
  });
}
