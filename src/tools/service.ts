import type { ValidateFunction } from 'ajv';
import { AppError } from '../errors';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics/metrics';
import { callHttpTool } from './http-tool';
import { createSchemaCompiler } from './json-schema';
import { McpConnection, type RetryPolicy } from './mcp-client';
import { type HttpToolSpec, MCP_SEPARATOR, TOOL_NAME_PATTERN, type ToolsFile } from './model';
import type { CallResult } from './output';

/** A tool the server runs itself, as `GET /api/chat/tools` and the model see it. */
export interface ServerTool {
  name: string;
  description: string;
  /** JSON Schema of the arguments. */
  parameters: Record<string, unknown>;
  source: 'http' | 'mcp';
  /** The MCP server it comes from. */
  server?: string;
  /** A call waits for the client's approval. */
  approval: boolean;
}

export interface ToolOutcome {
  isError: boolean;
  /** What the model is given: the tool's answer, or what went wrong; cut to TOOL_MAX_OUTPUT_CHARS. */
  output: string;
  durationMs: number;
}

export interface ToolCallContext {
  runId: string;
  threadId: string;
  /** The model's id for the call; with the run id, the call's idempotency key. */
  toolCallId: string;
  /** Aborts the call (a cancelled run): an HTTP tool's request, an MCP server's request. */
  signal?: AbortSignal;
  /** The run's logger; its lines get the call's ids either way. */
  logger?: Logger;
}

export interface ToolRegistry {
  /** Every tool now: the file's HTTP tools, then each connected MCP server's. */
  list(): ServerTool[];
  get(name: string): ServerTool | undefined;
  /**
   * Names (or `<server>__*`, every tool of that server now) → tool names, in order, once each.
   * An unknown name or server is an AppError `tool_not_found` (400).
   */
  resolve(names: string[]): string[];
  /**
   * Validates `args` (the model's JSON text) against the tool's schema first: invalid JSON or
   * arguments are an error result and no call. Never throws for a tool's own failure: a non-2xx,
   * a timeout, a cancel, a network error, an MCP `isError`, an unknown tool are error results.
   */
  call(name: string, args: string, ctx: ToolCallContext): Promise<ToolOutcome>;
  /** Connects the MCP servers (waits for each one's first attempt, not for retries). */
  start(): Promise<void>;
  close(): Promise<void>;
}

interface Entry {
  tool: ServerTool;
  /** Null when the schema could not be compiled (an MCP server's): the server checks. */
  validate: ValidateFunction | null;
  run(args: Record<string, unknown>, raw: string, ctx: ToolCallContext): Promise<CallResult>;
}

const NAME = new RegExp(TOOL_NAME_PATTERN);

