/**
 * Time limits on promises, in one place: a call to Redis, the database or a model server that
 * does not answer must not hold a delivery, a probe, a scrape or a shutdown forever.
 */

/** Thrown by `withTimeout` when the time is up; names what was waited for. */
export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * `promise`'s outcome, or a `TimeoutError` after `ms`. The promise itself goes on (a promise
 * cannot be cancelled); its late outcome is ignored.
 */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for `promise` at most `ms`, whatever its outcome: for shutdown steps that may hang. */
export async function settleWithin(promise: Promise<unknown>, ms: number): Promise<void> {
  await withTimeout(promise, ms, 'settle').catch(() => {});
}
