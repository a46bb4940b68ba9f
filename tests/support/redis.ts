import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Subprocess, spawn } from 'bun';
import { Redis } from 'ioredis';

/** The shared Redis the integration tests use; each test run isolates itself by key prefix. */
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** Set by preload.ts: true when the Redis integration tests should run. */
export function redisTestsEnabled(): boolean {
  return (globalThis as { __redisTests?: boolean }).__redisTests === true;
}

export async function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * A private `redis-server` for tests that stop or restart Redis: never the shared one.
 * By default without persistence, so a restart loses its data like a real unpersisted Redis.
 */
export class PrivateRedis {
  private process: Subprocess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'agent-run-redis-'));
  private constructor(
    readonly port: number,
    private readonly persist: boolean,
  ) {}

  /** `persist`: an append-only file synced on every write, so a restart keeps the data. */
  static async start(opts: { persist?: boolean } = {}): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), opts.persist ?? false);
    await redis.up();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /**
   * Starts it; a no-op while it runs: a second redis-server on the port would exit at once and
   * leave the running one untracked, so down() would no longer stop it.
   */
  async up(): Promise<void> {
    if (this.process && this.process.exitCode === null && this.process.signalCode === null) return;
    this.process = spawn(
      [
        'redis-server',
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        this.persist ? 'yes' : 'no',
        '--appendfsync',
        'always',
        '--dir',
        this.dir,
      ],
      { stdout: 'ignore', stderr: 'ignore' },
    );
    const deadline = Date.now() + 10_000;
    while (!(await redisAnswers(this.url, 200))) {
      if (Date.now() > deadline) throw new Error(`redis-server did not start on ${this.port}`);
      await Bun.sleep(50);
    }
  }

  async down(): Promise<void> {
    this.process?.kill('SIGKILL');
    await this.process?.exited;
    this.process = undefined;
  }

  /** For good: down, and its data directory removed. */
  async stop(): Promise<void> {
    await this.down();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
