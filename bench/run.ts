/**
 * Benchmark: `node bench/run.ts` (or `npm run bench`). Targets 127.0.0.1 only and stops by itself.
 *
 *   ceiling  a bare node:http server answering POST with a 201 JSON body the size of a message response
 *   create   POST /applications/:token/chats/1/messages on the real server (fresh data dir, SQLITE_SYNCHRONOUS
 *            at its default, FULL), then a correctness check: messages stored == 201s received
 *   list     GET …/chats/1/messages?limit=50&after=<random> over the chat the create run filled
 *   search   GET …/messages/search?q=<term> on a 100 000-message chat in a 1 000 000-message database
 *            (seeded once through the store adapter and cached in bench/.cache/)
 *
 * Prints one line per scenario, a Markdown table and the machine; writes bench/results/latest.json.
 * Knobs (environment): BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 2), BENCH_CONNECTIONS
 * (default 100), BENCH_ONLY (comma list of ceiling,create,list,search), BENCH_CPU_PROF (a directory: the
 * real server runs with --cpu-prof and writes its profile there), BENCH_SEARCH_READERS (the server's
 * SEARCH_READERS; unset: its default).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import autocannon, { type AutocannonOptions, type AutocannonResult } from 'autocannon';
import {
  type Child,
  describeMachine,
  errorLines,
  freePort,
  HOST,
  highWaterMark,
  type Machine,
  messageResponse,
  ROOT,
  sampleRss,
  startCeilingServer,
  startChild,
  waitReady,
} from './lib.ts';
import {
  ABSENT_SHORT_WORD,
  COMMON_WORD,
  ensureSeeded,
  RARE_WORD,
  type SeedManifest,
  SHORT_WORD,
  seedDir,
} from './seed.ts';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 100);
const ONLY = new Set(
  (process.env.BENCH_ONLY ?? 'ceiling,create,list,search').split(',').map((s) => s.trim()),
);
const CPU_PROF_DIR = process.env.BENCH_CPU_PROF;
const CACHE = join(ROOT, 'bench', '.cache');
const RESULTS = join(ROOT, 'bench', 'results');
/** Whole-run safety net: whatever happens, the benchmark ends. */
const WATCHDOG_MS = 20 * 60_000;

const MESSAGE_BODY = 'hello bench: the quick brown fox jumps over the lazy dog 0123456789';
const JSON_HEADERS = { 'content-type': 'application/json' };

const TARGETS = {
  createRatio: 0.4,
  createP99Ms: 20,
  searchP99Ms: 20,
};

interface Row {
  scenario: string;
  connections: number;
  seconds: number;
  requests: number;
  rps: number;
  /** rps / ceiling rps. */
  ratio: number | undefined;
  p50: number;
  p99: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  peakRssMiB: number;
  note?: string;
}

const rows: Row[] = [];
const children = new Set<Child>();
let ceilingRps: number | undefined;

function log(line: string): void {
  console.log(line);
}

/** Runs autocannon while sampling the server's RSS; records and prints the row. */
async function measure(
  scenario: string,
  pid: number,
  options: AutocannonOptions,
  note?: string,
  isCeiling = false,
): Promise<{ row: Row; result: AutocannonResult }> {
  const rss = sampleRss(pid);
  const result = await autocannon({
    timeout: 10,
    ...options,
    connections: options.connections ?? CONNECTIONS,
  });
  const peakRssMiB = rss.stop();
  const requests = result.requests.total;
  const rps = requests / result.duration;
  if (isCeiling) ceilingRps = rps;
  const row: Row = {
    scenario,
    connections: result.connections,
    seconds: result.duration,
    requests,
    rps: Math.round(rps),
    ratio: ceilingRps ? rps / ceilingRps : undefined,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    peakRssMiB,
    ...(note && { note }),
  };
  rows.push(row);
  log(
    `${scenario.padEnd(34)} c=${String(row.connections).padStart(3)}  ${String(row.rps).padStart(6)} req/s` +
      `  ${row.ratio === undefined ? '   –  ' : `${(row.ratio * 100).toFixed(1).padStart(5)}%`} of ceiling` +
      `  p50 ${row.p50} ms  p99 ${row.p99} ms  non-2xx ${row.non2xx}  errors ${row.errors}` +
      `  peak RSS ${peakRssMiB} MiB${note ? `  (${note})` : ''}`,
  );
  return { row, result };
}

