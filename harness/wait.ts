/**
 * Polls `read` until `done` holds or the time is up, and returns the last value read: for state
 * that settles just after the event a test waited for (an outbox row is marked delivered after
 * its stream entry is written, so a reader can see the event a moment before the mark).
 */
export async function waitForValue<T>(
  read: () => T | Promise<T>,
  done: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let value = await read();
  while (!done(value) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    value = await read();
  }
  return value;
}

/**
 * Waits for a job to reach a state. A run's terminal event is written before BullMQ moves its
 * job (the processor announces, then returns or throws), so a test that saw the event may still
 * find the job active for a moment.
 */
export async function waitForJobState(
  queue: { getJobState(id: string): Promise<string> },
  jobId: string,
  state: string,
  timeoutMs = 10_000,
): Promise<string> {
  return waitForValue(
    () => queue.getJobState(jobId),
    (current) => current === state,
    timeoutMs,
  );
}
