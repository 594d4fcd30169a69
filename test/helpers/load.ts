/**
 * A load of concurrent creates (chats and messages of one application) through a running server, with a
 * record of every acknowledged create, and the check that must hold afterwards whatever fault happened
 * meanwhile: every acknowledged create is stored with its body, no number was acknowledged twice, and the
 * stored numbers are exactly 1..n (a create that failed with a 5xx may still be stored: a 5xx promises
 * nothing, but it must not leave a gap either).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { api, eventually, type JsonResponse } from './server.ts';

interface Acked {
  number: number;
  body: string;
}

export interface CreateLoad {
  token: string;
  /** Acknowledged (201) message creates of chat 1, and chat creates, in answer order. */
  messages: Acked[];
  chats: number[];
  /** Answers by status (0: the request itself failed). */
  statuses: Map<number, number>;
  /** Resolves once at least `count` more creates have been acknowledged than when it was called. */
  progress(count: number, timeoutMs: number, what: string): Promise<void>;
  /** Stops the load and waits for the requests in flight. */
  stop(): Promise<void>;
  /** Waits until the stored state converged, then checks it (see the file's comment). */
  verify(timeoutMs?: number): Promise<void>;
}

/**
 * A setup create, sent again while it answers 503: the previous test's fault may have left an API process
 * still reconnecting (a 503 promises nothing, and is allowed during and right after a fault). The same
 * Idempotency-Key makes a retry return the first attempt's create if that one was stored after all.
 */
async function settled(base: string, path: string, body?: unknown, key?: string): Promise<JsonResponse> {
  const headers: Record<string, string> = key === undefined ? {} : { 'idempotency-key': key };
  return eventually(
    async () => {
      const response = await api(base, 'POST', path, body, headers);
      return response.status !== 503 && response;
    },
    60_000,
    `POST ${path} answered other than 503`,
  );
}

/** Starts `concurrency` clients creating messages in chat 1, and one more creating chats. */
export async function startCreateLoad(base: string, label: string, concurrency = 16): Promise<CreateLoad> {
  const token = (await settled(base, '/applications', { name: label })).body.token as string;
  const chat = await settled(base, `/applications/${token}/chats`, undefined, randomUUID());
  assert.deepEqual([chat.status, chat.body.number], [201, 1]);
  const path = `/applications/${token}/chats/1/messages`;
  const messages: Acked[] = [];
  const chats = [1];
  const statuses = new Map<number, number>();
  let stopped = false;

  async function create(path: string, body?: unknown): Promise<JsonResponse | undefined> {
    let response: JsonResponse | undefined;
    try {
      response = await api(base, 'POST', path, body);
    } catch {
      // The connection failed: a fault, recorded as status 0.
    }
    const status = response?.status ?? 0;
    statuses.set(status, (statuses.get(status) ?? 0) + 1);
    // Pacing, not synchronisation: a client that failed backs off a little instead of spinning.
    if (status !== 201) await new Promise((resolve) => setTimeout(resolve, 50));
    return status === 201 ? response : undefined;
  }

  const clients = [
    ...Array.from({ length: concurrency }, async (_, client) => {
      for (let i = 0; !stopped; i++) {
        const created = await create(path, { body: `${label} c${client} i${i}` });
        if (created) messages.push({ number: created.body.number, body: created.body.body });
      }
    }),
    (async () => {
      while (!stopped) {
        const created = await create(`/applications/${token}/chats`);
        if (created) chats.push(created.body.number);
      }
    })(),
  ];
  const acknowledged = () => messages.length + chats.length;

  return {
    token,
    messages,
    chats,
    statuses,
    async progress(count, timeoutMs, what) {
      const target = acknowledged() + count;
      await eventually(async () => acknowledged() >= target, timeoutMs, what);
    },
    async stop() {
      stopped = true;
      await Promise.all(clients);
    },
    async verify(timeoutMs = 90_000) {
      assertUnique(
        messages.map((m) => m.number),
        'message numbers acknowledged',
      );
      assertUnique(chats, 'chat numbers acknowledged');
      const stored = await eventually(
        async () => {
          const all = await listAll(base, path).catch(() => undefined);
          return all && isOneToN(all.map((m) => m.number)) && covers(all, messages) ? all : undefined;
        },
        timeoutMs,
        'the stored messages are exactly 1..n and hold every acknowledged create',
      );
      const byNumber = new Map(stored.map((m) => [m.number, m.body]));
      for (const m of messages) assert.equal(byNumber.get(m.number), m.body, `message ${m.number}`);
      const storedChats = await eventually(
        async () => {
          const all = await listAll(base, `/applications/${token}/chats`).catch(() => undefined);
          const numbers = all?.map((c) => c.number);
          return numbers && isOneToN(numbers) && chats.every((n) => n <= numbers.length)
            ? numbers
            : undefined;
        },
        timeoutMs,
        'the stored chats are exactly 1..n and hold every acknowledged create',
      );
      await eventually(
        async () => {
          const chat = await api(base, 'GET', `/applications/${token}/chats/1`).catch(() => undefined);
          const app = await api(base, 'GET', `/applications/${token}`).catch(() => undefined);
          return chat?.body.messages_count === stored.length && app?.body.chats_count === storedChats.length;
        },
        20_000,
        `counts converge to ${stored.length} messages and ${storedChats.length} chats`,
      );
    },
  };
}

function assertUnique(numbers: number[], what: string): void {
  const seen = new Set<number>();
  const twice = numbers.filter((n) => seen.has(n) || !seen.add(n));
  assert.deepEqual(twice, [], `${what}: handed out twice`);
}

function isOneToN(numbers: number[]): boolean {
  return numbers.every((n, i) => n === i + 1);
}

function covers(stored: Acked[], acked: Acked[]): boolean {
  const numbers = new Set(stored.map((m) => m.number));
  return acked.every((m) => numbers.has(m.number));
}

/** Every row of a keyset-paginated list, in order. */
// biome-ignore lint/suspicious/noExplicitAny: rows of either list
async function listAll(base: string, path: string): Promise<any[]> {
  const rows: { number: number }[] = [];
  for (let after = 0; ; ) {
    const page: JsonResponse = await api(base, 'GET', `${path}?limit=1000&after=${after}`);
    if (page.status !== 200) throw new Error(`GET ${path}: ${page.status}`);
    rows.push(...page.body);
    if (!page.headers.get('link')) return rows;
    after = rows.at(-1)!.number;
  }
}
