import { isTerminalEvent } from '../src/events/event';
import { toFields } from '../src/events/stream-fields';
import { createRedisClient, type RedisClient, type RedisTarget } from '../src/redis/client';

/** One entry of the main stream, its payload parsed. */
export interface StreamEntry {
  id: string;
  type: string;
  eventId: string;
  runId: string;
  threadId: string;
  occurredAt: string;
  /** Only on agent.run.rejected. */
  requestId?: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect payloads freely
  payload: any;
}

/**
 * Reads the event stream with blocking XREADs and waits for a condition on what arrived:
 * tests wait for events, never for fixed sleeps.
 */
export class EventReader {
  readonly entries: StreamEntry[] = [];
  private lastId = '0';
  private reading: Promise<void> | undefined;
  private readonly redis: RedisClient;

  /** `redis`: a URL, or the app's config.redis (one Redis or a Cluster). */
  constructor(
    redis: string | RedisTarget,
    private readonly key: string,
  ) {
    const target = typeof redis === 'string' ? { url: redis, clusterNodes: null } : redis;
    this.redis = createRedisClient(target, { maxRetriesPerRequest: null });
    this.redis.on('error', () => {});
  }

  async waitFor(
    condition: (entries: StreamEntry[]) => boolean,
    what = 'the expected events',
    timeoutMs = 20_000,
  ): Promise<StreamEntry[]> {
    const deadline = Date.now() + timeoutMs;
    while (!condition(this.entries)) {
      const left = deadline - Date.now();
      if (left <= 0) {
        const seen = this.entries.map((e) => `${e.type}(${e.runId?.slice(-6)})`).join(', ');
        throw new Error(`timed out waiting for ${what}; saw: ${seen || 'nothing'}`);
      }
      await this.readMore(Math.min(left, 1000));
    }
    return this.entries;
  }

  /**
   * One blocking read at a time, shared by every waiter: concurrent `waitFor`s must not read
   * (and record) the same entries twice.
   */
  private readMore(blockMs: number): Promise<void> {
    this.reading ??= this.redis
      .xread('COUNT', 1000, 'BLOCK', blockMs, 'STREAMS', this.key, this.lastId)
      .catch(() => null)
      .then((result) => {
        for (const [, items] of result ?? []) {
          for (const [id, fields] of items) {
            const entry = toFields(fields);
            this.entries.push({
              ...(entry as unknown as StreamEntry),
              id,
              payload: parseOr(entry.payload),
            });
            this.lastId = id;
          }
        }
      })
      .finally(() => {
        this.reading = undefined;
      });
    return this.reading;
  }

  /** Waits until `runId` has a terminal event and returns that run's events. */
  async waitForTerminal(runId: string, timeoutMs?: number): Promise<StreamEntry[]> {
    await this.waitFor(
      (all) => all.some((e) => e.runId === runId && isTerminal(e.type)),
      `a terminal event of ${runId}`,
      timeoutMs,
    );
    return this.forRun(runId);
  }

  forRun(runId: string): StreamEntry[] {
    return this.entries.filter((e) => e.runId === runId);
  }

  /**
   * A run's events as a consumer that de-duplicates on `eventId` sees them: each the first time
   * it came. Delivery is at least once (docs/events.md): a crash between an event's XADD and its
   * mark in the outbox sends it again.
   */
  distinctForRun(runId: string): StreamEntry[] {
    const seen = new Set<string>();
    return this.forRun(runId).filter((e) => !seen.has(e.eventId) && seen.add(e.eventId));
  }

  async close() {
    this.redis.disconnect();
  }
}

/** The server's own definition of the events that end a run. */
export const isTerminal = isTerminalEvent;

/** A producer's entry may carry anything as payload: keep what is not JSON as text. */
function parseOr(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? 'null');
  } catch {
    return text;
  }
}
