import { t } from 'elysia';
import { CANCELLED_BY, RUN_ACTION_KINDS, RUN_STATUSES } from '../../db/types';
import { messageView } from '../messages/model';

export const runParams = t.Object({ runId: t.String() });

const nullableDate = t.Nullable(t.String({ format: 'date-time' }));

/** What a paused run waits for, as the client sees it (the positions are the store's own). */
export const pendingAction = t.Nullable(
  t.Object(
    {
      kind: t.UnionEnum(RUN_ACTION_KINDS, {
        description:
          'tool_outputs: answer with POST …/tool-outputs; approval: answer with POST …/approvals',
      }),
      toolCalls: t.Array(
        t.Object({
          toolCallId: t.String(),
          name: t.String(),
          arguments: t.String({ description: 'The JSON text the model produced' }),
        }),
        { description: 'Every one of them must be answered, in one request.' },
      ),
      deadline: t.String({
        format: 'date-time',
        description: 'Unanswered by then, the run fails action_timeout (RUN_ACTION_TIMEOUT_MS).',
      }),
    },
    { description: 'Set while the status is `requires_action`; null otherwise.' },
  ),
);

/** The model's token count for a run. */
export const usage = t.Object({
  promptTokens: t.Integer(),
  completionTokens: t.Integer(),
  totalTokens: t.Integer(),
});

/** What a model call's prompt spent, part by part: on the run and in agent.run.completed. */
export const memoryReport = t.Object(
  {
    contextTokens: t.Integer({ description: "The model's context window" }),
    budgetTokens: t.Integer({
      description: 'What was left for the window after the fixed parts and the 5 % margin',
    }),
    systemTokens: t.Integer({ description: 'The system prompt, as sent' }),
    summaryTokens: t.Integer({ description: 'The summary message, as sent (0: none sent)' }),
    toolsTokens: t.Integer({ description: 'The tool definitions offered' }),
    windowTokens: t.Integer({ description: "The window's messages, as sent" }),
    windowMessages: t.Integer({ description: 'Messages in the window' }),
    summarisedMessages: t.Integer({
      description: "The thread's user messages the summary covers (each with its run's answer)",
    }),
  },
  { $id: 'MemoryReport' },
);

/**
 * A completed run that called one tool and then replied, as Swagger shows it (the linter checks
 * it against the schema).
 */
const RUN_VIEW_EXAMPLE = {
  id: 'run_k3v9x2m1q8w7e6r5t4y3u2i1',
  threadId: 'thr_a1b2c3d4e5f6g7h8i9j0k1l2',
  userMessageId: 'msg_p0o9i8u7y6t5r4e3w2q1a2s3',
  model: 'gpt-4o-mini',
  status: 'completed',
  attempts: 1,
  error: null,
  reply: {
    id: 'msg_z9x8c7v6b5n4m3l2k1j0h9g8',
    threadId: 'thr_a1b2c3d4e5f6g7h8i9j0k1l2',
    runId: 'run_k3v9x2m1q8w7e6r5t4y3u2i1',
    role: 'assistant',
    content: 'It is 21 °C and sunny in Paris.',
    createdAt: '2026-01-05T10:00:02.310Z',
  },
  usage: { promptTokens: 24, completionTokens: 12, totalTokens: 36 },
  cancel: null,
  tools: ['weather'],
  clientTools: [],
  pendingAction: null,
  steps: 2,
  toolCalls: 1,
  memory: {
    contextTokens: 128000,
    budgetTokens: 115389,
    systemTokens: 0,
    summaryTokens: 0,
    toolsTokens: 61,
    windowTokens: 87,
    windowMessages: 3,
    summarisedMessages: 0,
  },
  createdAt: '2026-01-05T10:00:00.120Z',
  startedAt: '2026-01-05T10:00:00.180Z',
  finishedAt: '2026-01-05T10:00:02.310Z',
};

