import { NotFoundError, UnavailableError } from '../domain/errors.ts';

/**
 * How long a read or an edit waits for a create that was answered but not stored yet: well past the
 * persist lag.
 */
const STORE_WAIT_MS = 3_000;

/** Reads waiting for one record share one poll (see untilStored's `shared`). */
const waiting = new Map<string, Promise<unknown>>();

/** Requests waiting in untilStored now: a steady count above 0 is a worker that does not keep up. */
let requestsWaiting = 0;

/** How many reads and edits are waiting for a record answered 201 but not stored yet (store_waits). */
export function storeWaits(): number {
  return requestsWaiting;
}

/**
 * Runs `attempt` until it finds the record. A record that is missing although the sequencer handed its
 * number out is on its way to the store: attempts repeat until STORE_WAIT_MS, then 503 (retry). A number
 * never handed out is 404 at once. Reads name the record in `shared`: concurrent reads of one missing
 * record then share one poll of the store, so a backlog in the worker does not multiply into store reads.
 * (Edits do not share: each attempt writes its own body.)
 */
export async function untilStored<T>(
  what: 'chat' | 'message',
  attempt: () => Promise<T | undefined>,
  handedOut: () => Promise<boolean>,
  shared?: string,
): Promise<T> {
  const first = await attempt();
  if (first !== undefined) return first;
  if (!(await handedOut())) throw new NotFoundError(what);
  requestsWaiting++;
  try {
    return await sharedPoll(what, attempt, shared);
  } finally {
    requestsWaiting--;
  }
}

function sharedPoll<T>(
  what: 'chat' | 'message',
  attempt: () => Promise<T | undefined>,
  shared: string | undefined,
): Promise<T> {
  if (shared === undefined) return poll(what, attempt);
  const key = `${what}:${shared}`;
  const known = waiting.get(key);
  if (known) return known as Promise<T>;
  const wait = poll(what, attempt).finally(() => waiting.delete(key));
  waiting.set(key, wait);
  return wait;
}

async function poll<T>(what: 'chat' | 'message', attempt: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + STORE_WAIT_MS;
  for (let pause = 10; Date.now() < deadline; pause = Math.min(2 * pause, 200)) {
    await new Promise((resolve) => setTimeout(resolve, pause));
    const found = await attempt();
    if (found !== undefined) return found;
  }
  throw new UnavailableError(`the ${what} was created but is not stored yet; retry shortly`);
}