/** The server tools of `TOOLS_FILE`. Built in deps.ts, started by the roles, closed by deps. */
export function createToolRegistry(opts: {
  servers: ToolsFile;
  maxOutputChars: number;
  logger: Logger;
  metrics: Metrics;
  /** MCP reconnects: 0.5 s doubling to 30 s by default; tests go faster. */
  retry?: RetryPolicy;
}): ToolRegistry {
  const { servers, maxOutputChars, logger, metrics } = opts;
  const compiler = createSchemaCompiler();
  const httpEntries = new Map<string, Entry>(
    servers.http.map((spec) => [spec.name, httpEntry(spec)] as const),
  );
  let mcpEntries = new Map<string, Entry>();
  const connections = servers.mcp.map(
    (spec) =>
      new McpConnection(spec, {
        logger,
        retry: opts.retry ?? { initialMs: 500, maxMs: 30_000 },
        onTools: () => {
          mcpEntries = mcpToolEntries();
        },
      }),
  );

  function httpEntry(spec: HttpToolSpec): Entry {
    const compiled = compiler.compile(spec.parameters);
    return {
      tool: {
        name: spec.name,
        description: spec.description,
        parameters: spec.parameters,
        source: 'http',
        approval: spec.approval ?? false,
      },
      validate: typeof compiled === 'string' ? null : compiled, // the file was checked at start-up
      run: (_args, raw, ctx) => callHttpTool(spec, raw, ctx, maxOutputChars),
    };
  }

  function mcpToolEntries(): Map<string, Entry> {
    const entries = new Map<string, Entry>();
    for (const connection of connections) {
      const server = connection.spec.name;
      for (const tool of connection.tools) {
        const name = `${server}${MCP_SEPARATOR}${tool.name}`;
        if (!NAME.test(name) || httpEntries.has(name)) {
          logger.warn(
            { mcpServer: server, tool: tool.name },
            `MCP tool left out: "${name}" is not a usable tool name (${TOOL_NAME_PATTERN}, unique)`,
          );
          continue;
        }
        const compiled = compiler.compile(tool.inputSchema);
        if (typeof compiled === 'string') {
          logger.warn(
            { mcpServer: server, tool: tool.name, error: compiled },
            'MCP tool schema not usable here: its arguments are checked by its server only',
          );
        }
        entries.set(name, {
          tool: {
            name,
            description: tool.description,
            parameters: tool.inputSchema,
            source: 'mcp',
            server,
            approval: connection.spec.approval ?? false,
          },
          validate: typeof compiled === 'string' ? null : compiled,
          run: (args, _raw, ctx) =>
            connection.call(
              tool.name,
              args,
              { idempotencyKey: `${ctx.runId}.${ctx.toolCallId}` },
              ctx.signal,
              maxOutputChars,
            ),
        });
      }
    }
    return entries;
  }

  const entry = (name: string) => httpEntries.get(name) ?? mcpEntries.get(name);

  type Checked = { args: Record<string, unknown> } | { rejected: CallResult };
  function check(found: Entry, args: string): Checked {
    let parsed: unknown;
    try {
      parsed = JSON.parse(args === '' ? '{}' : args);
    } catch (error) {
      return invalid(`the arguments are not JSON: ${(error as Error).message}`);
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      return invalid('the arguments must be a JSON object');
    }
    if (found.validate && !found.validate(parsed)) {
      return invalid(`invalid arguments: ${compiler.describe(found.validate)}`);
    }
    return { args: parsed as Record<string, unknown> };
  }

  return {
    list: () => [...httpEntries.values(), ...mcpEntries.values()].map((found) => found.tool),
    get: (name) => entry(name)?.tool,
    resolve(names) {
      const resolved = new Set<string>();
      for (const name of names) {
        if (name.endsWith(`${MCP_SEPARATOR}*`)) {
          const server = name.slice(0, -(MCP_SEPARATOR.length + 1));
          if (!connections.some((connection) => connection.spec.name === server)) {
            throw new AppError('tool_not_found', `no MCP server named "${server}"`, { name });
          }
          for (const found of mcpEntries.values()) {
            if (found.tool.server === server) resolved.add(found.tool.name);
          }
        } else if (entry(name)) {
          resolved.add(name);
        } else {
          throw new AppError('tool_not_found', `no tool named "${name}"`, { name });
        }
      }
      return [...resolved];
    },
    async call(name, args, ctx) {
      const log = (ctx.logger ?? logger).child({
        runId: ctx.runId,
        threadId: ctx.threadId,
        toolCallId: ctx.toolCallId,
        tool: name,
      });
      const startedAt = performance.now();
      const found = entry(name);
      let result: CallResult;
      if (!found) {
        result = { isError: true, output: `no tool named "${name}"`, outcome: 'unavailable' };
      } else {
        const checked = check(found, args);
        result =
          'rejected' in checked
            ? checked.rejected
            : await found.run(checked.args, args, ctx).catch(
                (error): CallResult => ({
                  isError: true,
                  output: `the call failed: ${(error as Error).message}`,
                  outcome: 'error',
                }),
              );
      }
      const durationMs = Math.round(performance.now() - startedAt);
      const source = found?.tool.source ?? 'unknown';
      metrics.toolCalls.inc({ tool: name, source, outcome: result.outcome });
      metrics.toolDuration.observe(
        { tool: name, source, outcome: result.outcome },
        durationMs / 1000,
      );
      const line = { outcome: result.outcome, durationMs, source };
      if (result.outcome === 'ok') log.info(line, 'tool call finished');
      else log.warn({ ...line, output: result.output.slice(0, 500) }, 'tool call failed');
      return { isError: result.isError, output: result.output, durationMs };
    },
    async start() {
      await Promise.all(connections.map((connection) => connection.start()));
    },
    async close() {
      await Promise.all(connections.map((connection) => connection.close()));
    },
  };
}

function invalid(output: string): { rejected: CallResult } {
  return { rejected: { isError: true, output, outcome: 'invalid_arguments' } };
}
