import { t } from 'elysia';
import { MULTITASK } from '../../db/store';
import { examples } from '../http/openapi';
import { THREAD_ID_PATTERN } from '../ids';
import { messageView } from '../messages/model';
import { MCP_SEPARATOR, TOOL_NAME_PATTERN } from '../tools/model';

/** At most this many client tools on one message. */
export const MAX_CLIENT_TOOLS = 64;

/** A tool the client declares and answers itself (POST …/runs/:runId/tool-outputs). */
export const clientToolSpec = t.Object(
  {
    name: t.String({
      pattern: TOOL_NAME_PATTERN,
      description: 'What the model calls; must not be the name of a server tool.',
    }),
    description: t.Optional(t.String({ maxLength: 1024 })),
    parameters: t.Record(t.String(), t.Unknown(), {
      description: 'JSON Schema of the arguments, with "type": "object"; given to the model.',
    }),
  },
  { additionalProperties: false },
);

/** A tool name, or `<server>__*`: the name pattern with an optional `__*` tail. */
const TOOLS_ENTRY_PATTERN = `${TOOL_NAME_PATTERN.slice(0, -1)}(?:${MCP_SEPARATOR}\\*)?$`;

export const postMessageBody = t.Object(
  {
    content: t.String({
      description: 'The message. Trimmed; 1 to CHAT_MAX_MESSAGE_CHARS characters after trimming.',
    }),
    threadId: t.Optional(
      t.Nullable(
        t.String({
          pattern: THREAD_ID_PATTERN,
          description: 'Omit (or null) to start a new thread; an unknown id starts one with it.',
        }),
      ),
    ),
    model: t.Optional(
      t.Nullable(
        t.String({ minLength: 1, maxLength: 200, description: 'Defaults to CHAT_DEFAULT_MODEL.' }),
      ),
    ),
    multitask: t.Optional(
      t.Nullable(
        // A union of literals, not t.UnionEnum: that one carries a default (its first value),
        // which Elysia would fill in, and an absent field must mean CHAT_MULTITASK.
        t.Union(
          MULTITASK.map((mode) => t.Literal(mode)),
          {
            description:
              'When the thread has a run that has not finished: `enqueue` waits its turn; ' +
              '`reject` is a 409 thread_busy and stores nothing; `interrupt` cancels those runs ' +
              '(their messages stay, without replies); `rollback` cancels them and deletes their ' +
              'messages, so no later prompt sees them. Defaults to CHAT_MULTITASK.',
          },
        ),
      ),
    ),
    tools: t.Optional(
      t.Nullable(
        t.Array(
          t.String({
            pattern: TOOLS_ENTRY_PATTERN,
            description: 'A server tool name, or `<server>__*` for every tool of an MCP server.',
          }),
          {
            maxItems: 128,
            description:
              'The server tools the run may call (see GET /api/chat/tools): names, or ' +
              '`<server>__*` for every tool an MCP server has now. Resolved when the message is ' +
              'accepted and kept on the run; an unknown name or server is a 400 tool_not_found ' +
              'and nothing is stored. `[]`: none. Omit (or null) for CHAT_DEFAULT_TOOLS.',
          },
        ),
      ),
    ),
    clientTools: t.Optional(
      t.Nullable(
        t.Array(clientToolSpec, {
          maxItems: MAX_CLIENT_TOOLS,
          description:
            'Tools the client answers itself. When the model calls one, the run pauses in ' +
            '`requires_action` (agent.run.requires_action) until POST ' +
            '/api/chat/runs/{runId}/tool-outputs. A name that is a server tool, or that comes ' +
            'twice, or parameters that are not a JSON Schema object are a 400 invalid_request ' +
            'and nothing is stored. Omit (or null) for none.',
        }),
      ),
    ),
    webhook: t.Optional(
      t.Nullable(
        t.Object(
          {
            url: t.String({
              maxLength: 2048,
              description: 'Where to POST; must match a prefix of WEBHOOK_ALLOWED_URLS.',
            }),
          },
          {
            additionalProperties: false,
            description:
              "This run's events of WEBHOOK_EVENTS are POSTed to `url` too, signed like every " +
              'webhook (docs/webhooks.md). A URL outside WEBHOOK_ALLOWED_URLS (or any URL when ' +
              'it is empty) is a 400 webhook_not_allowed and nothing is stored. Omit (or null) ' +
              'for none.',
          },
        ),
      ),
    ),
  },
  {
    $id: 'PostMessage',
    additionalProperties: false,
    // The first is what Swagger UI's "Try it out" sends: it works on any server.
    ...examples({
      'A first message (new thread)': { content: 'Hello! What can you do?' },
      'Continue a thread of your own id': {
        content: 'And tomorrow?',
        threadId: 'support-4711',
        multitask: 'enqueue',
      },
      'A tool the client answers': {
        content: 'Where am I?',
        clientTools: [
          {
            name: 'get_location',
            description: "The user's current location, from their device",
            parameters: { type: 'object', properties: {} },
          },
        ],
      },
      'Server tools (needs them in TOOLS_FILE)': {
        content: 'What is the weather in Paris?',
        tools: ['weather', 'files__*'],
      },
      'Its own webhook (needs WEBHOOK_ALLOWED_URLS)': {
        content: 'Summarise my week, and tell my backend when you are done',
        webhook: { url: 'https://hooks.example.com/tenants/a/agent-runs' },
      },
    }),
  },
);
export type PostMessageBody = typeof postMessageBody.static;

