import { join } from 'node:path';
import { type Subprocess, spawn } from 'bun';
import { freePort } from './ports';
import { probeRedis } from './redis-probe';

const MAIN = join(import.meta.dir, '..', 'src', 'main.ts');
const READY_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 30_000;

export type Role = 'api' | 'worker' | 'both';

export interface ServerProcess {
  proc: Subprocess;
  role: Role;
  /** Its REDIS_CONSUMER_NAME, which is also its BullMQ worker's name. */
  name: string;
  port: number;
  /** Only meaningful for the api and both roles (a worker serves no HTTP). */
  baseUrl: string;
  /** Everything the process printed, for assertions and for a failing test's message. */
  output: string[];
  /** Sends the signal and resolves with the exit code once the process is gone. */
  kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<number>;
  /** SIGTERM and wait; SIGKILL if it has not left after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<number>;
}

let counter = 0;

/**
 * The real server as a child process (`bun src/main.ts [api|worker]`), so a test can kill it
 * for real. `env` is the child's configuration on top of this process's environment; LOG_LEVEL
 * defaults to warn, PORT to a free port, REDIS_CONSUMER_NAME to a name unique to this child.
 *
 * Resolves once the process is ready, polled, never slept on: for api and both, `GET /ready`
 * answers 200 (the database and Redis answer); for a worker, which serves no HTTP, its BullMQ
 * worker's connection shows in Redis's CLIENT LIST. `readiness: 'listening'` waits for
 * `GET /health` instead, for an API started while Redis is down on purpose. Rejects, with the child's output, if it exits or is not ready in time.
 */
export async function spawnServer(
  role: Role,
  env: Record<string, string>,
  opts: { readiness?: 'ready' | 'listening' } = {},
): Promise<ServerProcess> {
  const port = await freePort();
  const name = env.REDIS_CONSUMER_NAME ?? `${role}-${process.pid}-${counter++}`;
  const output: string[] = [];
  const proc = spawn(['bun', MAIN, ...(role === 'both' ? [] : [role])], {
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      ...env,
      PORT: String(port),
      REDIS_CONSUMER_NAME: name,
    },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  // Drain both pipes for the whole life of the child: a full pipe would block it.
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) output.push(decoder.decode(chunk));
  };
  void read(proc.stdout as ReadableStream<Uint8Array>);
  void read(proc.stderr as ReadableStream<Uint8Array>);

  const baseUrl = `http://127.0.0.1:${port}`;
  const child: ServerProcess = {
    proc,
    role,
    name,
    port,
    baseUrl,
    output,
    async kill(signal) {
      proc.kill(signal);
      return proc.exited;
    },
    async stop(timeoutMs = STOP_TIMEOUT_MS) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      try {
        return await proc.exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };

  const ready =
    role === 'worker'
      ? () => workerRegistered(env.REDIS_URL, name)
      : () =>
          fetch(`${baseUrl}/${opts.readiness === 'listening' ? 'health' : 'ready'}`)
            .then((r) => r.ok)
            .catch(() => false);
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (!(await ready())) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      throw new Error(
        `${role} ${name} exited (${proc.exitCode ?? proc.signalCode}) before it was ready:\n${output.join('')}`,
      );
    }
    if (Date.now() > deadline) {
      await child.kill('SIGKILL');
      throw new Error(
        `${role} ${name} was not ready in ${READY_TIMEOUT_MS} ms:\n${output.join('')}`,
      );
    }
    await Bun.sleep(50);
  }
  return child;
}

/**
 * A worker process is ready when its BullMQ worker has connected: BullMQ names that connection
 * `<prefix>:<base64 queue>:w:<worker name>`, and the worker name is the consumer name. (Its
 * stream consumer cannot be seen the same way: before Redis 7.2 a consumer only shows in the
 * group once a read delivered it something.)
 */
function workerRegistered(redisUrl: string | undefined, name: string): Promise<boolean> {
  return probeRedis(redisUrl || 'redis://localhost:6379', async (redis) => {
    const clients = (await redis.client('LIST')) as string;
    return clients
      .split('\n')
      .some((line) => / name=(\S+)/.exec(line)?.[1]?.endsWith(`:w:${name}`));
  });
}

/** One API process and any number of worker processes over one store and one Redis. */
export interface ProcessGroup {
  api: ServerProcess;
  workers: ServerProcess[];
  /** Every process started, killed ones too. */
  all: ServerProcess[];
  /** Another worker process with the same settings. */
  addWorker(extra?: Record<string, string>): Promise<ServerProcess>;
  /** SIGTERM to every process still running, SIGKILL to any still there after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
}

/**
 * Starts `bun src/main.ts api` once and `bun src/main.ts worker` `workers` times with one
 * `env` (each gets its own port and consumer name; worker i also `workerEnv(i)`), all ready
 * when this resolves, `workers[i]` being worker i. If one fails to start, the ones already
 * started are stopped before the error is thrown.
 */
export async function startProcessGroup(opts: {
  workers: number;
  env: Record<string, string>;
  workerEnv?: (index: number) => Record<string, string>;
}): Promise<ProcessGroup> {
  const all: ServerProcess[] = [];
  const stop = async (timeoutMs?: number) => {
    const running = all.filter((p) => p.proc.exitCode === null && p.proc.signalCode === null);
    await Promise.all(running.map((p) => p.stop(timeoutMs)));
  };
  const start = async (role: Role, env: Record<string, string>) => {
    const child = await spawnServer(role, env);
    all.push(child);
    return child;
  };
  try {
    const api = await start('api', opts.env);
    // allSettled: every worker that did start is tracked (and stopped) before an error is thrown.
    const started = await Promise.allSettled(
      Array.from({ length: opts.workers }, (_, i) =>
        start('worker', { ...opts.env, ...opts.workerEnv?.(i) }),
      ),
    );
    const workers = started.map((result) => {
      if (result.status === 'rejected') throw result.reason;
      return result.value;
    });
    const addWorker = async (extra: Record<string, string> = {}) => {
      const worker = await start('worker', { ...opts.env, ...extra });
      workers.push(worker);
      return worker;
    };
    return { api, workers, all, addWorker, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export async function postMessage(
  baseUrl: string,
  body: unknown,
  headers: Record<string, string> = {},
) {
  const response = await fetch(`${baseUrl}/api/chat/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect bodies freely
  return { status: response.status, body: (await response.json()) as any };
}
