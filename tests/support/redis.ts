import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Subprocess, spawn } from 'bun';
import { Redis } from 'ioredis';
import type { RedisClient } from '../../src/redis/client';

/** The shared Redis the integration tests use; each test run isolates itself by key prefix. */
export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';

/** Set by preload.ts: true when the Redis integration tests should run. */
export function redisTestsEnabled(): boolean {
  return (globalThis as { __redisTests?: boolean }).__redisTests === true;
}

/**
 * Asks one question on a connection of its own that gives up at once: `ask`'s answer, or false
 * when Redis does not answer (yet). For polling until something is ready.
 */
export async function probeRedis(
  url: string,
  ask: (client: Redis) => Promise<boolean>,
  timeoutMs = 1000,
): Promise<boolean> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await ask(client);
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export function redisAnswers(url: string, timeoutMs = 1000): Promise<boolean> {
  return probeRedis(url, async (client) => (await client.ping()) === 'PONG', timeoutMs);
}

/**
 * Deletes every key matching a KEYS pattern. KEYS sees one server's keys, so on a Cluster it asks
 * every master; keys are deleted one by one, as a Cluster refuses a DEL across slots.
 */
export async function deleteKeysMatching(client: RedisClient, pattern: string): Promise<number> {
  const servers = client instanceof Redis ? [client] : client.nodes('master');
  const keys = (await Promise.all(servers.map((server) => server.keys(pattern)))).flat();
  await Promise.all(keys.map((key) => client.del(key)));
  return keys.length;
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

/**
 * A private Redis Cluster of three masters (no replicas), each a `redis-server` on a free port
 * with its own folder, created with `redis-cli --cluster create`. Never the shared Redis.
 */
export class PrivateRedisCluster {
  private readonly processes: Subprocess[] = [];
  private readonly dir = mkdtempSync(join(tmpdir(), 'agent-run-cluster-'));
  private constructor(readonly ports: number[]) {}

  static async start(masters = 3): Promise<PrivateRedisCluster> {
    const ports: number[] = [];
    while (ports.length < masters) {
      const port = await freePort();
      // A cluster node also listens on port + 10000 (the cluster bus).
      if (port <= 55535 && !ports.includes(port)) ports.push(port);
    }
    const cluster = new PrivateRedisCluster(ports);
    try {
      await cluster.up();
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** `REDIS_CLUSTER_NODES` for this cluster. */
  get nodes(): string {
    return this.ports.map((port) => `127.0.0.1:${port}`).join(',');
  }

  private async up(): Promise<void> {
    for (const port of this.ports) {
      this.processes.push(
        spawn(
          [
            'redis-server',
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(this.dir, `nodes-${port}.conf`),
            '--save',
            '',
            '--appendonly',
            'no',
            '--dir',
            this.dir,
            '--daemonize',
            'no',
          ],
          { stdout: 'ignore', stderr: 'ignore' },
        ),
      );
    }
    const deadline = Date.now() + 20_000;
    for (const port of this.ports) {
      while (!(await redisAnswers(`redis://127.0.0.1:${port}`, 200))) {
        if (Date.now() > deadline) throw new Error(`redis-server did not start on ${port}`);
        await Bun.sleep(50);
      }
    }
    const create = spawn(
      [
        'redis-cli',
        '--cluster',
        'create',
        ...this.ports.map((port) => `127.0.0.1:${port}`),
        '--cluster-replicas',
        '0',
        '--cluster-yes',
      ],
      { stdout: 'pipe', stderr: 'pipe' },
    );
    const [code, out, err] = await Promise.all([
      create.exited,
      new Response(create.stdout).text(),
      new Response(create.stderr).text(),
    ]);
    if (code !== 0) throw new Error(`redis-cli --cluster create failed (${code}):\n${out}${err}`);
    // Every node must see every slot served before a client may rely on the cluster.
    for (const port of this.ports) {
      while (!(await clusterStateOk(port))) {
        if (Date.now() > deadline) throw new Error(`cluster_state is not ok on ${port}`);
        await Bun.sleep(50);
      }
    }
  }

  /** Kills every node and removes their folder. */
  async stop(): Promise<void> {
    for (const node of this.processes) node.kill('SIGKILL');
    await Promise.all(this.processes.map((node) => node.exited));
    this.processes.length = 0;
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function clusterStateOk(port: number): Promise<boolean> {
  return probeRedis(`redis://127.0.0.1:${port}`, async (client) => {
    const info = (await client.call('CLUSTER', 'INFO')) as string;
    return /^cluster_state:ok\r?$/m.test(info);
  });
}
