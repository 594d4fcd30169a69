/**
 * The stack scripts' own bookkeeping, without the services: `scripts/stack/down.sh` signals only processes
 * `up.sh` recorded (a pid file whose pid now belongs to another program is left alone), and `up.sh`
 * refuses a port another program holds before it starts anything.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { eventually } from './helpers/server.ts';

const ROOT = new URL('..', import.meta.url).pathname;

function script(name: string, args: string[], env: Record<string, string> = {}) {
  return new Promise<{ code: number; output: string }>((resolve) => {
    execFile(
      'bash',
      [join(ROOT, 'scripts/stack', name), ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env }, timeout: 60_000 },
      (error, stdout, stderr) =>
        resolve({ code: error ? Number(error.code ?? 1) : 0, output: stdout + stderr }),
    );
  });
}

/** Field 22 of /proc/PID/stat, as pids.sh reads it. */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(') ') + 2).split(' ')[19]!;
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

function listen(server: Server, port = 0): Promise<number> {
  return new Promise((resolve) =>
    server.listen(port, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('stack scripts', () => {
  const state = mkdtempSync(join(tmpdir(), 'chat-stack-scripts-'));
  const children: ChildProcess[] = [];
  after(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(state, { recursive: true, force: true });
  });

  it('down.sh stops a recorded process, and leaves alone one whose pid was reused', async () => {
    mkdirSync(join(state, 'run'), { recursive: true });
    const ours = spawn('sleep', ['60']);
    const stranger = spawn('sleep', ['60']);
    children.push(ours, stranger);
    writeFileSync(join(state, 'run/worker.pid'), `${ours.pid}\n`);
    writeFileSync(join(state, 'run/worker.start'), `${startTime(ours.pid!)}\n`);
    // The pid file names a live process, but not the one started then: the kernel reused the pid.
    writeFileSync(join(state, 'run/api-1.pid'), `${stranger.pid}\n`);
    writeFileSync(join(state, 'run/api-1.start'), `${Number(startTime(stranger.pid!)) - 1}\n`);

    const down = await script('down.sh', [state]);
    assert.equal(down.code, 0, down.output);
    await eventually(async () => !alive(ours), 5000, 'the recorded worker stopped');
    assert.equal(ours.signalCode, 'SIGTERM');
    assert.ok(alive(stranger), 'a process that only shares a recorded pid is not signalled');
    assert.ok(!existsSync(join(state, 'run/api-1.pid')), 'the stale pid file is removed');
    assert.ok(!existsSync(join(state, 'run/worker.start')));
  });

  it('down.sh stops a process recorded by an older up.sh (no start time) only when it is ours', async () => {
    mkdirSync(join(state, 'run'), { recursive: true });
    // What up.sh runs, by its command line; and a stranger that merely has the recorded pid.
    const legacy = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'src/main.ts']);
    const stranger = spawn('sleep', ['60']);
    children.push(legacy, stranger);
    writeFileSync(join(state, 'run/api-2.pid'), `${legacy.pid}\n`);
    writeFileSync(join(state, 'run/api-3.pid'), `${stranger.pid}\n`);
    const down = await script('down.sh', [state]);
    assert.equal(down.code, 0, down.output);
    await eventually(async () => !alive(legacy), 5000, 'the legacy API process stopped');
    assert.ok(alive(stranger), 'a stranger with a recorded pid and no start time is left alone');
  });

  it('up.sh refuses a port another program holds, before it starts anything', async () => {
    // Another program on the port: it accepts connections, as a stranger's HTTP server would.
    const squatter = createServer((socket) => {
      socket.on('error', () => {});
      socket.destroy();
    });
    const port = await listen(squatter);
    try {
      const dir = join(state, 'up');
      const up = await script('up.sh', [dir], {
        ADMIN_TOKEN: 'stack-scripts-test-admin-token',
        STACK_PORT: String(port),
        API_PROCESSES: '1',
        API_BASE_PORT: String(await freePort()),
        WORKER_PORT: String(await freePort()),
        INDEXER_PORT: String(await freePort()),
      });
      assert.notEqual(up.code, 0);
      assert.match(up.output, new RegExp(`port ${port} \\(for nginx\\) is in use by another program`));
      assert.ok(!existsSync(join(dir, 'services')), 'no service was started');
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
