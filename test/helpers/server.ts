/**
 * Starts the real server (`node src/main.ts`) as a child process on a free port with its own data
 * directory, for HTTP tests. No mocks: the tests talk to what `npm start` runs.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, type ChildProcessByStdio, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;

export interface TestServer {
  url: string;
  dataDir: string;
  process: ChildProcess;
  /** Everything the server wrote to stdout/stderr so far (pino JSON lines). */
  output(): string;
  /** SIGTERM and wait for exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: no shutdown work at all. */
  kill(): Promise<void>;
}

export interface StartOptions {
  env?: Record<string, string>;
  /** Reuse a data directory (restart after a crash). */
  dataDir?: string;
  /** Keep the data directory when the server stops (the caller removes it). */
  keepData?: boolean;
  /** The role to run (default all). */
  role?: 'all' | 'api' | 'worker' | 'indexer';
}

export async function startServer(options: StartOptions = {}): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'chat-test-'));
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN, options.role ?? 'all'], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: String(port),
      DATA_DIR: dataDir,
      LOG_LEVEL: 'info',
      SQLITE_SYNCHRONOUS: 'NORMAL',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = outputOf(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `server exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${output()}`,
      );
    }
    const healthy = await fetch(`${url}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (healthy) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready within 15 s:\n${output()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }

  const cleanup = () => {
    if (!options.keepData && !options.dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
  return {
    url,
    dataDir,
    process: child,
    output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await exited;
      cleanup();
      return code;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** Everything `child` writes to stdout and stderr, as one text, read when called. */
export function outputOf(child: ChildProcessByStdio<null, Readable, Readable>): () => string {
  let output = '';
  for (const stream of [child.stdout, child.stderr]) {
    stream.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
  }
  return () => output;
}

/** A port the kernel just handed out and released; the server binds it right after. */
async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers and assert on their shape
export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** fetch with a JSON body, returning the parsed JSON (or the raw text when the answer is not JSON). */
// biome-ignore lint/suspicious/noExplicitAny: see JsonResponse
export async function api<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    (init.headers as Record<string, string>)['content-type'] ??= 'application/json';
  }
  const response = await fetch(base + path, init);
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {}
  return { status: response.status, headers: response.headers, body: parsed as T };
}

/** Polls `probe` until it returns a truthy value or the deadline passes (then throws with the last value). */
export async function eventually<T>(
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 10_000,
  what = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined | null | false;
  while (Date.now() < deadline) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`${what} not reached within ${timeoutMs} ms; last value: ${JSON.stringify(last)}`);
}

/**
 * A parent's count changed with `created` (201 responses): its creation time stayed, and its updated_at
 * moved with the count, to no earlier than the newest child's creation.
 */
export function assertTouchedByCount(
  before: { created_at: string },
  after: { created_at: string; updated_at: string },
  created: JsonResponse[],
): void {
  assert.equal(after.created_at, before.created_at);
  const newest = created
    .map((response) => response.body.created_at as string)
    .sort()
    .at(-1)!;
  assert.ok(after.updated_at >= newest, `${after.updated_at} >= ${newest}`);
}
