import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import { createMcpToolSet } from './mcp-tools';

/**
 * A real MCP server (the SDK's) over Streamable HTTP at `http://127.0.0.1:<port>/mcp`, one
 * session per client, serving the test tool set (harness/mcp-tools.ts). `port` lets a test start
 * it where a client already tries to connect (a server that comes back).
 */
export function startMcpHttpServer(opts: { port?: number } = {}) {
  const toolSet = createMcpToolSet();
  const sessions = new Map<string, WebStandardStreamableHTTPServerTransport>();
  const headers: Headers[] = [];
  const server = Bun.serve({
    port: opts.port ?? 0,
    hostname: '127.0.0.1',
    idleTimeout: 0,
    async fetch(request) {
      if (new URL(request.url).pathname !== '/mcp')
        return new Response('not found', { status: 404 });
      headers.push(request.headers);
      const sessionId = request.headers.get('mcp-session-id');
      let transport = sessionId ? sessions.get(sessionId) : undefined;
      if (!transport) {
        if (sessionId) return new Response('unknown session', { status: 404 });
        const created = new WebStandardStreamableHTTPServerTransport({
          sessionIdGenerator: () => crypto.randomUUID(),
          onsessioninitialized: (id) => void sessions.set(id, created),
          onsessionclosed: (id) => void sessions.delete(id),
        });
        await toolSet.createServer().connect(created);
        transport = created;
      }
      return transport.handleRequest(request);
    },
  });
  return {
    ...toolSet,
    port: server.port as number,
    url: `http://127.0.0.1:${server.port}/mcp`,
    /** Every request's headers, to check what the client sends. */
    headers,
    async stop() {
      for (const transport of sessions.values()) await transport.close().catch(() => {});
      sessions.clear();
      await server.stop(true);
    },
  };
}

export type McpHttpServer = ReturnType<typeof startMcpHttpServer>;
