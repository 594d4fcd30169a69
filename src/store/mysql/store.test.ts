import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, describe, it } from 'node:test';
import type { Pool, RowDataPacket } from 'mysql2/promise';
import { failInsertsOf, ScratchDatabases } from '../../../test/helpers/mysql.ts';
import { mulberry32 } from '../../../test/helpers/prng.ts';
import { openStallingRelay, Relay } from '../../../test/helpers/relay.ts';
import { service } from '../../../test/helpers/services.ts';
import { ValidationError } from '../../domain/errors.ts';
import type { WriteCommand } from '../../domain/types.ts';
import { storeConformance } from '../conformance.ts';
import { type Migration, migrate, migrations } from './migrations.ts';
import { createMysqlPool, MysqlStore, openMysqlStore } from './store.ts';
import { MysqlUnavailableError } from './unavailable.ts';

const mysql = service('mysql');

function at(seconds: number): string {
  return new Date(Date.UTC(2024, 0, 1) + seconds * 1000).toISOString();
}

describe('mysql store', { skip: mysql.skip }, () => {
  const scratch = new ScratchDatabases(mysql.url!);
  after(() => scratch.close());

  storeConformance('mysql', async () => {
    const url = await scratch.migrated();
    const store = await openMysqlStore(url, { connectionLimit: 2 });
    return {
      store,
      async cleanup() {
        await store.close();
        scratch.drop(url);
      },
      failInsertsOf: (body) => failInsertsOf(url, body),
    };
  });

  /** Runs `test` against a fresh database (and whatever it opens on it), dropping it afterwards. */
  async function withDatabase(
    test: (url: string, closeLater: (pool: Pool | MysqlStore) => void) => Promise<void>,
    kind: 'blank' | 'migrated' = 'migrated',
  ) {
    const url = await (kind === 'blank' ? scratch.blank() : scratch.migrated());
    const open: (Pool | MysqlStore)[] = [];
    try {
      await test(url, (resource) => open.push(resource));
    } finally {
      await Promise.all(
        open.map((resource) => (resource instanceof MysqlStore ? resource.close() : resource.end())),
      );
      scratch.drop(url);
    }
  }

  describe('migrations', () => {
    it('apply once: a second run applies nothing and leaves the schema as it was', () =>
      withDatabase(async (url, closeLater) => {
        const pool = createMysqlPool(url);
        closeLater(pool);
        assert.deepEqual(
          await migrate(pool),
          migrations.map((m) => m.version),
        );
        assert.deepEqual(await migrate(pool), []);
        const [rows] = await pool.query<RowDataPacket[]>(
          'SELECT version FROM schema_migrations ORDER BY version',
        );
        assert.deepEqual(
          rows.map((row) => row.version),
          migrations.map((m) => m.version),
        );
      }, 'blank'));

    it('a migration that died after an ALTER and before its version row runs again harmlessly', () =>
      withDatabase(async (url, closeLater) => {
        const pool = createMysqlPool(url);
        closeLater(pool);
        const [first, ...rest] = migrations;
        await migrate(pool, { migrations: [first!] });
        // What a crash leaves: every statement of the later migrations ran, no version row was written.
        for (const migration of rest)
          for (const statement of migration.statements) await pool.query(statement);
        assert.deepEqual(
          await migrate(pool),
          rest.map((m) => m.version),
        );
      }, 'blank'));

    it('run by several processes at once, apply each version exactly once', () =>
      withDatabase(async (url, closeLater) => {
        // A migration that fails if it runs twice (the second INSERT hits the primary key), and is slow
        // enough that the racing processes really overlap.
        const racy: Migration = {
          version: 1000,
          name: 'not idempotent',
          statements: [
            'CREATE TABLE IF NOT EXISTS migration_probe (id INT PRIMARY KEY)',
            'DO SLEEP(0.2)',
            'INSERT INTO migration_probe (id) VALUES (1)',
          ],
        };
        const pools = Array.from({ length: 4 }, () => createMysqlPool(url, { connectionLimit: 1 }));
        for (const pool of pools) closeLater(pool);
        const applied = await Promise.all(
          pools.map((pool) => migrate(pool, { migrations: [...migrations, racy] })),
        );
        assert.deepEqual(
          applied.flat().sort((x, y) => x - y),
          [...migrations.map((m) => m.version), 1000],
        );
        const [rows] = await pools[0]!.query<RowDataPacket[]>('SELECT COUNT(*) AS n FROM migration_probe');
        assert.equal(Number(rows[0]!.n), 1);
      }, 'blank'));
  });

  describe('sessions', () => {
    it('run at READ COMMITTED with a strict sql_mode, in UTC', () =>
      withDatabase(async (url, closeLater) => {
        const pool = createMysqlPool(url, { connectionLimit: 1 });
        closeLater(pool);
        // MySQL 8 names it transaction_isolation; MariaDB before 11.1 only tx_isolation.
        const isolation = await pool
          .query<RowDataPacket[]>('SELECT @@SESSION.transaction_isolation AS level')
          .catch(() => pool.query<RowDataPacket[]>('SELECT @@SESSION.tx_isolation AS level'));
        assert.equal(isolation[0][0]!.level, 'READ-COMMITTED');
        const [[mode]] = await pool.query<RowDataPacket[]>(
          'SELECT @@SESSION.sql_mode AS m, @@SESSION.time_zone AS z',
        );
        assert.match(mode!.m, /STRICT_TRANS_TABLES/);
        assert.doesNotMatch(mode!.m, /NO_BACKSLASH_ESCAPES|ANSI_QUOTES/);
        assert.equal(mode!.z, '+00:00');
      }));
  });

  describe('adapter specifics', () => {
    async function fresh(closeLater: (store: MysqlStore) => void, url: string): Promise<MysqlStore> {
      const store = await openMysqlStore(url, { connectionLimit: 4 });
      closeLater(store);
      return store;
    }

    it('scanMessages walks every message once in (chat id, number) order, and `since` keeps the recent ones', () =>
      withDatabase(async (url, closeLater) => {
        const store = await fresh(closeLater, url);
        const app = await store.createApplication({ token: 'scan', name: 'scan', at: at(0) });
        const commands: WriteCommand[] = [];
        for (const chatNumber of [1, 2, 3])
          for (let number = 1; number <= 4; number++)
            commands.push({
              kind: 'message.create',
              applicationId: app.id,
              chatNumber,
              number,
              body: `${chatNumber}.${number}`,
              at: at(number),
            });
        await store.persistBatch(commands);
        await store.editMessage((await store.findChat(app.id, 2))!, 1, 'edited', at(100));

        const walk = async (since?: string) => {
          const seen: string[] = [];
          let after: { chatId: number; number: number } | undefined;
          do {
            const page = await store.scanMessages({
              limit: 5,
              ...(after && { after }),
              ...(since && { since }),
            });
            assert.ok(page.items.length <= 5);
            seen.push(
              ...page.items.map((m) => `${m.chat.applicationId}/${m.chat.number}/${m.number}:${m.body}`),
            );
            after = page.next;
          } while (after);
          return seen;
        };
        const all = await walk();
        assert.equal(all.length, 12);
        assert.equal(all[0], `${app.id}/1/1:1.1`);
        assert.equal(all[4], `${app.id}/2/1:edited`);
        assert.deepEqual(await walk(at(4)), [
          `${app.id}/1/4:1.4`,
          `${app.id}/2/1:edited`,
          `${app.id}/2/4:2.4`,
          `${app.id}/3/4:3.4`,
        ]);
      }));

    it('concurrent batches from several processes on the same chats neither fail nor miscount', () =>
      withDatabase(async (url, closeLater) => {
        // Four writers (own pools, as separate processes would have) each persist every command of the
        // same set, shuffled differently and cut into batches: every message arrives four times, often at
        // the same moment, chats are created by whichever message or chat.create comes first, and the same
        // idempotency records race too.
        const writers = await Promise.all(Array.from({ length: 4 }, () => fresh(closeLater, url)));
        const first = writers[0]!;
        const app = await first.createApplication({ token: 'tok', name: 'app', at: at(0) });
        const chats = 8;
        const perChat = 40;
        const commands: WriteCommand[] = [];
        for (let c = 1; c <= chats; c++) {
          const idempotency = {
            scope: 'chats:tok',
            key: `k${c}`,
            fingerprint: 'f',
            response: `{"number":${c}}`,
          };
          commands.push({ kind: 'chat.create', applicationId: app.id, number: c, at: at(c), idempotency });
          for (let n = 1; n <= perChat; n++)
            commands.push({
              kind: 'message.create',
              applicationId: app.id,
              chatNumber: c,
              number: n,
              body: `chat ${c} message ${n}`,
              at: at(100 + n),
            });
        }
        await Promise.all(
          writers.map(async (store, w) => {
            const random = mulberry32(w + 1);
            const shuffled = [...commands];
            for (let i = shuffled.length - 1; i > 0; i--) {
              const j = Math.floor(random() * (i + 1));
              [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
            }
            for (let i = 0; i < shuffled.length; i += 25) await store.persistBatch(shuffled.slice(i, i + 25));
          }),
        );
        assert.equal((await first.findApplication('tok'))?.chatsCount, chats);
        for (let c = 1; c <= chats; c++) {
          const chat = await first.findChat(app.id, c);
          assert.ok(chat);
          assert.equal(chat.messagesCount, perChat, `chat ${c} count`);
          assert.equal(chat.createdAt, at(c), `chat ${c} keeps its chat.create time, the earliest`);
          const listed = await first.listMessages(chat, { limit: 1000 });
          assert.equal(listed.items.length, perChat);
          assert.equal(await first.maxMessageNumber(app.id, c), perChat);
          assert.equal(
            (await first.findIdempotency('chats:tok', `k${c}`, at(0)))?.response,
            `{"number":${c}}`,
          );
        }
      }));

    it('a batch too big for one statement is stored whole, with exact counts', () =>
      withDatabase(async (url, closeLater) => {
        const store = await fresh(closeLater, url);
        const app = await store.createApplication({ token: 'tok', name: 'app', at: at(0) });
        // 48 bodies of 64 KiB (with quotes and backslashes, which escaping doubles) span several inserts.
        const body = (n: number) => `${n}:${'\'\\"x'.repeat(16383)}`;
        const batch: WriteCommand[] = [];
        for (let n = 1; n <= 48; n++)
          batch.push({
            kind: 'message.create',
            applicationId: app.id,
            chatNumber: 1 + (n % 3),
            number: n,
            body: body(n),
            at: at(n),
          });
        await store.persistBatch(batch);
        await store.persistBatch(batch);
        for (let c = 1; c <= 3; c++) assert.equal((await store.findChat(app.id, c))?.messagesCount, 16);
        const chat = (await store.findChat(app.id, 2))!;
        assert.ok((await store.findMessage(chat, 1))?.body === body(1));
      }));

    it('times keep their milliseconds whatever the process time zone', () =>
      withDatabase(async (url, closeLater) => {
        const zone = process.env.TZ;
        process.env.TZ = 'Pacific/Kiritimati'; // UTC+14: any local-time conversion would show
        try {
          const store = await fresh(closeLater, url);
          const created = '2026-03-29T01:30:00.123Z'; // inside a European DST switch
          const app = await store.createApplication({ token: 'tok', name: 'app', at: created });
          assert.equal((await store.findApplication('tok'))?.createdAt, created);
          await store.persistBatch([
            {
              kind: 'message.create',
              applicationId: app.id,
              chatNumber: 1,
              number: 1,
              body: 'x',
              at: '2026-12-31T23:59:59.999Z',
            },
          ]);
          const chat = (await store.findChat(app.id, 1))!;
          assert.equal(chat.createdAt, '2026-12-31T23:59:59.999Z');
          assert.equal((await store.findMessage(chat, 1))?.updatedAt, '2026-12-31T23:59:59.999Z');
          const page = await store.listApplications({ limit: 1 });
          assert.equal(page.items[0]?.createdAt, created);
          // Stored as the UTC wall time, readable as such in plain SQL.
          const pool = createMysqlPool(url, { connectionLimit: 1 });
          closeLater(pool);
          const [rows] = await pool.query<RowDataPacket[]>('SELECT created_at FROM applications');
          assert.equal(rows[0]!.created_at, '2026-03-29 01:30:00.123');
        } finally {
          if (zone === undefined) delete process.env.TZ;
          else process.env.TZ = zone;
        }
      }));

    it('finds a token only by its exact value: the PAD SPACE collation is not trusted', () =>
      withDatabase(async (url, closeLater) => {
        const store = await fresh(closeLater, url);
        await store.createApplication({ token: 'abc', name: 'app', at: at(0) });
        assert.equal(await store.findApplication('abc '), undefined);
        assert.equal((await store.findApplication('abc'))?.name, 'app');
      }));

    it('answers reads and writes with MysqlUnavailableError (a 503) while the server is gone, and serves again after', () =>
      withDatabase(async (url, closeLater) => {
        const relay = new Relay(url);
        await relay.open();
        const through = new URL(url);
        through.port = String(relay.port);
        const store = await openMysqlStore(through.href, { connectionLimit: 2 });
        closeLater(store);
        try {
          const app = await store.createApplication({ token: 'gone', name: 'gone', at: at(0) });
          await relay.cut();
          await assert.rejects(store.findApplication('gone'), MysqlUnavailableError);
          const chat: WriteCommand = { kind: 'chat.create', applicationId: app.id, number: 1, at: at(1) };
          await assert.rejects(store.persistBatch([chat]), MysqlUnavailableError);
          await assert.rejects(store.maxChatNumber(app.id), MysqlUnavailableError);
          await relay.open();
          assert.equal((await store.findApplication('gone'))?.name, 'gone');
        } finally {
          await relay.cut();
        }
      }));

    it('a read, a write or an edit a stalled server does not answer rejects with MysqlUnavailableError in time', () =>
      withDatabase(async (url) => {
        // A relay that holds back every answer of the server while hung, as a stopped server would.
        const relay = await openStallingRelay(url, 'replies');
        const store = await openMysqlStore(relay.url, {
          connectionLimit: 2,
          readTimeoutMs: 300,
          writeTimeoutMs: 600,
        });
        /** Rejects with MysqlUnavailableError after about `ms`, saying whether the change may yet apply. */
        const givesUpAfter = async (ms: number, work: Promise<unknown>, write: boolean) => {
          const started = Date.now();
          await assert.rejects(work, (error: unknown) => {
            assert.ok(error instanceof MysqlUnavailableError, String(error));
            assert.equal(/may still be applied/.test(error.message), write, error.message);
            return true;
          });
          const waited = Date.now() - started;
          assert.ok(
            waited >= ms - 10 && waited < ms + 2500,
            `rejected after ${waited} ms, not after about ${ms}`,
          );
        };
        try {
          const app = await store.createApplication({ token: 'slow', name: 'slow', at: at(0) });
          await store.persistBatch([
            { kind: 'message.create', applicationId: app.id, chatNumber: 1, number: 1, body: 'a', at: at(1) },
          ]);
          const chat = (await store.findChat(app.id, 1))!;
          relay.hang();
          await givesUpAfter(300, store.findApplication('slow'), false);
          await givesUpAfter(600, store.renameApplication(app.id, 'renamed', at(2)), true);
          // Both connections now wait for answers that never come: the edit waits for a connection, and
          // its time bound covers that wait too.
          await givesUpAfter(600, store.editMessage(chat, 1, 'edited', at(3)), true);
          await givesUpAfter(600, store.createApplication({ token: 'new', name: 'new', at: at(4) }), true);
        } finally {
          relay.close();
          await store.close().catch(() => {});
        }
      }));

    it('refuses an application cursor whose time the server never issued', () =>
      withDatabase(async (url, closeLater) => {
        const store = await fresh(closeLater, url);
        await assert.rejects(
          store.listApplications({ limit: 2, after: { createdAt: 'yesterday', token: 'x' } }),
          ValidationError,
        );
      }));
  });
});

describe('mysql store: unreachable server', () => {
  it('opening it rejects with an error that names MySQL, not a bare socket error', async () => {
    // A port that was just free: nothing listens on it.
    const probe = createServer().listen(0, '127.0.0.1');
    await new Promise((resolve) => probe.once('listening', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise((resolve) => probe.close(resolve));
    await assert.rejects(
      openMysqlStore(`mysql://chat:chat@127.0.0.1:${port}/chat`, { connectionLimit: 1 }),
      /^Error: mysql: cannot open the store and migrate it: .*ECONNREFUSED/,
    );
  });
});