export const acceptedMessage = t.Object(
  {
    threadId: t.String({ description: 'The given thread, or the new one (`thr_…`).' }),
    messageId: t.String(),
    runId: t.String({ description: 'Follow it: GET /api/chat/runs/{runId}, or its feed.' }),
    model: t.String(),
    status: t.Literal('queued'),
  },
  {
    $id: 'AcceptedMessage',
    description:
      "Accepted: the message, its run and the run's announcement are committed together, so " +
      'the run will happen. The same Idempotency-Key and body answer this again, same ids.',
    examples: [
      {
        threadId: 'thr_a1b2c3d4e5f6g7h8i9j0k1l2',
        messageId: 'msg_p0o9i8u7y6t5r4e3w2q1a2s3',
        runId: 'run_k3v9x2m1q8w7e6r5t4y3u2i1',
        model: 'gpt-4o-mini',
        status: 'queued',
      },
    ],
  },
);
export type AcceptedMessage = typeof acceptedMessage.static;

export const modelsView = t.Object(
  {
    default: t.String({ description: 'CHAT_DEFAULT_MODEL: what a message without `model` gets.' }),
    allowed: t.Nullable(t.Array(t.String()), {
      description: 'CHAT_ALLOWED_MODELS; null: any model id is accepted.',
    }),
  },
  {
    $id: 'Models',
    description: 'The default model and the allow list.',
    examples: [{ default: 'gpt-4o-mini', allowed: ['gpt-4o-mini', 'gpt-4o'] }],
  },
);

/** `Idempotency-Key`: 1 to 255 visible ASCII characters (the service checks it, a 400 else). */
export const IDEMPOTENCY_KEY_PATTERN = '^[\\x21-\\x7e]{1,255}$';

/** The header, as POST /api/chat/messages documents it. */
export const idempotencyKeyHeader = {
  name: 'Idempotency-Key',
  in: 'header' as const,
  required: false,
  description:
    'Retry safely: the same key with the same body answers the first 202 again (same ids) and ' +
    'creates nothing; with another body it is a 409 idempotency_key_reused. Kept at least 24 ' +
    'hours. 1 to 255 visible ASCII characters, else a 400.',
  schema: { type: 'string' as const, pattern: IDEMPOTENCY_KEY_PATTERN, example: 'order-1234-try' },
};

export const threadParams = t.Object({ threadId: t.String() });

export const messagesQuery = t.Object(
  {
    limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: 50 })),
    before: t.Optional(t.String({ description: 'A message id: return the messages before it.' })),
  },
  { additionalProperties: false },
);

export const messagesPage = t.Object(
  {
    threadId: t.String(),
    messages: t.Array(messageView, { description: 'Oldest first.' }),
    hasMore: t.Boolean(),
    nextBefore: t.Nullable(t.String({ description: 'Pass as `before` for the previous page.' })),
  },
  { $id: 'MessagesPage', description: "A page of the thread's messages, in conversation order." },
);
