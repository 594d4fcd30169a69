/**
 * The commands of `node src/main.ts`. `backup <file>` (`npm run backup -- <file>`): a consistent copy of
 * the embedded database, taken while the server runs and writes, from which a server starts with every
 * message the copy holds, searchable. `requeue-dead-letters` is tested against the broker in
 * src/queue/rabbitmq/queue.test.ts; here, what it and an unknown command refuse.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { api, outputOf, startServer } from './helpers/server.ts';

const MAIN = new URL('../src/main.ts', import.meta.url).pathname;
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'chat-backup-'));
  dirs.push(dir);
  return dir;
}

/** Runs a command (without blocking this process); its exit code and output (pino JSON lines). */
async function run(env: Record<string, string>, ...args: string[]) {
  const child = spawn(process.execPath, [MAIN, ...args], {
    env: { PATH: process.env.PATH, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = outputOf(child);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output: output() };
}

function backup(env: Record<string, string>, ...args: string[]) {
  return run(env, 'backup', ...args);
}

describe('backup of the embedded database', () => {
  it('copies a running, writing server consistently; a server started on the copy has it all', async () => {
    const server = await startServer({ keepData: true });
    dirs.push(server.dataDir);
    const token = (await api(server.url, 'POST', '/applications', { name: 'kept' })).body.token as string;
    await api(server.url, 'POST', `/applications/${token}/chats`);
    const path = `/applications/${token}/chats/1/messages`;
    const before: number[] = [];
    for (let i = 0; i < 10; i++) {
      const created = await Promise.all(
        Array.from({ length: 20 }, (_, j) => api(server.url, 'POST', path, { body: `before ${i}-${j}` })),
      );
      before.push(...created.map((r) => r.body.number as number));
    }
    // Writes go on during the copy.
    let writing = true;
    const during = (async () => {
      let acknowledged = 0;
      while (writing) {
        const batch = await Promise.all(
          Array.from({ length: 10 }, () => api(server.url, 'POST', path, { body: 'during the copy' })),
        );
        acknowledged += batch.filter((r) => r.status === 201).length;
      }
      return acknowledged;
    })();
    const target = join(tempDir(), 'copy.db');
    const result = await backup({ DATA_DIR: server.dataDir }, target);
    writing = false;
    assert.ok((await during) > 0, 'creates were answered during the copy');
    assert.equal(result.code, 0, result.output);
    assert.match(result.output, /"msg":"backup written"/);
    assert.equal(await server.stop(), 0);

    const restored = tempDir();
    copyFileSync(target, join(restored, 'chat.db'));
    const second = await startServer({ dataDir: restored });
    try {
      const numbers: number[] = [];
      for (;;) {
        const after = numbers.at(-1) ?? 0;
        const page: { number: number }[] = (await api(second.url, 'GET', `${path}?limit=1000&after=${after}`))
          .body;
        if (page.length === 0) break;
        numbers.push(...page.map((m) => m.number));
      }
      for (const number of before) assert.ok(numbers.includes(number), `message ${number} in the copy`);
      // One committed state: numbers 1..n without a hole, and the count agrees with the rows.
      assert.deepEqual(
        numbers,
        Array.from({ length: numbers.length }, (_, i) => i + 1),
      );
      const chat = await api(second.url, 'GET', `/applications/${token}/chats/1`);
      assert.equal(chat.body.messages_count, numbers.length);
      // The search index is rebuilt from the copy.
      const found = await api(second.url, 'GET', `${path}/search?q=BEFORE 9-19`);
      assert.equal(found.status, 200, JSON.stringify(found.body));
      assert.deepEqual(
        found.body.map((m: { body: string }) => m.body),
        ['before 9-19'],
      );
      // Numbering goes on after the copy's last message.
      const next = await api(second.url, 'POST', path, { body: 'after the restore' });
      assert.equal(next.body.number, numbers.length + 1);
    } finally {
      await second.stop();
    }
  });

  it('leaves the database of a killed server as it was, copies its WAL, clears abandoned copies', async () => {
    const server = await startServer({ keepData: true });
    dirs.push(server.dataDir);
    const token = (await api(server.url, 'POST', '/applications', { name: 'killed' })).body.token as string;
    await api(server.url, 'POST', `/applications/${token}/chats`);
    for (let i = 1; i <= 30; i++)
      await api(server.url, 'POST', `/applications/${token}/chats/1/messages`, { body: `kept ${i}` });
    await server.kill();
    const files = ['chat.db', 'chat.db-wal'].map((name) => join(server.dataDir, name));
    assert.ok(existsSync(files[1]!), 'the killed server left its WAL');
    const hashes = () => files.map((file) => createHash('sha256').update(readFileSync(file)).digest('hex'));
    const before = hashes();
    const target = join(tempDir(), 'copy.db');
    const result = await backup({ DATA_DIR: server.dataDir }, target);
    assert.equal(result.code, 0, result.output);
    assert.deepEqual(hashes(), before);
    assert.match(result.output, /"messages":30/);

    // A copy abandoned by a killed backup is removed by the next one; a running backup's is not.
    const exited = spawn(process.execPath, ['-e', '']);
    await once(exited, 'exit');
    const abandoned = `${target}2.partial-${exited.pid}`;
    const running = `${target}2.partial-${process.pid}`;
    for (const file of [abandoned, `${abandoned}-journal`, running]) copyFileSync(MAIN, file);
    assert.equal((await backup({ DATA_DIR: server.dataDir }, `${target}2`)).code, 0);
    assert.equal(existsSync(abandoned), false);
    assert.equal(existsSync(`${abandoned}-journal`), false);
    assert.equal(existsSync(running), true);
  });

  it('refuses an existing target, a missing database, no target, and the distributed mode', async () => {
    const dataDir = tempDir();
    const missing = await backup({ DATA_DIR: dataDir }, join(tempDir(), 'copy.db'));
    assert.equal(missing.code, 1);
    assert.match(missing.output, /does not exist/);
    const noTarget = await backup({ DATA_DIR: dataDir });
    assert.equal(noTarget.code, 2);
    assert.match(noTarget.output, /usage: backup <file>/);
    const existing = join(tempDir(), 'taken.db');
    copyFileSync(MAIN, existing);
    assert.equal(existsSync(existing), true);
    const refused = await backup({ DATA_DIR: dataDir }, existing);
    assert.equal(refused.code, 1);
    assert.match(refused.output, /already exists/);
    const distributed = await backup(
      {
        MYSQL_URL: 'mysql://127.0.0.1:1/x',
        REDIS_URL: 'redis://127.0.0.1:1',
        AMQP_URL: 'amqp://127.0.0.1:1',
        SEARCH_URL: 'http://127.0.0.1:1',
      },
      join(tempDir(), 'copy.db'),
    );
    assert.equal(distributed.code, 2);
    assert.match(distributed.output, /mariadb-dump/);
  });
});

describe('other commands', () => {
  it('requeue-dead-letters refuses the embedded mode; an unknown command lists the known ones', async () => {
    const requeue = await run({ DATA_DIR: tempDir() }, 'requeue-dead-letters');
    assert.equal(requeue.code, 2);
    assert.match(requeue.output, /set AMQP_URL/);
    const unknown = await run({ DATA_DIR: tempDir() }, 'restore');
    assert.equal(unknown.code, 2);
    assert.match(unknown.output, /reindex, backup, requeue-dead-letters/);
  });
});
