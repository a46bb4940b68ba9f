import type { Worker } from 'bullmq';
import type { Logger } from '../src/logger';
import type { RedisClient, RedisTarget } from '../src/redis/client';
import { settleWithin } from '../src/timeouts';
import type { HeartbeatNews, HeartbeatStart } from './heartbeat-thread';

/**
 * Takes a dead worker process's runs over in seconds rather than a lock period.
 *
 * Left to itself BullMQ finds a dead worker's job only once the job's lock has lapsed
 * (RUN_LOCK_MS after its last renewal) and a stalled check has seen it so twice (up to
 * RUN_STALLED_CHECK_MS apart): about a minute with the defaults. Shortening the lock would make
 * a busy worker look dead: the lock is renewed from the main event loop, which a CPU saturated
 * with runs can hold for seconds, and BullMQ does not stop a processor whose lock it lost, so
 * the run would go on in two workers at once.
 *
 * So a dead process is detected directly. Each worker keeps a liveness key
 * (`<queue>:alive:<worker id>`, TTL `TTL_MS`) renewed every `BEAT_MS` from a thread of its own
 * (heartbeat-thread.ts), which a busy main thread does not hold up, and names itself in a
 * registry set. Every worker process runs a reaper: once a second one script looks for registered
 * workers whose key is gone and, in the same script, deletes the locks their jobs hold (a lock's
 * token is `<worker id>:<n>`), marks those jobs stalled and clears the stalled check's own
 * throttle; then the reaper runs BullMQ's stalled check at once, which moves them back to wait
 * (counting the stall, so a run whose worker dies twice still fails `run_aborted`). One script:
 * a lock is only deleted while its owner's key is absent, and everything lives under the queue's
 * prefix, so on a Redis Cluster it is all one slot.
 *
 * What can go wrong, and what holds it:
 * - A process whose heartbeat cannot reach Redis for `TTL_MS` while it can still reach the
 *   database (a partition of that one process) is taken for dead, and its runs start again
 *   elsewhere while it may still be running them. The lock it loses is seen at its next renewal
 *   and its attempts are then aborted (worker.ts); until then a step it commits first wins (steps
 *   are committed by position, a run ends once). The same exposure exists without this at
 *   RUN_LOCK_MS; this shortens it to `TTL_MS`.
 * - Redis itself away: every key lapses together. A reaper judges nobody until its own
 *   connection has answered for `GRACE_MS` in a row, time for every live process to reconnect and
 *   beat again (ioredis retries at least every 2 s; the heartbeat beats on reconnecting); and a
 *   script sent before the outage but carried out after it judges nobody (MAX_SCRIPT_DELAY_MS).
 * - A main thread that is stuck for good while its heartbeat goes on: its runs are not taken by
 *   this, but by BullMQ's lock lapse, as before (RUN_LOCK_MS + RUN_STALLED_CHECK_MS).
 * - A worker that dies before its first beat (within milliseconds of starting) is not in the
 *   registry: its jobs, if it took any, also wait for the lock lapse.
 */
export const BEAT_MS = 1000;
/** How long a liveness key outlives its last beat: 5 beats missed in a row. */
export const TTL_MS = 5000;
/** How often the reaper looks for dead workers. */
export const REAP_EVERY_MS = 1000;
/** How long the reaper's own connection must have answered before it judges anyone. */
export const GRACE_MS = 3000;
/** How long a stop waits for the heartbeat to delete its key (else the key lapses). */
const STOP_WAIT_MS = 1000;

/**
 * How far the script's run may be from when it was sent (Redis's clock against the sender's):
 * a call sent before an outage and carried out after it (a client's retry, a TCP retransmission)
 * would judge everyone whose key lapsed meanwhile, so it judges nobody. Hosts keep their clocks
 * in step (NTP); one further off than this never reaps, and its dead wait for the lock lapse.
 */
const MAX_SCRIPT_DELAY_MS = 2000;

/**
 * KEYS: the registry (set), the active list, the stalled set, the stalled check's throttle key.
 * ARGV: the queue's key prefix (`<prefix>:<queue>:`), the liveness keys' prefix, this worker's
 * id (never judged by itself), the time it was sent (ms) and MAX_SCRIPT_DELAY_MS. Returns the
 * ids of the jobs whose locks it released, or false when it ran too far from its sending.
 */