function serverArgs(): string[] {
  return [...(CPU_PROF_DIR ? ['--cpu-prof', '--cpu-prof-dir', CPU_PROF_DIR] : []), 'src/main.ts', 'all'];
}

async function startRealServer(dataDir: string): Promise<{ child: Child; url: string }> {
  const port = await freePort();
  // SQLITE_SYNCHRONOUS deliberately unset: the default (FULL) is what is measured.
  const env: Record<string, string> = { HOST, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn' };
  if (process.env.BENCH_SEARCH_READERS) env.SEARCH_READERS = process.env.BENCH_SEARCH_READERS;
  const child = startChild(serverArgs(), env);
  children.add(child);
  const url = `http://${HOST}:${port}`;
  await waitReady(`${url}/readyz`, child);
  return { child, url };
}

async function stopServer(child: Child, name: string): Promise<string[]> {
  const code = await child.stop();
  children.delete(child);
  const problems = errorLines(child.output());
  if (code !== 0) problems.push(`${name} exited with code ${code}`);
  return problems;
}

async function call<T>(url: string, method: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? {} : JSON_HEADERS,
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as T };
}

// ------------------------------------------------------------------------------------------- ceiling

async function runCeiling(): Promise<void> {
  const { child, url } = await startCeilingServer(messageResponse(MESSAGE_BODY));
  children.add(child);
  await measure(
    'ceiling: bare node:http POST 201',
    child.pid,
    {
      url: `${url}/applications/x/chats/1/messages`,
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ body: MESSAGE_BODY }),
      duration: DURATION,
      warmup: { connections: CONNECTIONS, duration: WARMUP },
    },
    undefined,
    true,
  );
  await stopServer(child, 'ceiling server');
}

// ------------------------------------------------------------------------------------ create + list

interface Correctness {
  ok: boolean;
  acknowledged: number;
  stored: number;
  maxNumber: number;
  serverErrors: string[];
  line: string;
}

