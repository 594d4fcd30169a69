/**
 * Distributed benchmark: `node bench/distributed.ts` (or `npm run bench:distributed`). Starts the whole
 * topology with scripts/stack/up.sh on its own ports and state directory (everything on 127.0.0.1), drives
 * it through NGINX, and stops it again (scripts/stack/down.sh) whatever happens.
 *
 *   ceiling  the bare node:http server of bench/run.ts, measured in the same run
 *   max      POST message through NGINX at 100 connections: the most the co-located stack takes
 *   steady   POST message at half of that rate, at a fixed arrival rate (open-load.ts), with probes beside it:
 *            every PROBE_EVERY_MS one more create whose persist lag (201 → its row in MariaDB, polled every
 *            5 ms) and index lag (201 → found by the search endpoint through NGINX, polled every INDEX_POLL_MS) is
 *            timed
 *   RSS      peak resident set (VmHWM) of every process of the stack
 * Afterwards it checks that every acknowledged create was stored (messages_count equals the 201s).
 *
 * Knobs: BENCH_DURATION (s, default 15), BENCH_WARMUP (s, default 2), BENCH_CONNECTIONS (default 100),
 * BENCH_STACK_DIR (default /tmp/chat-bench-stack: stopped and emptied at the start of every run, so each run
 * starts a fresh stack), BENCH_KEEP_STACK=1 to leave the stack running afterwards.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import autocannon, { type AutocannonOptions, type AutocannonResult } from 'autocannon';
import mysql from 'mysql2/promise';
import { envWithoutServiceSettings } from '../test/helpers/services.ts';
import { describeMachine, highWaterMark, messageResponse, ROOT, startCeilingServer } from './lib.ts';
import { type OpenLoadResult, openLoad } from './open-load.ts';

const run = promisify(execFile);
const DURATION = Number(process.env.BENCH_DURATION ?? 15);
const WARMUP = Number(process.env.BENCH_WARMUP ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 100);
const STATE = process.env.BENCH_STACK_DIR ?? '/tmp/chat-bench-stack';
const PROBE_EVERY_MS = 250;
/**
 * How often a probe asks the search endpoint. Every poll is a wildcard query on the engine the lag is
 * measured on, so polling faster than this measurably loads it (at 50 ms the probes alone made ~80
 * searches a second).
 */
const INDEX_POLL_MS = 100;
const PROBE_GIVE_UP_MS = 30_000;
const WATCHDOG_MS = 20 * 60_000;
const BODY = 'hello bench: the quick brown fox jumps over the lazy dog 0123456789';
const JSON_HEADERS = { 'content-type': 'application/json' };

/** Ports away from the defaults (dev services) and from test/stack.test.ts, so all three can coexist. */
const STACK_ENV = {
  ...envWithoutServiceSettings(),
  ADMIN_TOKEN: 'bench-admin-token-0123456789abcdef',
  STACK_PORT: '28180',
  API_BASE_PORT: '28101',
  WORKER_PORT: '28110',
  INDEXER_PORT: '28120',
  MARIADB_PORT: '23307',
  REDIS_PORT: '26380',
  RABBITMQ_PORT: '25680',
  OPENSEARCH_PORT: '29201',
  OPENSEARCH_TRANSPORT_PORT: '29301',
  LOG_LEVEL: 'warn',
};
const BASE = `http://127.0.0.1:${STACK_ENV.STACK_PORT}`;

const TARGETS = { steadyP99Ms: 50, persistP99Ms: 1000, indexP99Ms: 2000 };

interface Load {
  scenario: string;
  connections: number;
  rps: number;
  p50: number;
  p99: number;
  created: number;
  non2xx: number;
  errors: number;
}

function summarize(scenario: string, result: AutocannonResult): Load {
  const load: Load = {
    scenario,
    connections: result.connections,
    rps: Math.round(result.requests.total / result.duration),
    p50: result.latency.p50,
    p99: result.latency.p99,
    created: result['2xx'],
    non2xx: result.non2xx,
    errors: result.errors,
  };
  report(load);
  return load;
}

function summarizeOpen(scenario: string, result: OpenLoadResult, connections: number): Load {
  const created = Object.entries(result.statuses)
    .filter(([status]) => Number(status) >= 200 && Number(status) < 300)
    .reduce((sum, [, count]) => sum + count, 0);
  const load: Load = {
    scenario,
    connections,
    rps: Math.round(result.sent / result.duration),
    p50: Math.round(percentile(result.latencies, 50)),
    p99: Math.round(percentile(result.latencies, 99)),
    created,
    non2xx: result.sent - created - result.errors,
    errors: result.errors,
  };
  report(load, "open model: latency from each request's due time");
  return load;
}