const REAP_SCRIPT = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
if math.abs(now - tonumber(ARGV[4])) > tonumber(ARGV[5]) then return false end
local workers = redis.call('SMEMBERS', KEYS[1])
local dead = {}
local anyDead = false
for _, id in ipairs(workers) do
  if id ~= ARGV[3] and redis.call('EXISTS', ARGV[2] .. id) == 0 then
    dead[id] = true
    anyDead = true
  end
end
if not anyDead then return {} end
local released = {}
for _, jobId in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local lockKey = ARGV[1] .. jobId .. ':lock'
  local token = redis.call('GET', lockKey)
  local owner = token and string.match(token, '^(.*):[^:]*$')
  if owner and dead[owner] then
    redis.call('DEL', lockKey)
    redis.call('SADD', KEYS[3], jobId)
    table.insert(released, jobId)
  end
end
for id in pairs(dead) do redis.call('SREM', KEYS[1], id) end
if #released > 0 then redis.call('DEL', KEYS[4]) end
return released
`;

export interface Liveness {
  /** Stops the reaper, and the heartbeat after deleting this worker's key. */
  stop(): Promise<void>;
}

/** Starts `worker`'s heartbeat thread and its reaper (see above). */
export function startLiveness(
  worker: Worker,
  deps: { redis: RedisClient; target: RedisTarget; logger: Logger },
): Liveness {
  const { redis, logger } = deps;
  const registry = worker.toKey('alive');
  const keyOf = (workerId: string) => worker.toKey(`alive:${workerId}`);
  const thread = new globalThis.Worker(new URL('./heartbeat-thread.ts', import.meta.url).href);
  thread.unref();
  const stopped = new Promise<void>((resolve) => {
    thread.onmessage = (event: MessageEvent<HeartbeatNews>) => {
      if (event.data.kind === 'stopped') resolve();
    };
  });
  thread.onerror = (event) => {
    // Without its heartbeat this worker's runs are recovered as before, by the lock lapse.
    logger.error({ err: event.message }, 'the worker heartbeat thread failed');
  };
  thread.postMessage({
    kind: 'start',
    target: deps.target,
    key: keyOf(worker.id),
    registry,
    workerId: worker.id,
    everyMs: BEAT_MS,
    ttlMs: TTL_MS,
  } satisfies HeartbeatStart);

  let answeringSince: number | undefined;
  let warnedOfClock = false;
  let closing = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const keys = [
    registry,
    worker.keys.active,
    worker.keys.stalled,
    worker.keys['stalled-check'],
  ] as string[];
  /** The jobs it released; none before its connection has answered GRACE_MS in a row. */
  const releaseDeadWorkersJobs = async (since: number): Promise<string[]> => {
    if (Date.now() - since < GRACE_MS) {
      await redis.ping();
      return [];
    }
    const args = [worker.toKey(''), keyOf(''), worker.id, Date.now(), MAX_SCRIPT_DELAY_MS];
    const released = (await redis.eval(REAP_SCRIPT, keys.length, ...keys, ...args)) as
      | string[]
      | null;
    if (released === null && !warnedOfClock) {
      warnedOfClock = true;
      logger.warn(
        { maxDelayMs: MAX_SCRIPT_DELAY_MS },
        "the reaper's script ran far from its sending (slow Redis, or this host's clock is off Redis's): it judged nobody",
      );
    }
    return released ?? [];
  };
  const reap = async () => {
    try {
      const since = answeringSince ?? Date.now();
      const released = await releaseDeadWorkersJobs(since);
      answeringSince = since;
      if (released.length > 0) {
        logger.warn(
          { jobs: released.length, runIds: released.slice(0, 20) },
          'a worker process is gone: its runs are handed to the live workers',
        );
        // BullMQ's own check, now rather than at its next interval: it moves the released jobs
        // back to wait, counting their stall.
        if (!closing) await worker.startStalledCheckTimer();
      }
    } catch {
      answeringSince = undefined; // Redis away: judge nobody until it has answered GRACE_MS
    }
    if (!closing) timer = setTimeout(reap, REAP_EVERY_MS);
  };
  timer = setTimeout(reap, 0);

  return {
    async stop() {
      closing = true;
      clearTimeout(timer);
      thread.postMessage({ kind: 'stop' });
      await settleWithin(stopped, STOP_WAIT_MS);
      thread.terminate();
    },
  };
}
