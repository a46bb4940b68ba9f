import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  type CallToolResult,
  ListToolsRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';

/** What an MCP test server saw: each call with its `_meta`, and each call it saw cancelled. */
export interface McpServerLog {
  calls: { name: string; arguments: Record<string, unknown>; meta: Record<string, unknown> }[];
  cancelled: string[];
}

const object = (properties: Record<string, unknown>, required: string[] = []) => ({
  type: 'object',
  properties,
  required,
});

/**
 * The tools of the MCP test servers (both transports): `echo` answers its arguments and
 * `_meta.idempotencyKey`; `fail` answers `isError`; `wait` answers when cancelled (or after
 * `ms`); `add_tool` adds a tool named by its argument and says the list changed.
 */
export function createMcpToolSet() {
  const log: McpServerLog = { calls: [], cancelled: [] };
  const tools = [
    {
      name: 'echo',
      description: 'Answers its arguments',
      inputSchema: object({ text: { type: 'string' } }, ['text']),
    },
    { name: 'fail', description: 'Always an error result', inputSchema: object({}) },
    {
      name: 'wait',
      description: 'Answers after ms, or when cancelled',
      inputSchema: object({ ms: { type: 'integer', minimum: 0 } }),
    },
    {
      name: 'add_tool',
      description: 'Adds a tool and says the list changed',
      inputSchema: object({ name: { type: 'string' } }, ['name']),
    },
  ];
  const servers = new Set<Server>();

  /** One protocol server (one per session: the SDK binds a server to one transport). */
  function createServer(): Server {
    const server = new Server(
      { name: 'test-tools', version: '1.0.0' },
      { capabilities: { tools: { listChanged: true } } },
    );
    server.setRequestHandler(ListToolsRequestSchema, () => ({ tools }));
    server.setRequestHandler(CallToolRequestSchema, async (request, extra) => {
      const args = (request.params.arguments ?? {}) as Record<string, unknown>;
      const meta = (request.params._meta ?? {}) as Record<string, unknown>;
      log.calls.push({ name: request.params.name, arguments: args, meta });
      const text = (value: string, isError = false): CallToolResult => ({
        content: [{ type: 'text', text: value }],
        isError,
      });
      switch (request.params.name) {
        case 'echo':
          return {
            content: [
              {
                type: 'text',
                text: JSON.stringify({ arguments: args, idempotencyKey: meta.idempotencyKey }),
              },
              { type: 'image', data: 'aGk=', mimeType: 'image/png' },
            ],
          };
        case 'fail':
          return text('the tool failed on purpose', true);
        case 'wait':
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, Number(args.ms ?? 60_000));
            extra.signal.addEventListener('abort', () => {
              clearTimeout(timer);
              log.cancelled.push(request.params.name);
              resolve();
            });
          });
          return text('waited');
        case 'add_tool':
          addTool(String(args.name));
          return text('added');
        default:
          return text(`${request.params.name} answers`);
      }
    });
    servers.add(server);
    server.onclose = () => servers.delete(server);
    return server;
  }

  function addTool(name: string) {
    tools.push({ name, description: `Added at run time: ${name}`, inputSchema: object({}) });
    for (const server of servers) void server.sendToolListChanged().catch(() => {});
  }

  return { log, tools, createServer, addTool };
}