async function runCreateAndList(): Promise<Correctness> {
  const dataDir = mkdtempSync(join(tmpdir(), 'chat-bench-'));
  try {
    const { child, url } = await startRealServer(dataDir);
    const app = await call<{ token: string }>(`${url}/applications`, 'POST', { name: 'bench' });
    if (app.status !== 201) throw new Error(`creating the application answered ${app.status}`);
    const token = app.body.token;
    for (let i = 0; i < 2; i++) {
      const chat = await call(`${url}/applications/${token}/chats`, 'POST');
      if (chat.status !== 201) throw new Error(`creating a chat answered ${chat.status}`);
    }
    const post = (chat: number): AutocannonOptions => ({
      url: `${url}/applications/${token}/chats/${chat}/messages`,
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ body: MESSAGE_BODY }),
    });

    // Warm up on chat 2, then measure on chat 1 with a fixed number of requests (the warm-up's rate times
    // the duration): autocannon then waits for every answer, so 201s received can be compared exactly
    // with rows stored. A duration-bounded run would cut requests off in flight.
    const warm = await autocannon({ ...post(2), connections: CONNECTIONS, duration: WARMUP });
    const amount = Math.max(CONNECTIONS * 10, Math.round((warm.requests.total / warm.duration) * DURATION));
    const { result } = await measure('create message (POST)', child.pid, { ...post(1), amount });
    const acknowledged = result['2xx'];
    // The search index follows the writes on its own thread, and a search waits until it holds every write
    // acknowledged before it began: the first answer after the run shows how far behind the run left it.
    const runEnded = performance.now();
    const probe = `${url}/applications/${token}/chats/1/messages/search?q=lazy&limit=1`;
    let search = await call(probe, 'GET');
    while (search.status === 503 && performance.now() - runEnded < 60_000) search = await call(probe, 'GET');
    log(
      `search index: caught up ${Math.round(performance.now() - runEnded)} ms after the create run ` +
        `(first search answered ${search.status})`,
    );

    if (ONLY.has('list')) {
      const span = Math.max(1, acknowledged - 50);
      let seed = 12345;
      const nextAfter = () => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed % span;
      };
      const base = `/applications/${token}/chats/1/messages?limit=50&after=`;
      await measure(
        'list messages (GET limit=50)',
        child.pid,
        {
          url,
          duration: DURATION,
          warmup: { connections: CONNECTIONS, duration: WARMUP },
          requests: [
            { method: 'GET', setupRequest: (request) => ({ ...request, path: `${base}${nextAfter()}` }) },
          ],
        },
        `after spread over ${acknowledged.toLocaleString('en-US')} messages`,
      );
    }

    const serverErrors = await stopServer(child, 'server');
    // Count what is stored, after a clean shutdown (the queue is drained by then).
    const db = new DatabaseSync(join(dataDir, 'chat.db'), { readOnly: true });
    const stored = db
      .prepare(
        `SELECT count(*) AS n, coalesce(max(m.number), 0) AS maxNumber FROM messages m
         JOIN chats c ON c.id = m.chat_id JOIN applications a ON a.id = c.application_id
         WHERE a.token = ? AND c.number = 1`,
      )
      .get(token) as { n: number; maxNumber: number };
    db.close();
    const ok =
      stored.n === acknowledged &&
      stored.maxNumber === stored.n &&
      result.errors === 0 &&
      result.non2xx === 0 &&
      serverErrors.length === 0;
    const line =
      `correctness: ${ok ? 'OK' : 'FAILED'} — 201 responses ${acknowledged}, messages stored ${stored.n} ` +
      `(numbers 1..${stored.maxNumber}${stored.maxNumber === stored.n ? ', no gap' : ', GAP'}), ` +
      `non-2xx ${result.non2xx}, client errors ${result.errors}, server error lines ${serverErrors.length}`;
    log(line);
    for (const problem of serverErrors.slice(0, 5)) log(`  server: ${problem.slice(0, 300)}`);
    return { ok, acknowledged, stored: stored.n, maxNumber: stored.maxNumber, serverErrors, line };
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// ------------------------------------------------------------------------------------------- search

async function runSearch(manifest: SeedManifest): Promise<string[]> {
  const { child, url } = await startRealServer(seedDir(CACHE));
  const path = `/applications/${manifest.token}/chats/${manifest.searchChat}/messages/search?q=`;
  const terms = [
    { term: RARE_WORD, label: 'rare', connections: [10, CONNECTIONS] },
    { term: COMMON_WORD, label: 'common', connections: [10, CONNECTIONS] },
    { term: SHORT_WORD, label: '2-char', connections: [10, CONNECTIONS] },
    { term: ABSENT_SHORT_WORD, label: '2-char, absent: bounded scan', connections: [10] },
  ];
  for (const { term, label, connections } of terms) {
    const matches = manifest.matches[term] ?? 0;
    const share = (matches / manifest.perChat) * 100;
    const probe = await call<unknown[]>(`${url}${path}${term}`, 'GET');
    if (probe.status !== 200 || probe.body.length !== Math.min(50, matches)) {
      throw new Error(
        `search for ${term} answered ${probe.status} with ${probe.body.length} rows, expected ${Math.min(50, matches)}`,
      );
    }
    for (const c of connections) {
      await measure(
        `search "${term}" (${label})`,
        child.pid,
        {
          url: `${url}${path}${term}`,
          connections: c,
          duration: DURATION,
          warmup: { connections: c, duration: WARMUP },
        },
        `${matches.toLocaleString('en-US')} of ${manifest.perChat.toLocaleString('en-US')} messages match (${share < 1 ? share.toFixed(2) : share.toFixed(1)}%)`,
      );
    }
  }
  const hwm = highWaterMark(child.pid);
  if (hwm !== undefined) log(`search server VmHWM: ${hwm} MiB`);
  return stopServer(child, 'search server');
}

// ------------------------------------------------------------------------------------------- report

