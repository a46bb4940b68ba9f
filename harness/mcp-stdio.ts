/**
 * The MCP test server over stdio: `bun harness/mcp-stdio.ts`. The same tools as the HTTP one
 * (harness/mcp-tools.ts); what it saw comes back through its `echo` tool's answer.
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { createMcpToolSet } from './mcp-tools';

const toolSet = createMcpToolSet();
await toolSet.createServer().connect(new StdioServerTransport());