export const runView = t.Object(
  {
    id: t.String(),
    threadId: t.String(),
    userMessageId: t.String(),
    model: t.String(),
    status: t.UnionEnum(RUN_STATUSES, {
      description:
        'queued → running → completed | failed | cancelled; `cancelling` while its worker stops ' +
        'it; `requires_action` while it waits for its client (see `pendingAction`).',
    }),
    attempts: t.Integer({ description: 'Attempts spent; a rate-limited try spends none.' }),
    error: t.Nullable(t.Object({ code: t.String(), message: t.String() })),
    reply: t.Nullable(messageView),
    usage: t.Nullable(usage),
    cancel: t.Nullable(
      t.Object(
        {
          reason: t.Nullable(t.String()),
          by: t.UnionEnum(CANCELLED_BY),
          requestedAt: t.String({ format: 'date-time' }),
        },
        { description: 'Set once a cancel was asked for (by the client, or by a newer message).' },
      ),
    ),
    tools: t.Array(t.String(), {
      description:
        "The server tools the run may call: the message's `tools` (or CHAT_DEFAULT_TOOLS), " +
        "resolved when it was accepted (a `<server>__*` became that server's tools then).",
      examples: [['weather', 'files__read_file']],
    }),
    clientTools: t.Array(t.String(), {
      description:
        "The names of the tools the message's `clientTools` declared (the client answers them).",
      examples: [['get_location']],
    }),
    pendingAction,
    steps: t.Integer({
      minimum: 0,
      description:
        'Model calls whose answers are committed: a run that called tools once and then ' +
        'replied has 2. A retried attempt goes on from them and never repeats one.',
      examples: [2],
    }),
    toolCalls: t.Integer({
      minimum: 0,
      description:
        'Tool calls whose results are committed (an error result counts: the model was given it).',
      examples: [1],
    }),
    memory: t.Nullable(memoryReport, {
      description:
        "The budget report of the run's last model call (tokens counted with o200k); null " +
        'before its first call.',
    }),
    createdAt: t.String({ format: 'date-time' }),
    startedAt: nullableDate,
    finishedAt: nullableDate,
  },
  {
    $id: 'Run',
    description: 'A run: its status, attempts, error, reply and token usage.',
    examples: [RUN_VIEW_EXAMPLE],
  },
);
export type RunView = typeof runView.static;

export const cancelBody = t.Object(
  {
    reason: t.Optional(
      t.Nullable(
        t.String({
          maxLength: 500,
          description: 'Why, in up to 500 characters: kept on the run and in agent.run.cancelled.',
        }),
      ),
    ),
  },
  {
    $id: 'CancelRun',
    additionalProperties: false,
    examples: [{ reason: 'the user pressed stop' }],
  },
);
export type CancelBody = typeof cancelBody.static;

export const cancelledRun = t.Object(
  {
    runId: t.String(),
    status: t.UnionEnum(['cancelled', 'cancelling'], {
      description:
        'cancelled: it had not started, and is over; cancelling: its worker is stopping it, and ' +
        'it ends cancelled.',
    }),
  },
  {
    $id: 'CancelledRun',
    description: 'Accepted: the run ends `cancelled`.',
    examples: [{ runId: 'run_h2k9x0c3v7b1n5m8q4w6e2r1', status: 'cancelling' }],
  },
);
export type CancelledRun = typeof cancelledRun.static;

const toolCallId = t.String({ minLength: 1, description: 'From pendingAction' });