function table(machine: Machine): string {
  const cell = (n: number | undefined, digits = 0) => (n === undefined ? '–' : n.toFixed(digits));
  const lines = [
    '| Scenario | Connections | Requests/s | % of ceiling | p50 (ms) | p99 (ms) | Non-2xx | Errors | Peak RSS (MiB) |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.scenario} | ${r.connections} | ${r.rps} | ${r.ratio === undefined ? '–' : `${cell(r.ratio * 100, 1)}%`} | ` +
        `${r.p50} | ${r.p99} | ${r.non2xx} | ${r.errors} | ${r.peakRssMiB} |`,
    );
  }
  lines.push(
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB} GiB RAM, Linux ${machine.kernel}; ` +
      `Node ${machine.node}; SQLite ${machine.sqlite}. Load generator (autocannon, one process) on the same ` +
      `machine; ${DURATION} s per scenario after ${WARMUP} s of warm-up; SQLITE_SYNCHRONOUS=FULL (default).`,
  );
  return lines.join('\n');
}

function targets(): { name: string; met: boolean; detail: string }[] {
  const out: { name: string; met: boolean; detail: string }[] = [];
  const create = rows.find((r) => r.scenario.startsWith('create'));
  if (create) {
    if (create.ratio !== undefined) {
      out.push({
        name: `create ≥ ${TARGETS.createRatio * 100}% of ceiling`,
        met: create.ratio >= TARGETS.createRatio,
        detail: `${(create.ratio * 100).toFixed(1)}%`,
      });
    }
    out.push({
      name: `create p99 ≤ ${TARGETS.createP99Ms} ms at ${create.connections} connections`,
      met: create.p99 <= TARGETS.createP99Ms,
      detail: `${create.p99} ms`,
    });
  }
  for (const r of rows.filter((row) => row.scenario.startsWith('search'))) {
    out.push({
      name: `${r.scenario} p99 ≤ ${TARGETS.searchP99Ms} ms at ${r.connections} connections`,
      met: r.p99 <= TARGETS.searchP99Ms,
      detail: `${r.p99} ms`,
    });
  }
  return out;
}

async function main(): Promise<void> {
  const machine = describeMachine();
  log(
    `bench: ${machine.cpu}, ${machine.cores} cores, ${machine.ramGiB} GiB, Node ${machine.node}, SQLite ${machine.sqlite}`,
  );
  let manifest: SeedManifest | undefined;
  if (ONLY.has('search')) manifest = await ensureSeeded(CACHE, log);

  if (ONLY.has('ceiling')) await runCeiling();
  let correctness: Correctness | undefined;
  if (ONLY.has('create') || ONLY.has('list')) correctness = await runCreateAndList();
  let searchErrors: string[] = [];
  if (manifest) {
    searchErrors = await runSearch(manifest);
    if (searchErrors.length > 0)
      log(`search server logged errors:\n  ${searchErrors.slice(0, 5).join('\n  ')}`);
  }

  const met = targets();
  const markdown = table(machine);
  log(`\n${markdown}\n`);
  if (correctness) log(correctness.line);
  for (const t of met) log(`target ${t.met ? 'MET   ' : 'MISSED'} ${t.name}: ${t.detail}`);

  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, 'latest.json');
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        generatedAt: new Date().toISOString(),
        machine,
        settings: {
          durationSeconds: DURATION,
          warmupSeconds: WARMUP,
          connections: CONNECTIONS,
          synchronous: 'FULL',
        },
        seed: manifest,
        rows,
        correctness,
        searchServerErrors: searchErrors,
        targets: met,
        markdown,
      },
      null,
      2,
    )}\n`,
  );
  log(`results written to ${file}`);
}

const watchdog = setTimeout(() => {
  console.error(`bench: still running after ${WATCHDOG_MS / 60_000} minutes; giving up`);
  for (const child of children) child.process.kill('SIGKILL');
  process.exit(2);
}, WATCHDOG_MS);
watchdog.unref();

try {
  await main();
  process.exitCode = 0;
} catch (error) {
  console.error('bench failed:', error);
  process.exitCode = 1;
} finally {
  await Promise.all([...children].map((child) => child.stop(5000)));
  clearTimeout(watchdog);
}
process.exit();
