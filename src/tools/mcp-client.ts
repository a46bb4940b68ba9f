/**
 * One MCP server, kept connected: the only file that imports the MCP SDK's client. It connects at
 * `start()`, lists the server's tools (again whenever the server says they changed), and when the
 * server does not answer or goes away it logs, forgets the tools and tries again with backoff, so
 * a server that comes back is used again without a restart.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { McpError, ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import pkg from '../../package.json';
import type { Logger } from '../logger';
import type { McpServerSpec } from './model';
import { abortResult, type CallResult, capOutput } from './output';

/** The longest an MCP tool call may take (the SDK's own default). */
export const MCP_CALL_TIMEOUT_MS = 60_000;
/** How long `start()` waits for a server's first answer before going on without its tools. */
const CONNECT_TIMEOUT_MS = 10_000;

export interface RetryPolicy {
  /** First wait after a failure; doubles each time. Default 500. */
  initialMs: number;
  /** The longest wait. Default 30000. */
  maxMs: number;
}

export interface McpTool {
  /** The tool's own name on its server. */
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

export class McpConnection {
  private client: Client | undefined;
  private state: 'idle' | 'connecting' | 'ready' | 'down' | 'closed' = 'idle';
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  tools: McpTool[] = [];

  constructor(
    readonly spec: McpServerSpec,
    private readonly opts: {
      logger: Logger;
      retry: RetryPolicy;
      /** Called whenever `tools` changed (listed, refreshed, or gone with the server). */
      onTools: () => void;
    },
  ) {}

  get ready(): boolean {
    return this.state === 'ready';
  }

  /** The first attempt; later ones run on their own, with backoff. */
  async start(): Promise<void> {
    await this.connect();
  }

  async close(): Promise<void> {
    this.state = 'closed';
    clearTimeout(this.retryTimer);
    const client = this.client;
    this.client = undefined;
    await client?.close().catch(() => {});
  }

  async call(
    tool: string,
    args: Record<string, unknown>,
    meta: { idempotencyKey: string },
    signal: AbortSignal | undefined,
    maxChars: number,
  ): Promise<CallResult> {
    const client = this.client;
    const what = `the call to ${this.spec.name}__${tool}`;
    if (!client || this.state !== 'ready') {
      return {
        isError: true,
        output: `MCP server "${this.spec.name}" is not connected`,
        outcome: 'unavailable',
      };
    }
    try {
      // The SDK turns an abort into MCP's notifications/cancelled for this request.
      const result = await client.callTool(
        { name: tool, arguments: args, _meta: meta },
        undefined,
        {
          signal,
          timeout: MCP_CALL_TIMEOUT_MS,
        },
      );
      const output = contentText(result.content, result.structuredContent);
      const isError = result.isError === true;
      return { isError, output: capOutput(output, maxChars), outcome: isError ? 'error' : 'ok' };
    } catch (error) {
      if (signal?.aborted) return abortResult(signal, what, MCP_CALL_TIMEOUT_MS);
      const code = (error as { code?: unknown }).code;
      if (code === -32001) return abortResult(undefined, what, MCP_CALL_TIMEOUT_MS);
      // Not an answer from the server (a refused connection…): find out whether it went away.
      if (!(error instanceof McpError)) void this.checkAlive();
      return {
        isError: true,
        output: `${what} failed: ${(error as Error).message}`,
        outcome: 'error',
      };
    }
  }

  private async connect(): Promise<void> {
    if (this.state === 'closed' || this.state === 'connecting') return;
    this.state = 'connecting';
    const log = this.opts.logger.child({ mcpServer: this.spec.name });
    const client = new Client({ name: pkg.name, version: pkg.version });
    const transport = this.transport(log);
    try {
      await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS });
      if ((this.state as string) === 'closed') {
        await client.close().catch(() => {});
        return;
      }
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
        void this.refresh(client).catch((error) =>
          log.warn({ error: (error as Error).message }, 'MCP server: listing its tools failed'),
        );
      });
      this.tools = await listAll(client);
      this.client = client;
      this.state = 'ready';
      this.failures = 0;
      client.onclose = () => this.lost(client, 'the connection closed');
      client.onerror = () => void this.checkAlive();
      log.info({ tools: this.tools.map((tool) => tool.name) }, 'MCP server connected');
      this.opts.onTools();
    } catch (error) {
      await client.close().catch(() => {});
      if ((this.state as string) === 'closed') return;
      this.state = 'down';
      this.scheduleRetry(log, (error as Error).message);
    }
  }

  private transport(log: Logger): Transport {
    const spec = this.spec;
    if ('url' in spec) {
      return new StreamableHTTPClientTransport(new URL(spec.url), {
        requestInit: { headers: spec.headers ?? {} },
      });
    }
    const transport = new StdioClientTransport({
      command: spec.command,
      args: spec.args ?? [],
      env: spec.env,
      stderr: 'pipe',
    });
    transport.stderr?.on('data', (chunk: Buffer) =>
      log.info({ stderr: chunk.toString().trimEnd() }, 'MCP server wrote to stderr'),
    );
    return transport;
  }

  private async refresh(client: Client): Promise<void> {
    const tools = await listAll(client);
    if (this.client !== client) return;
    this.tools = tools;
    this.opts.logger
      .child({ mcpServer: this.spec.name })
      .info({ tools: tools.map((tool) => tool.name) }, 'MCP server: its tools changed');
    this.opts.onTools();
  }

  /** A ping after an error: a server that does not answer is treated as gone. */
  private async checkAlive(): Promise<void> {
    const client = this.client;
    if (!client || this.state !== 'ready') return;
    try {
      await client.ping({ timeout: 5000 });
    } catch (error) {
      this.lost(client, (error as Error).message);
    }
  }

  private lost(client: Client, reason: string): void {
    if (this.client !== client || this.state === 'closed') return;
    this.client = undefined;
    this.state = 'down';
    this.tools = [];
    this.opts.onTools();
    void client.close().catch(() => {});
    this.scheduleRetry(this.opts.logger.child({ mcpServer: this.spec.name }), reason);
  }

  private scheduleRetry(log: Logger, reason: string): void {
    const { initialMs, maxMs } = this.opts.retry;
    const delayMs = Math.min(initialMs * 2 ** this.failures, maxMs);
    this.failures += 1;
    log.warn(
      { error: reason, retryInMs: delayMs, failures: this.failures },
      'MCP server is not answering: its tools are missing until it does',
    );
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => void this.connect(), delayMs);
  }
}

/** Every tool, across pages. */
async function listAll(client: Client): Promise<McpTool[]> {
  const tools: McpTool[] = [];
  let cursor: string | undefined;
  do {
    const page = await client.listTools(cursor ? { cursor } : undefined);
    for (const tool of page.tools) {
      tools.push({
        name: tool.name,
        description: tool.description ?? '',
        inputSchema: tool.inputSchema as Record<string, unknown>,
      });
    }
    cursor = page.nextCursor;
  } while (cursor);
  return tools;
}

/** Text parts joined; any other part (an image, a resource) as its JSON. */
function contentText(content: unknown, structured: unknown): string {
  const parts = Array.isArray(content) ? content : [];
  if (parts.length === 0 && structured !== undefined) return JSON.stringify(structured);
  return parts
    .map((part: { type?: string; text?: string }) =>
      part.type === 'text' && typeof part.text === 'string' ? part.text : JSON.stringify(part),
    )
    .join('\n');
}