export const toolOutputsBody = t.Object(
  {
    outputs: t.Array(
      t.Object(
        {
          toolCallId,
          output: t.String({
            description:
              'What the tool gave, for the model; cut to TOOL_MAX_OUTPUT_CHARS characters.',
          }),
          isError: t.Optional(
            t.Boolean({ description: 'The call failed: the model is told so. Default false.' }),
          ),
        },
        { additionalProperties: false },
      ),
      // No count bound here: the answer must match the pending calls exactly, which the
      // service checks with a message naming what is missing or extra.
      { description: 'One per pending call, each call exactly once.' },
    ),
  },
  {
    $id: 'ToolOutputs',
    additionalProperties: false,
    examples: [
      {
        outputs: [
          { toolCallId: 'call_8f2k1', output: '{"city":"Paris","country":"FR"}' },
          { toolCallId: 'call_9d3m4', output: 'permission denied', isError: true },
        ],
      },
    ],
  },
);
export type ToolOutputsBody = typeof toolOutputsBody.static;

export const approvalsBody = t.Object(
  {
    decisions: t.Array(
      t.Object(
        {
          toolCallId,
          approve: t.Boolean({ description: 'true: the call is made; false: it is not' }),
          reason: t.Optional(
            t.Nullable(
              t.String({
                maxLength: 500,
                description: 'For a denial: given to the model after "denied by the user: ".',
              }),
            ),
          ),
        },
        { additionalProperties: false },
      ),
      // No count bound here: the answer must match the pending calls exactly, which the
      // service checks with a message naming what is missing or extra.
      { description: 'One per pending call, each call exactly once.' },
    ),
  },
  {
    $id: 'Approvals',
    additionalProperties: false,
    examples: [
      {
        decisions: [
          { toolCallId: 'call_8f2k1', approve: true },
          { toolCallId: 'call_9d3m4', approve: false, reason: 'not that file' },
        ],
      },
    ],
  },
);
export type ApprovalsBody = typeof approvalsBody.static;

export const answeredRun = t.Object(
  {
    runId: t.String(),
    status: t.Literal('queued', { description: 'The run goes on: a worker picks it up again.' }),
  },
  {
    $id: 'AnsweredRun',
    description: 'Accepted: the run is queued again and goes on from where it paused.',
    examples: [{ runId: 'run_h2k9x0c3v7b1n5m8q4w6e2r1', status: 'queued' }],
  },
);
export type AnsweredRun = typeof answeredRun.static;

/**
 * `wait` is matched as text, not coerced as a number: only 1 to 60 written plainly is a wait;
 * `1.5`, `1e1`, `0x10`, ` 2` or an empty value are a 400 like 0 and 61.
 */
export const runQuery = t.Object(
  {
    wait: t.Optional(
      t.String({
        pattern: '^(?:[1-9]|[1-5][0-9]|60)$',
        description:
          'Seconds (an integer, 1 to 60) to hold the request until the run is terminal ' +
          '(completed, failed or cancelled) or waits for its client (requires_action); then, ' +
          'or when the time is up, the run as it is. ' +
          'Without it the answer is immediate.',
        examples: ['30'],
      }),
    ),
  },
  // Other query fields are ignored, as they were before `wait` existed.
  { additionalProperties: true },
);

export const threadRunsParams = t.Object({ threadId: t.String() });

export const threadRunsQuery = t.Object(
  {
    limit: t.Optional(t.Integer({ minimum: 1, maximum: 200, default: 50 })),
    before: t.Optional(
      t.String({ description: 'A run id of this thread: return the runs before (older than) it.' }),
    ),
  },
  { additionalProperties: false },
);

export const threadRunsPage = t.Object(
  {
    threadId: t.String(),
    runs: t.Array(runView, { description: 'Newest first.' }),
    hasMore: t.Boolean(),
    nextBefore: t.Nullable(t.String({ description: 'Pass as `before` for the next, older page.' })),
  },
  {
    $id: 'RunsPage',
    description: "A page of the thread's runs, newest first.",
    examples: [
      {
        threadId: RUN_VIEW_EXAMPLE.threadId,
        runs: [RUN_VIEW_EXAMPLE],
        hasMore: true,
        nextBefore: RUN_VIEW_EXAMPLE.id,
      },
    ],
  },
);
export type ThreadRunsPage = typeof threadRunsPage.static;
