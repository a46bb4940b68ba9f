/**
 * The worker's heartbeat, on a thread of its own (see liveness.ts). It keeps this process's
 * liveness key alive with its own Redis connection and its own event loop, so a main thread busy
 * for seconds (a CPU saturated with runs, a long garbage collection, a synchronous tokenizer
 * pass) is never mistaken for a dead process. It only ever writes two keys and never touches a
 * job: the one decision it informs (that a process is dead) is taken by the reapers, in Redis.
 */
import { createRedisClient, type RedisTarget } from '../src/redis/client';

declare const self: Worker;

/** What the main thread sends first (liveness.ts). */
export interface HeartbeatStart {
  kind: 'start';
  target: RedisTarget;
  /** This worker's liveness key, and the set naming every worker that has one. */
  key: string;
  registry: string;
  workerId: string;
  everyMs: number;
  ttlMs: number;
}

/** What the thread tells the main thread. */
export type HeartbeatNews = { kind: 'beat' } | { kind: 'stopped' };

let stop: (() => Promise<void>) | undefined;

self.onmessage = (event: MessageEvent<HeartbeatStart | { kind: 'stop' }>) => {
  if (event.data.kind === 'start') stop = start(event.data);
  else void stop?.();
};

function start(opts: HeartbeatStart): () => Promise<void> {
  // No queueing while Redis is away: a beat sent late is no beat, the next one is due anyway.
  const redis = createRedisClient(opts.target, {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
  });
  redis.on('error', () => {}); // the main thread's own client reports Redis being away
  let announced = false;
  let stopping = false;
  let beating = false;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const beat = async () => {
    clearTimeout(timer);
    if (stopping || beating) return;
    beating = true;
    try {
      // One slot (the queue's hash tag), so a Cluster takes both in one transaction.
      await redis
        .multi()
        .set(opts.key, String(process.pid), 'PX', opts.ttlMs)
        .sadd(opts.registry, opts.workerId)
        .exec();
      if (!announced) {
        announced = true;
        postMessage({ kind: 'beat' } satisfies HeartbeatNews);
      }
    } catch {
      // Redis away: nothing to do but try again on time. After ttlMs without a beat the key
      // lapses and another worker may take this one's runs (liveness.ts says when it may).
    } finally {
      beating = false;
    }
    if (!stopping) timer = setTimeout(beat, opts.everyMs);
  };
  // Connected (or back): beat at once rather than at the next tick.
  redis.on('ready', () => void beat());
  void beat();

  // A graceful stop: the worker has finished or handed back its runs, so the key can go now
  // rather than lapse (nothing is left for a reaper to release). Sent after any beat in flight
  // on the same connection, so no late beat sets the key again.
  return async () => {
    stopping = true;
    clearTimeout(timer);
    await redis
      .multi()
      .del(opts.key)
      .srem(opts.registry, opts.workerId)
      .exec()
      .catch(() => {});
    redis.disconnect();
    postMessage({ kind: 'stopped' } satisfies HeartbeatNews);
  };
}
