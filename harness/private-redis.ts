import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Subprocess, spawn } from 'bun';
import { freePort } from './ports';
import { probeRedis, redisAnswers } from './redis-probe';

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
