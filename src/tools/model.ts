import { t } from 'elysia';

/** A tool's name as the model sees it: what OpenAI's API accepts for a function name. */
export const TOOL_NAME_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
/** An MCP server's tools are named `<server>__<tool>`; the server's own name has no `__`. */
export const MCP_SEPARATOR = '__';

const headers = t.Record(t.String(), t.String());

/** One HTTP tool of the tools file: the service POSTs the arguments as JSON to `url`. */
export const httpToolSpec = t.Object(
  {
    name: t.String({ pattern: TOOL_NAME_PATTERN }),
    description: t.String(),
    parameters: t.Record(t.String(), t.Unknown()),
    url: t.String({ pattern: '^https?://' }),
    headers: t.Optional(headers),
    timeoutMs: t.Optional(t.Integer({ minimum: 1, maximum: 3_600_000 })),
    approval: t.Optional(t.Boolean()),
  },
  { additionalProperties: false },
);
export type HttpToolSpec = typeof httpToolSpec.static;

const mcpHttpServer = t.Object(
  {
    name: t.String({ pattern: TOOL_NAME_PATTERN }),
    url: t.String({ pattern: '^https?://' }),
    headers: t.Optional(headers),
    approval: t.Optional(t.Boolean()),
  },
  { additionalProperties: false },
);
const mcpStdioServer = t.Object(
  {
    name: t.String({ pattern: TOOL_NAME_PATTERN }),
    command: t.String({ minLength: 1 }),
    args: t.Optional(t.Array(t.String())),
    env: t.Optional(t.Record(t.String(), t.String())),
    approval: t.Optional(t.Boolean()),
  },
  { additionalProperties: false },
);
/** One MCP server: Streamable HTTP by `url`, or a child process spoken to over stdio. */
export const mcpServerSpec = t.Union([mcpHttpServer, mcpStdioServer]);
export type McpServerSpec = typeof mcpServerSpec.static;

/** The whole `TOOLS_FILE`. */
export const toolsFileSchema = t.Object(
  {
    http: t.Optional(t.Array(httpToolSpec)),
    mcp: t.Optional(t.Array(mcpServerSpec)),
  },
  { additionalProperties: false },
);

/** The tools file as loaded: `${VAR}`s filled in, every entry checked. */
export interface ToolsFile {
  http: HttpToolSpec[];
  mcp: McpServerSpec[];
}

export const toolView = t.Object(
  {
    name: t.String({ description: 'What the model calls; `<server>__<tool>` for an MCP tool' }),
    description: t.String(),
    parameters: t.Record(t.String(), t.Unknown(), { description: 'JSON Schema of the arguments' }),
    source: t.Union([t.Literal('http'), t.Literal('mcp')]),
    server: t.Optional(t.String({ description: 'The MCP server the tool comes from' })),
    approval: t.Boolean({ description: 'A call waits for the client to approve it' }),
  },
  { $id: 'Tool', description: 'A server tool.' },
);

export const toolsView = t.Object(
  { tools: t.Array(toolView) },
  {
    $id: 'Tools',
    description: 'The server tools a message may name in `tools`.',
    examples: [
      {
        tools: [
          {
            name: 'weather',
            description: 'The current weather in a city',
            parameters: {
              type: 'object',
              properties: { city: { type: 'string' } },
              required: ['city'],
            },
            source: 'http',
            approval: false,
          },
          {
            name: 'files__read_file',
            description: 'Read a file',
            parameters: { type: 'object', properties: { path: { type: 'string' } } },
            source: 'mcp',
            server: 'files',
            approval: true,
          },
        ],
      },
    ],
  },
);
