import { join } from 'node:path';
import { type Subprocess, spawn } from 'bun';
import { freePort } from './redis';

const MAIN = join(import.meta.dir, '..', '..', 'src', 'main.ts');

export interface ServerProcess {
  proc: Subprocess;
  role: 'api' | 'worker' | 'both';
  port: number;
  baseUrl: string;
  /** Everything the process printed, for assertions and for a failing test's message. */
  output: string[];
  kill(signal: 'SIGKILL' | 'SIGTERM'): Promise<number>;
}

/**
 * The real server as a child process (`bun src/main.ts [api|worker]`), so a test can kill it
 * for real. Resolves once it says it started (and, for the API, once /health answers).
 */
export async function spawnServer(
  role: 'api' | 'worker' | 'both',
  env: Record<string, string>,
): Promise<ServerProcess> {
  const port = await freePort();
  const output: string[] = [];
  const proc = spawn(['bun', MAIN, ...(role === 'both' ? [] : [role])], {
    // info: the start-up line is how we know it is up.
    env: { ...process.env, ...env, LOG_LEVEL: 'info', PORT: String(port) },
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const started = new Promise<void>((resolve, reject) => {
    const read = async (stream: ReadableStream<Uint8Array>) => {
      const decoder = new TextDecoder();
      for await (const chunk of stream) {
        const text = decoder.decode(chunk);
        output.push(text);
        if (text.includes('agent-run server started')) resolve();
      }
    };
    void read(proc.stdout as ReadableStream<Uint8Array>);
    void read(proc.stderr as ReadableStream<Uint8Array>);
    void proc.exited.then((code) =>
      reject(new Error(`${role} exited with ${code} before starting:\n${output.join('')}`)),
    );
  });
  await started;
  const baseUrl = `http://127.0.0.1:${port}`;
  if (role !== 'worker') {
    for (let i = 0; i < 100; i++) {
      const ok = await fetch(`${baseUrl}/health`)
        .then((r) => r.ok)
        .catch(() => false);
      if (ok) break;
      await Bun.sleep(50);
    }
  }
  return {
    proc,
    role,
    port,
    baseUrl,
    output,
    async kill(signal) {
      proc.kill(signal);
      return proc.exited;
    },
  };
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