function report(load: Load, note?: string): void {
  console.log(
    `${load.scenario.padEnd(40)} c=${load.connections}  ${load.rps} req/s  p50 ${load.p50} ms  p99 ${load.p99} ms` +
      `  non-2xx ${load.non2xx}  errors ${load.errors}${note ? `  (${note})` : ''}`,
  );
}

async function call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
  const response = await fetch(BASE + path, {
    method,
    headers: body === undefined ? {} : JSON_HEADERS,
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  return { status: response.status, body: (await response.json()) as T };
}

function post(path: string): AutocannonOptions {
  return { url: BASE + path, method: 'POST', headers: JSON_HEADERS, body: JSON.stringify({ body: BODY }) };
}

async function measureCeiling(): Promise<Load> {
  const { child, url } = await startCeilingServer(messageResponse(BODY));
  try {
    const result = await autocannon({
      ...post('/applications/x/chats/1/messages'),
      url: `${url}/applications/x/chats/1/messages`,
      connections: CONNECTIONS,
      duration: DURATION,
      warmup: { connections: CONNECTIONS, duration: WARMUP },
    });
    return summarize('ceiling: bare node:http POST 201', result);
  } finally {
    await child.stop();
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Polls `found` every `everyMs` until it is true; resolves to the elapsed ms, or undefined past the cap. */
async function timeUntil(
  found: () => Promise<boolean>,
  everyMs: number,
  since: number,
): Promise<number | undefined> {
  while (performance.now() - since < PROBE_GIVE_UP_MS) {
    if (await found().catch(() => false)) return performance.now() - since;
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
  return undefined;
}

interface Lags {
  persist: number[];
  index: number[];
  lost: number;
}

/** Probes creates into `chat` until `until` resolves; see the file's comment. */
async function probe(
  token: string,
  chat: number,
  db: mysql.Connection,
  until: Promise<unknown>,
): Promise<Lags> {
  const [chats] = await db.query<mysql.RowDataPacket[]>(
    'SELECT c.id FROM chats c JOIN applications a ON a.id = c.application_id WHERE a.token = ? AND c.number = ?',
    [token, chat],
  );
  const chatId = chats[0]?.id as number;
  const lags: Lags = { persist: [], index: [], lost: 0 };
  const running: Promise<void>[] = [];
  let done = false;
  void until.then(() => {
    done = true;
  });
  for (let i = 0; !done; i++) {
    running.push(
      (async () => {
        const marker = `probe${i}x${Date.now().toString(36)}`;
        const created = await call<{ number: number }>(
          'POST',
          `/applications/${token}/chats/${chat}/messages`,
          { body: `${marker} ${BODY}` },
        ).catch(() => undefined);
        const since = performance.now();
        if (created?.status !== 201) return;
        const [persisted, indexed] = await Promise.all([
          timeUntil(
            async () => {
              const [rows] = await db.query<mysql.RowDataPacket[]>(
                'SELECT 1 FROM messages WHERE chat_id = ? AND number = ?',
                [chatId, created.body.number],
              );
              return rows.length > 0;
            },
            5,
            since,
          ),
          timeUntil(
            async () => {
              const found = await call<unknown[]>(
                'GET',
                `/applications/${token}/chats/${chat}/messages/search?q=${marker}`,
              );
              return found.status === 200 && found.body.length === 1;
            },
            INDEX_POLL_MS,
            since,
          ),
        ]);
        if (persisted === undefined || indexed === undefined) lags.lost++;
        if (persisted !== undefined) lags.persist.push(persisted);
        if (indexed !== undefined) lags.index.push(indexed);
      })(),
    );
    await new Promise((resolve) => setTimeout(resolve, PROBE_EVERY_MS));
  }
  await Promise.all(running);
  return lags;
}

/** CPU milliseconds this process used since `since`. */
function benchCpu(since: NodeJS.CpuUsage): number {
  const { user, system } = process.cpuUsage(since);
  return (user + system) / 1000;
}

/** The stack's processes by the pid files of scripts/stack and scripts/services. */
function stackPids(): { process: string; pid: number }[] {
  const rows = [];
  for (const dir of [join(STATE, 'run'), join(STATE, 'services', 'run')]) {
    for (const file of readdirSync(dir)
      .filter((f) => f.endsWith('.pid'))
      .sort()) {
      rows.push({ process: file.replace(/\.pid$/, ''), pid: Number(readFileSync(join(dir, file), 'utf8')) });
    }
  }
  return rows;
}

/** Peak RSS of every process the stack started: ours (run/*.pid) and the services' (services/run/*.pid). */
function stackRss(): { process: string; peakRssMiB: number | undefined }[] {
  return stackPids().map(({ process, pid }) => ({ process, peakRssMiB: highWaterMark(pid) }));
}

/**
 * CPU seconds (user + system) each stack process has used so far, its descendants included (a service's
 * pid file may name a wrapper: RabbitMQ's beam, OpenSearch's JVM). Clock ticks of 1/100 s (Linux).
 */
function stackCpuSeconds(): Map<string, number> {
  const parentOf = new Map<number, number>();
  const ticksOf = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command (which may contain spaces), from field 3 (state) on.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parentOf.set(Number(entry), Number(fields[1]));
      ticksOf.set(Number(entry), Number(fields[11]) + Number(fields[12]));
    } catch {} // gone meanwhile
  }
  const seconds = new Map<string, number>();
  for (const { process, pid } of stackPids()) {
    let ticks = 0;
    for (const [candidate, own] of ticksOf) {
      for (let p: number | undefined = candidate; p !== undefined && p > 1; p = parentOf.get(p)) {
        if (p === pid) {
          ticks += own;
          break;
        }
      }
    }
    seconds.set(process, ticks / 100);
  }
  return seconds;
}

/**
 * Every create of a run stored: once the chat's rows stop changing (the load has ended; creates in flight
 * when autocannon stopped still land, uncounted), they are numbered exactly 1..n, n is at least the 201s
 * counted, and messages_count agrees.
 */
async function allStored(
  db: mysql.Connection,
  token: string,
  chat: number,
  acknowledged: number,
): Promise<boolean> {
  const deadline = Date.now() + 60_000;
  let last = -1;
  let stableSince = Date.now();
  while (Date.now() < deadline) {
    const [rows] = await db.query<mysql.RowDataPacket[]>(
      `SELECT COUNT(*) AS n, COALESCE(MAX(m.number), 0) AS max, MAX(c.messages_count) AS counted
         FROM chats c JOIN applications a ON a.id = c.application_id LEFT JOIN messages m ON m.chat_id = c.id
        WHERE a.token = ? AND c.number = ?`,
      [token, chat],
    );
    const { n, max, counted } = rows[0] as { n: number; max: number; counted: number };
    if (n !== last) {
      last = n;
      stableSince = Date.now();
    } else if (Date.now() - stableSince > 1_000) {
      return Number(n) === Number(max) && Number(n) >= acknowledged && Number(counted) === Number(n);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}

/**
 * Waits until the search index holds every stored message (the index queue has drained), so that the
 * steady run's index lag is not the backlog of the maximum run; resolves to how long that took.
 */
async function indexCaughtUp(db: mysql.Connection): Promise<number> {
  const started = performance.now();
  const deadline = Date.now() + 10 * 60_000;
  for (;;) {
    const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT COUNT(*) AS n FROM messages');
    const counted = (await (
      await fetch(`http://127.0.0.1:${STACK_ENV.OPENSEARCH_PORT}/chat-messages/_count`)
    ).json()) as { count: number };
    if (counted.count >= Number(rows[0]!.n)) return performance.now() - started;
    if (Date.now() > deadline) throw new Error('the search index did not catch up within 10 minutes');
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

/** The messages index's refresh counters (the refreshes that make acknowledged writes searchable). */
async function refreshStats(): Promise<{ total: number; totalMs: number }> {
  const response = await fetch(`http://127.0.0.1:${STACK_ENV.OPENSEARCH_PORT}/chat-messages/_stats/refresh`);
  const { refresh } = (
    (await response.json()) as { _all: { primaries: { refresh: Record<string, number> } } }
  )._all.primaries;
  return { total: refresh.total ?? 0, totalMs: refresh.total_time_in_millis ?? 0 };
}

/** The indexer's Prometheus histograms: cumulative bucket counts by series name and upper bound. */
type Histograms = Map<string, Map<number, number>>;

async function indexerMetrics(): Promise<Histograms> {
  const text = await (await fetch(`http://127.0.0.1:${STACK_ENV.INDEXER_PORT}/metrics`)).text();
  const histograms: Histograms = new Map();
  for (const match of text.matchAll(/^(index_\w+)_bucket\{le="([^"]+)"\} (\d+)$/gm)) {
    const [, name, le, count] = match as unknown as [string, string, string, string];
    if (!histograms.has(name)) histograms.set(name, new Map());
    histograms.get(name)!.set(le === '+Inf' ? Infinity : Number(le), Number(count));
  }
  return histograms;
}

/**
 * What the indexer's histograms recorded between two scrapes, as bucket upper bounds at p50 and p99: the
 * stages behind the index lag that the probes measure from outside.
 */
function indexerStages(before: Histograms, after: Histograms) {
  const quantiles = (name: string, scale: number) => {
    const end = after.get(name) ?? new Map<number, number>();
    const start = before.get(name) ?? new Map<number, number>();
    const buckets = [...end]
      .map(([le, n]) => [le, n - (start.get(le) ?? 0)] as const)
      .sort((a, b) => a[0] - b[0]);
    const total = buckets.at(-1)?.[1] ?? 0;
    const at = (q: number) => {
      const bound = buckets.find(([, n]) => n >= total * q)?.[0];
      return bound === undefined ? '–' : bound === Infinity ? '∞' : String(Math.round(bound * scale));
    };
    return { total, p50: at(0.5), p99: at(0.99) };
  };
  const batch = quantiles('index_batch_size', 1);
  return {
    bulks: batch.total,
    batch,
    bulkMs: quantiles('index_bulk_duration_seconds', 1000),
    ackMs: quantiles('index_lag_seconds', 1000),
  };
}

/** Waits until the chat's row is stored (the probes look its id up). */
async function chatStored(token: string, chat: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await call('GET', `/applications/${token}/chats/${chat}`)).status !== 200) {
    if (Date.now() > deadline) throw new Error(`chat ${chat} not stored within 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function main(): Promise<void> {
  const watchdog = setTimeout(() => {
    console.error(`benchmark still running after ${WATCHDOG_MS / 60_000} min: giving up`);
    process.exit(1);
  }, WATCHDOG_MS);
  watchdog.unref();
  const machine = describeMachine();
  const ceiling = await measureCeiling();

  // A fresh stack every run: scripts/services records each start's settings (ports, OpenSearch heap…) in
  // the state directory and reuses them, and data left by an earlier run would be measured along.
  if (existsSync(STATE)) {
    await run('bash', [`${ROOT}scripts/stack/down.sh`, STATE], { env: STACK_ENV, timeout: 300_000 });
    rmSync(STATE, { recursive: true, force: true });
  }
  console.log(`starting the stack in ${STATE} (scripts/stack/up.sh)…`);
  mkdirSync(STATE, { recursive: true });
  let db: mysql.Connection | undefined;
  try {
    await run('bash', [`${ROOT}scripts/stack/up.sh`, STATE], { env: STACK_ENV, timeout: 300_000 });
    db = await mysql.createConnection(`mysql://chat:chat@127.0.0.1:${STACK_ENV.MARIADB_PORT}/chat`);
    const app = await call<{ token: string }>('POST', '/applications', { name: 'bench' });
    const token = app.body.token;
    for (let i = 0; i < 4; i++) await call('POST', `/applications/${token}/chats`);
    // Chat 1 takes the maximum load, chat 2 the steady load, chat 3 the probes (stored before they look
    // its id up), chat 4 the warm-up, so each chat's messages_count can be checked against its 201s.
    await chatStored(token, 3);
    await autocannon({
      ...post(`/applications/${token}/chats/4/messages`),
      connections: CONNECTIONS,
      duration: WARMUP,
    });

    const max = summarize(
      'create message, max (POST via NGINX)',
      await autocannon({
        ...post(`/applications/${token}/chats/1/messages`),
        connections: CONNECTIONS,
        duration: DURATION,
      }),
    );
    const maxStored = await allStored(db, token, 1, max.created);
    const catchUpMs = await indexCaughtUp(db);
    console.log(
      `search index caught up with the max run ${(catchUpMs / 1000).toFixed(1)} s after it was stored`,
    );
    const rate = Math.max(1, Math.round(max.rps / 2));
    const indexerBefore = await indexerMetrics();
    const refreshesBefore = await refreshStats();
    const cpuBefore = stackCpuSeconds();
    const benchCpuBefore = process.cpuUsage();
    const steadyStarted = Date.now();
    // A fixed arrival rate, not autocannon's overallRate (see open-load.ts: that one sends each second's
    // quota in a burst at full speed, which measures the burst, not a steady load).
    const steadyRun = openLoad({
      url: `${BASE}/applications/${token}/chats/2/messages`,
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ body: BODY }),
      rate,
      seconds: DURATION,
      connections: Math.min(CONNECTIONS, 50),
    });
    const lags = await probe(token, 3, db, steadyRun);
    const steady = summarizeOpen(
      `create message, steady at ${rate}/s (half of max)`,
      await steadyRun,
      Math.min(CONNECTIONS, 50),
    );
    const steadyStored = await allStored(db, token, 2, steady.created);
    const persist = [...lags.persist].sort((a, b) => a - b);
    const index = [...lags.index].sort((a, b) => a - b);
    const lagRow = (name: string, values: number[]) =>
      `${name}: ${values.length} probes, p50 ${Math.round(percentile(values, 50))} ms, p99 ${Math.round(percentile(values, 99))} ms`;
    console.log(lagRow('persist lag (201 → row in MariaDB)', persist));
    console.log(lagRow('index lag (201 → found by search)', index));
    const indexer = indexerStages(indexerBefore, await indexerMetrics());
    console.log(
      `indexer during the steady run (from its /metrics, bucket bounds): ${indexer.bulks} bulks of p50 ${indexer.batch.p50} / p99 ${indexer.batch.p99} messages; ` +
        `bulk answered in p50 ≤ ${indexer.bulkMs.p50} / p99 ≤ ${indexer.bulkMs.p99} ms; ` +
        `created → acknowledged by the engine p50 ≤ ${indexer.ackMs.p50} / p99 ≤ ${indexer.ackMs.p99} ms (searchable at its next refresh)`,
    );
    const cpuSeconds = (Date.now() - steadyStarted) / 1000;
    const shares = [...stackCpuSeconds()]
      .map(([name, used]) => ({ name, share: (used - (cpuBefore.get(name) ?? 0)) / cpuSeconds }))
      .sort((a, b) => b.share - a.share)
      .map(({ name, share }) => `${name} ${Math.round(share * 100)} %`);
    const generator = Math.round(benchCpu(benchCpuBefore) / cpuSeconds / 10);
    console.log(
      `CPU during the steady run and its probes (% of one core): ${shares.join(', ')}; load generator and probes (this process) ${generator} %`,
    );
    const refreshesAfter = await refreshStats();
    const refreshes = refreshesAfter.total - refreshesBefore.total;
    const refreshMs = refreshesAfter.totalMs - refreshesBefore.totalMs;
    console.log(
      `OpenSearch during the steady run: ${refreshes} refreshes of the index, ${refreshes > 0 ? Math.round(refreshMs / refreshes) : '–'} ms each on average`,
    );
    const rss = stackRss();
    for (const { process, peakRssMiB } of rss)
      console.log(`peak RSS ${process.padEnd(12)} ${peakRssMiB} MiB`);

    const checks = [
      { name: `steady create p99 ≤ ${TARGETS.steadyP99Ms} ms`, met: steady.p99 <= TARGETS.steadyP99Ms },
      {
        name: `persist lag p99 ≤ ${TARGETS.persistP99Ms} ms`,
        met: percentile(persist, 99) <= TARGETS.persistP99Ms,
      },
      { name: `index lag p99 ≤ ${TARGETS.indexP99Ms} ms`, met: percentile(index, 99) <= TARGETS.indexP99Ms },
      { name: 'max run: stored 1..n, n ≥ its 201s, messages_count = n', met: maxStored },
      { name: 'steady run: stored 1..n, n ≥ its 201s, messages_count = n', met: steadyStored },
      { name: 'every probe persisted and indexed', met: lags.lost === 0 },
    ];
    for (const check of checks) console.log(`${check.met ? 'MET    ' : 'MISSED '} ${check.name}`);
    const results = {
      at: new Date().toISOString(),
      machine,
      durationSeconds: DURATION,
      ceiling,
      max: { ...max, ratio: max.rps / ceiling.rps },
      steady: { ...steady, ratio: steady.rps / ceiling.rps, targetRate: rate },
      persistLagMs: { probes: persist.length, p50: percentile(persist, 50), p99: percentile(persist, 99) },
      indexLagMs: { probes: index.length, p50: percentile(index, 50), p99: percentile(index, 99) },
      indexCatchUpAfterMaxMs: Math.round(catchUpMs),
      lostProbes: lags.lost,
      rss,
      checks,
    };
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    writeFileSync(
      join(ROOT, 'bench', 'results', 'distributed-latest.json'),
      `${JSON.stringify(results, null, 2)}\n`,
    );
    console.log(`\n${JSON.stringify({ machine })}`);
    if (!maxStored || !steadyStored || lags.lost > 0) process.exitCode = 1;
  } finally {
    await db?.end();
    if (process.env.BENCH_KEEP_STACK !== '1') {
      await run('bash', [`${ROOT}scripts/stack/down.sh`, STATE], { env: STACK_ENV, timeout: 300_000 });
    }
  }
}

await main();
