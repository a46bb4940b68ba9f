import { t } from 'elysia';
import { MESSAGE_ROLES } from '../../db/types';

export const messageToolCall = t.Object({
  toolCallId: t.String({ description: "The model's id for the call; its result names it." }),
  name: t.String({ description: 'The tool called.' }),
  arguments: t.String({
    description: 'The arguments as the JSON text the model produced (not parsed, not checked).',
  }),
});

/**
 * A stored message as the API shows it: in a thread's pages and as a run's reply. The tool
 * fields are there only when set, so a user message or a reply looks as it always did.
 */
export const messageView = t.Object(
  {
    id: t.String(),
    threadId: t.String(),
    runId: t.String(),
    role: t.UnionEnum(MESSAGE_ROLES, {
      description:
        '`user`: a posted message; `assistant`: a model answer (a step that called tools, or ' +
        "the reply); `tool`: one tool call's result.",
    }),
    content: t.String({ description: 'The text; may be empty for an assistant tool-call step.' }),
    toolCalls: t.Optional(
      t.Array(messageToolCall, {
        description: "An assistant message that called tools: the calls, in the model's order.",
      }),
    ),
    toolCallId: t.Optional(t.String({ description: 'A tool message: the call it answers.' })),
    name: t.Optional(t.String({ description: 'A tool message: the tool that was called.' })),
    isError: t.Optional(
      t.Boolean({
        description:
          'A tool message: the result is an error (invalid arguments, a failed or timed-out ' +
          'call) given to the model as such.',
      }),
    ),
    createdAt: t.String({ format: 'date-time' }),
  },
  {
    $id: 'Message',
    description: "A message of a thread: the user's, a model answer, or a tool's result.",
    examples: [
      {
        id: 'msg_c4v5b6n7m8a9s0d1f2g3h4j5',
        threadId: 'thr_a1b2c3d4e5f6g7h8i9j0k1l2',
        runId: 'run_k3v9x2m1q8w7e6r5t4y3u2i1',
        role: 'assistant',
        content: '',
        toolCalls: [{ toolCallId: 'call_1', name: 'weather', arguments: '{"city":"Paris"}' }],
        createdAt: '2026-01-05T10:00:01.020Z',
      },
      {
        id: 'msg_q1w2e3r4t5y6u7i8o9p0a1s2',
        threadId: 'thr_a1b2c3d4e5f6g7h8i9j0k1l2',
        runId: 'run_k3v9x2m1q8w7e6r5t4y3u2i1',
        role: 'tool',
        content: '{"temp":21}',
        toolCallId: 'call_1',
        name: 'weather',
        isError: false,
        createdAt: '2026-01-05T10:00:01.240Z',
      },
    ],
  },
);
export type MessageView = typeof messageView.static;
