import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { type Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

/** One row of the bench's table: a figure, and for a target its ratio and verdict. */
export type Row = {
  figure: string;
  value: string;
  ratio?: string;
  target?: string;
  pass?: boolean;
};

/** One autocannon run (the load generator lives in this process, never in the server's). */
export async function cannon(opts: {
  url: string;
  connections: number;
  durationS?: number;
  amount?: number;
  method?: 'GET' | 'POST';
  body?: () => string;
  onAccepted?: (body: string) => void;
}) {
  const headers = { 'content-type': 'application/json' };
  const result = await autocannon({
    url: opts.url,
    connections: opts.connections,
    ...(opts.amount ? { amount: opts.amount } : { duration: opts.durationS ?? 5 }),
    requests: [
      {
        method: opts.method ?? 'GET',
        headers,
        setupRequest: (request) => (opts.body ? { ...request, body: opts.body() } : request),
        onResponse: (status: number, body: string) => {
          if (status === 202) opts.onAccepted?.(body);
        },
      },
    ],
  });
  const elapsedS = (result.duration as number) || 1;
  return {
    rps: result.requests.total / elapsedS,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors + result.timeouts,
    p50: result.latency.p50,
    p99: result.latency.p99,
  };
}

/** A no-op BullMQ worker at concurrency 50 over the jobs the add ceiling left behind. */
export async function processCeiling(queue: Queue, total: number, concurrency = 50) {
  let done = 0;
  const start = performance.now();
  const finished = new Promise<void>((resolve) => {
    const worker = new Worker(queue.name, async () => {}, {
      connection: { ...connectionOf(queue.opts.connection as { host: string; port: number }) },
      prefix: 'bench',
      concurrency,
      removeOnComplete: { count: 0 },
    });
    worker.on('completed', async () => {
      done += 1;
      if (done === total) {
        await worker.close();
        resolve();
      }
    });
  });
  await finished;
  const rate = total / ((performance.now() - start) / 1000);
  await queue.obliterate({ force: true });
  await queue.close();
  return { rate };
}

function connectionOf(source: string | { host: string; port: number }) {
  if (typeof source !== 'string') return { host: source.host, port: source.port };
  const url = new URL(source);
  return { host: url.hostname, port: Number(url.port || 6379) };
}

/**
 * Follows the event stream and records when each run's terminal event was written, so the
 * bench can time 202 → completed for every run. With `keepPayloads`, also every
 * `agent.run.completed` payload, parsed, so a phase can check what its runs did.
 */
export class CompletionWatcher {
  readonly completedAt = new Map<string, number>();
  // biome-ignore lint/suspicious/noExplicitAny: the payload as the server wrote it
  readonly completedPayload = new Map<string, any>();
  readonly failed = new Set<string>();
  private readonly redis: Redis;
  private readonly keepPayloads: boolean;
  private lastId = '$';
  private readonly waiters = new Map<string, () => void>();
  private stopped = false;
  private loop: Promise<void>;

  constructor(url: string, key: string, opts: { keepPayloads?: boolean } = {}) {
    this.keepPayloads = opts.keepPayloads === true;
    this.redis = new Redis(url, { maxRetriesPerRequest: null });
    this.redis.on('error', () => {});
    this.loop = this.read(key);
  }

  private async read(key: string) {
    while (!this.stopped) {
      const result = await this.redis.xread(
        'COUNT',
        5000,
        'BLOCK',
        200,
        'STREAMS',
        key,
        this.lastId,
      );
      for (const [, entries] of result ?? []) {
        for (const [id, fields] of entries) {
          this.lastId = id;
          const entry: Record<string, string> = {};
          for (let i = 0; i < fields.length; i += 2)
            entry[fields[i] as string] = fields[i + 1] as string;
          if (entry.type === 'agent.run.completed') {
            this.completedAt.set(entry.runId as string, Date.parse(entry.occurredAt as string));
            this.waiters.get(entry.runId as string)?.();
            if (this.keepPayloads) {
              this.completedPayload.set(entry.runId as string, JSON.parse(entry.payload ?? 'null'));
            }
          } else if (entry.type === 'agent.run.failed') {
            this.failed.add(entry.runId as string);
            this.waiters.get(entry.runId as string)?.();
          }
        }
      }
    }
  }

  async waitFor(runIds: string[], timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    while (runIds.some((id) => !this.completedAt.has(id) && !this.failed.has(id))) {
      if (Date.now() > deadline) break;
      await Bun.sleep(20);
    }
  }

  /** Resolves true once the run has completed, false when it failed or `timeoutMs` passed. */
  completion(runId: string, timeoutMs: number): Promise<boolean> {
    if (this.completedAt.has(runId)) return Promise.resolve(true);
    if (this.failed.has(runId)) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => settle(false), timeoutMs);
      const settle = (completed: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(runId);
        resolve(completed);
      };
      this.waiters.set(runId, () => settle(this.completedAt.has(runId)));
    });
  }

  async close() {
    this.stopped = true;
    await this.loop.catch(() => {});
    this.redis.disconnect();
  }
}

export const percentile = (values: number[], p: number) => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
};

/** CPU clock ticks (100 a second) a process has used so far, all its threads (Linux /proc). */
export const cpuTicks = (pid: number | string) => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ');
  return Number(fields?.[11]) + Number(fields?.[12]); // utime + stime
};

/** CPU seconds a server process has used so far, all its threads (Linux /proc). */
export const cpuSeconds = (server: { proc: { pid: number } }) => cpuTicks(server.proc.pid) / 100;
