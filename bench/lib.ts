/** Process, port, memory and machine helpers for the benchmark. Everything stays on 127.0.0.1. */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, totalmem } from 'node:os';
import { DatabaseSync } from 'node:sqlite';

export const HOST = '127.0.0.1';
export const ROOT = new URL('..', import.meta.url).pathname;
/** Node 24 from the `node` dependency, whatever `node` is on PATH. */
export const NODE = `${ROOT}node_modules/.bin/node`;

/** A port that was free a moment ago (bind to 0, read it, release it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, HOST, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export interface Child {
  process: ChildProcess;
  pid: number;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves to the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

export function startChild(args: string[], env: Record<string, string>): Child {
  const child = spawn(NODE, args, {
    cwd: ROOT,
    // Only what is listed: nothing (e.g. SQLITE_SYNCHRONOUS) leaks in from the caller's environment.
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    output += chunk;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    process: child,
    pid: child.pid!,
    output: () => output,
    async stop(graceMs = 20_000) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** Polls `url` until it answers 200 (or the child dies, or the deadline passes). */
export async function waitReady(url: string, child: Child, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) throw new Error(`process exited before ready:\n${child.output()}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms:\n${child.output()}`);
}

/** Samples a process's resident set (VmRSS) every `intervalMs`; `stop` returns the peak, in MiB. */
export function sampleRss(pid: number, intervalMs = 200): { stop(): number } {
  let peakKb = 0;
  const read = () => {
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      if (kb > peakKb) peakKb = kb;
    } catch {}
  };
  read();
  const timer = setInterval(read, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      read();
      return Math.round(peakKb / 1024);
    },
  };
}

/** Peak resident set over the process's whole life (VmHWM), in MiB. */
export function highWaterMark(pid: number): number | undefined {
  try {
    const kb = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
    return kb === undefined ? undefined : Math.round(Number(kb) / 1024);
  } catch {
    return undefined;
  }
}

export interface Machine {
  cpu: string;
  cores: number;
  ramGiB: number;
  node: string;
  sqlite: string;
  kernel: string;
}

export function describeMachine(): Machine {
  let cpu = 'unknown';
  try {
    cpu = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {}
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {}
  const db = new DatabaseSync(':memory:');
  const sqlite = (db.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v;
  db.close();
  return {
    cpu,
    cores: availableParallelism(),
    ramGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    sqlite,
    kernel,
  };
}

/** Error-level (pino level >= 50) lines of a server's output. */
export function errorLines(output: string): string[] {
  const lines: string[] = [];
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) {
      if (line.trim() !== '') lines.push(line);
      continue;
    }
    try {
      if (((JSON.parse(line) as { level?: number }).level ?? 0) >= 50) lines.push(line);
    } catch {
      lines.push(line);
    }
  }
  return lines;
}

/** The ceiling: bench/baseline-server.ts answering every request with `responseBody` (see that file). */
export async function startCeilingServer(responseBody: string): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  const child = startChild(['bench/baseline-server.ts'], { PORT: String(port), RESPONSE_BODY: responseBody });
  const url = `http://${HOST}:${port}`;
  await waitReady(url, child);
  return { child, url };
}

/** A message response as the real server writes it, for the ceiling to answer with. */
export function messageResponse(body: string): string {
  const at = new Date().toISOString();
  return JSON.stringify({ number: 123456, chat_number: 1, body, created_at: at, updated_at: at });
}
