import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'bun';
import { freePort } from './ports';

/** The newest installed PostgreSQL server's binaries (Debian: /usr/lib/postgresql/<v>/bin). */
function serverBinaries(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((v) => existsSync(join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] === undefined ? undefined : join(root, versions[0], 'bin');
}

export const postgresServerInstalled = (): boolean => serverBinaries() !== undefined;

/**
 * A private PostgreSQL server for tests that stop and restart the database: never the shared
 * one. Its own data directory (initdb, trust auth, no fsync) and a free port; as root it runs
 * as the `postgres` user, since PostgreSQL refuses to run as root.
 */
export class PrivatePostgres {
  private constructor(
    private readonly bin: string,
    private readonly dir: string,
    readonly port: number,
  ) {}

  static async start(): Promise<PrivatePostgres> {
    const bin = serverBinaries();
    if (!bin) throw new Error('no PostgreSQL server installed (apt-get install postgresql)');
    const dir = mkdtempSync(join(tmpdir(), 'agent-run-pg-'));
    const pg = new PrivatePostgres(bin, dir, await freePort());
    if (process.getuid?.() === 0) chownSync(dir, uid('postgres'), gid('postgres'));
    pg.run('initdb', '-D', pg.data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--no-sync');
    pg.up();
    return pg;
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private get data(): string {
    return join(this.dir, 'data');
  }

  /** Starts the server and waits until it takes connections (pg_ctl -w); a no-op while it runs. */
  up(): void {
    if (this.running()) return;
    const options = `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
    this.run('pg_ctl', '-D', this.data, '-o', options, '-l', join(this.dir, 'log'), '-w', 'start');
  }

  /** Stops it at once, as a crash would: every connection is cut. */
  down(): void {
    this.run('pg_ctl', '-D', this.data, '-m', 'immediate', '-w', 'stop');
  }

  /** For good: down, and its directory removed. */
  stop(): void {
    try {
      this.down();
    } catch {
      // already down
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private running(): boolean {
    return this.spawn('pg_ctl', '-D', this.data, 'status').exitCode === 0;
  }

  private run(tool: string, ...args: string[]): void {
    const result = this.spawn(tool, ...args);
    if (result.exitCode !== 0) {
      throw new Error(`${tool} failed (${result.exitCode}): ${result.stderr.toString()}`);
    }
  }

  private spawn(tool: string, ...args: string[]) {
    const asPostgres = process.getuid?.() === 0 ? ['runuser', '-u', 'postgres', '--'] : [];
    return spawnSync([...asPostgres, join(this.bin, tool), ...args], {
      stdout: 'pipe',
      stderr: 'pipe',
    });
  }
}

function uid(user: string): number {
  return Number(spawnSync(['id', '-u', user]).stdout.toString().trim());
}

function gid(user: string): number {
  return Number(spawnSync(['id', '-g', user]).stdout.toString().trim());
}
