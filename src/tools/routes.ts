import { Elysia } from 'elysia';
import { errors } from '../http/error-schemas';
import { toolsView } from './model';
import type { ToolRegistry } from './service';

export function toolRoutes(deps: { tools: ToolRegistry }) {
  return new Elysia({ name: 'tools', prefix: '/api/chat', tags: ['chat'], normalize: false }).get(
    '/tools',
    () => ({ tools: deps.tools.list() }),
    {
      response: { 200: toolsView, 401: errors.unauthorized },
      detail: {
        summary: 'The server tools a message may name in `tools`',
        description:
          'The HTTP tools of TOOLS_FILE and the tools of each MCP server that answers now ' +
          '(`<server>__<tool>`). A server that does not answer has no tools here until it does.',
      },
    },
  );
}
