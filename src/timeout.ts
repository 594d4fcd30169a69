/**
 * `promise`, or a rejection with `timeoutError()` once `ms` passed without its answer. The timer is cleared
 * either way; the work behind `promise` is not cancelled (callers say why that is harmless).
 */
export function withTimeout<T>(promise: Promise<T>, ms: number, timeoutError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(timeoutError()), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
