import { NotFoundError, UnavailableError } from '../domain/errors.ts';

/**
 * How long a read or an edit waits for a create that was answered but not stored yet: well past the
 * persist lag.
 */
const STORE_WAIT_MS = 3_000;

/**
 * Runs `attempt` until it finds the record. A record that is missing although the sequencer handed its
 * number out is on its way to the store: attempts repeat until STORE_WAIT_MS, then 503 (retry). A number
 * never handed out is 404 at once.
 */
export async function untilStored<T>(
  what: 'chat' | 'message',
  attempt: () => Promise<T | undefined>,
  handedOut: () => Promise<boolean>,
): Promise<T> {
  const first = await attempt();
  if (first !== undefined) return first;
  if (!(await handedOut())) throw new NotFoundError(what);
  const deadline = Date.now() + STORE_WAIT_MS;
  for (let pause = 10; Date.now() < deadline; pause = Math.min(2 * pause, 200)) {
    await new Promise((resolve) => setTimeout(resolve, pause));
    const found = await attempt();
    if (found !== undefined) return found;
  }
  throw new UnavailableError(`the ${what} was created but is not stored yet; retry shortly`);
}
