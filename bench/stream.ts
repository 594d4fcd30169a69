/**
 * Live-stream benchmark: `node bench/stream.ts` (npm run bench:stream). Targets 127.0.0.1 only.
 *
 * The real embedded server (SQLITE_SYNCHRONOUS at its default, FULL), one chat, BENCH_SUBSCRIBERS (1 000)
 * clients on its stream, then BENCH_MESSAGES (200) creates one at a time. For each create and each
 * subscriber it records when the event arrived, and reports, over every (message, subscriber) pair:
 *
 *   201 → event   from the 201 reaching the client to the event reaching a subscriber. The embedded writer
 *                 announces before the 201 is sent, so an event may arrive first: those count as 0 (and
 *                 their share is reported).
 *   POST → event  from sending the POST to the event reaching a subscriber (includes the commit).
 *
 * Every subscriber must receive every message, in order, once; the run fails otherwise. The subscribers
 * live in this process, so their parsing (1 000 sockets on the same two cores) is part of the figures.
 * A first, unmeasured message warms every stream up. Writes bench/results/stream.json.
 *
 * BENCH_URL=http://127.0.0.1:8080 measures a running deployment instead (e.g. `npm run stack:up`: NGINX,
 * three API processes, the worker persisting before it announces), where the 201 precedes the commit.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openStream, type SseClient } from '../test/helpers/sse.ts';
import { describeMachine, freePort, HOST, ROOT, sampleRss, startChild, waitReady } from './lib.ts';

const SUBSCRIBERS = Number(process.env.BENCH_SUBSCRIBERS ?? 1000);
const TARGET = process.env.BENCH_URL;
const MESSAGES = Number(process.env.BENCH_MESSAGES ?? 200);
const BODY = 'hello bench: the quick brown fox jumps over the lazy dog 0123456789';

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function post(url: string, body?: unknown): Promise<{ status: number; body: { token?: string } }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: response.status, body: (await response.json()) as { token?: string } };
}

async function until(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached within ${timeoutMs} ms`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function main(): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'chat-bench-stream-'));
  const port = await freePort();
  const url = TARGET ?? `http://${HOST}:${port}`;
  const child = TARGET
    ? undefined
    : startChild(['src/main.ts', 'all'], { HOST, PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn' });
  const streams: SseClient[] = [];
  try {
    if (child) await waitReady(`${url}/readyz`, child);
    const token = (await post(`${url}/applications`, { name: 'bench' })).body.token!;
    await post(`${url}/applications/${token}/chats`);
    const path = `${url}/applications/${token}/chats/1/messages`;

    /** arrivals[message - 1][subscriber] = performance.now() at arrival; message 1 is the warm-up. */
    const arrivals = Array.from({ length: MESSAGES + 1 }, () => new Float64Array(SUBSCRIBERS));
    const received = new Int32Array(MESSAGES + 1);
    let disorder = 0;
    for (let i = 0; i < SUBSCRIBERS; i++) {
      const stream = await openStream(`${path}/stream?after=0`, {}, { record: false });
      if (stream.status !== 200) throw new Error(`subscriber ${i}: ${stream.status}`);
      let expected = 1;
      stream.onEvent = (event) => {
        const number = Number(event.id);
        if (number !== expected++) disorder++;
        arrivals[number - 1]![i] = performance.now();
        received[number - 1]!++;
      };
      streams.push(stream);
    }
    console.log(`${SUBSCRIBERS} subscribers connected`);
    if ((await post(path, { body: 'warm-up' })).status !== 201) throw new Error('the warm-up create failed');
    await until(() => received[0] === SUBSCRIBERS, 60_000, 'the warm-up message at every subscriber');

    const rss = child && sampleRss(child.pid);
    const sentAt: number[] = [];
    const answeredAt: number[] = [];
    for (let n = 2; n <= MESSAGES + 1; n++) {
      sentAt.push(performance.now());
      const answer = await post(path, { body: BODY });
      answeredAt.push(performance.now());
      if (answer.status !== 201) throw new Error(`create ${n} answered ${answer.status}`);
      await until(() => received[n - 1] === SUBSCRIBERS, 30_000, `message ${n} at every subscriber`);
    }
    const peakRssMiB = rss?.stop();
    if (disorder > 0) throw new Error(`${disorder} events arrived out of order`);

    const fromAnswer: number[] = [];
    const fromSend: number[] = [];
    let early = 0;
    for (let m = 0; m < MESSAGES; m++) {
      for (const at of arrivals[m + 1]!) {
        const latency = at - answeredAt[m]!;
        if (latency < 0) early++;
        fromAnswer.push(Math.max(0, latency));
        fromSend.push(at - sentAt[m]!);
      }
    }
    fromAnswer.sort((a, b) => a - b);
    fromSend.sort((a, b) => a - b);
    const round = (ms: number) => Math.round(ms * 100) / 100;
    const result = {
      target: TARGET ?? 'embedded server (started by the benchmark)',
      subscribers: SUBSCRIBERS,
      messages: MESSAGES,
      deliveries: fromAnswer.length,
      eventBefore201: round(early / fromAnswer.length),
      answerToEventMs: {
        p50: round(percentile(fromAnswer, 50)),
        p99: round(percentile(fromAnswer, 99)),
        max: round(fromAnswer.at(-1)!),
      },
      sendToEventMs: {
        p50: round(percentile(fromSend, 50)),
        p99: round(percentile(fromSend, 99)),
        max: round(fromSend.at(-1)!),
      },
      peakRssMiB,
      machine: describeMachine(),
      at: new Date().toISOString(),
    };
    console.log(JSON.stringify(result, null, 2));
    mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
    const file = TARGET ? 'stream-target.json' : 'stream.json';
    writeFileSync(join(ROOT, 'bench', 'results', file), `${JSON.stringify(result, null, 2)}\n`);
  } finally {
    for (const stream of streams) stream.close();
    await child?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  console.error('stream benchmark: watchdog fired after 10 minutes');
  process.exit(1);
}, 10 * 60_000);
watchdog.unref();
await main();
