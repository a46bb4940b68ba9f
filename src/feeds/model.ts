import type { Static, TObject, TSchema } from '@sinclair/typebox';
import { t } from 'elysia';
import type { EventPayloads, EventType } from '../events/event';
import { RUN_FAILURES, type RunFailureCode } from '../failures';
import { CANCELLED_BY, RUN_ACTION_KINDS } from '../../db/types';
import { memoryReport, runView, usage } from '../runs/model';
import { threadView } from '../threads/model';
import { FEED_RESET } from './service';

/**
 * The feeds' event frames as the document shows them: each SSE `data` is one of these JSON
 * objects (docs/events.md). The payloads are the stream's own (`EventPayloads`); the compiler
 * holds each schema to its type below.
 */

const ids = {
  eventId: t.String({ description: 'Stable across re-delivery: de-duplicate on it.' }),
  runId: t.String(),
  threadId: t.String(),
  occurredAt: t.String({ format: 'date-time' }),
};

const toolCall = t.Object({ toolCallId: t.String(), name: t.String(), arguments: t.String() });
const payloads = {
  'agent.run.requested': t.Object({
    messageId: t.String(),
    model: t.String(),
    content: t.String(),
    requestId: t.Optional(t.String({ description: 'Set for a request made on the stream.' })),
  }),
  'agent.run.started': t.Object({
    attempt: t.Integer({ minimum: 1 }),
    resumed: t.Optional(t.Literal(true, { description: 'Goes on after its client answered.' })),
  }),
  'agent.run.delta': t.Object({
    attempt: t.Integer({ minimum: 1, description: 'A higher one than before: start over.' }),
    index: t.Integer({ minimum: 0 }),
    text: t.String(),
  }),
  'agent.run.tool_called': t.Object({
    step: t.Integer({ minimum: 1 }),
    toolCallId: t.String(),
    name: t.String(),
    arguments: t.String({ description: 'The JSON text the model produced.' }),
    source: t.UnionEnum(['http', 'mcp', 'client', 'unknown']),
  }),
  'agent.run.tool_result': t.Object({
    step: t.Integer({ minimum: 1 }),
    toolCallId: t.String(),
    name: t.String(),
    isError: t.Boolean(),
    output: t.String({ description: 'Its first 4000 characters; the message has it all.' }),
    durationMs: t.Integer({ minimum: 0 }),
  }),
  'agent.run.requires_action': t.Object({
    kind: t.UnionEnum(RUN_ACTION_KINDS),
    toolCalls: t.Array(toolCall),
  }),
  'agent.run.completed': t.Object({
    messageId: t.String({ description: 'The reply.' }),
    model: t.String(),
    content: t.String(),
    usage,
    attempts: t.Integer(),
    durationMs: t.Integer(),
    steps: t.Integer(),
    toolCalls: t.Integer(),
    memory: memoryReport,
  }),
  'agent.run.failed': t.Object({
    error: t.Object({
      code: t.UnionEnum(Object.keys(RUN_FAILURES) as [RunFailureCode, ...RunFailureCode[]]),
      message: t.String(),
    }),
    attempts: t.Integer(),
  }),
  'agent.run.cancelled': t.Object({
    reason: t.Nullable(t.String()),
    by: t.UnionEnum(CANCELLED_BY),
    attempts: t.Integer(),
  }),
  'agent.thread.titled': t.Object({ title: t.String() }),
  'agent.thread.deleted': t.Object({ cancelledRunIds: t.Array(t.String()) }),
} satisfies { [Type in EventType]: TObject };

// Each payload schema says what the stream's type says, both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const payloadsMatch: {
  [Type in EventType]: Same<Static<(typeof payloads)[Type]>, EventPayloads[Type]>;
} = {
  'agent.run.requested': true,
  'agent.run.started': true,
  'agent.run.delta': true,
  'agent.run.tool_called': true,
  'agent.run.tool_result': true,
  'agent.run.requires_action': true,
  'agent.run.completed': true,
  'agent.run.failed': true,
  'agent.run.cancelled': true,
  'agent.thread.titled': true,
  'agent.thread.deleted': true,
};
void payloadsMatch;

/** Each event type's frame: its name in the document, and what it says. */
const FRAMES = {
  'agent.run.requested': ['RunRequestedEvent', 'The run is recorded and queued.'],
  'agent.run.started': ['RunStartedEvent', 'An attempt starts (or the run goes on after a pause).'],
  'agent.run.delta': ['RunDeltaEvent', 'A piece of the reply while the model streams it.'],
  'agent.run.tool_called': ['RunToolCalledEvent', 'The model called a tool.'],
  'agent.run.tool_result': ['RunToolResultEvent', "A tool call's result is committed."],
  'agent.run.requires_action': [
    'RunRequiresActionEvent',
    'The run waits for its client: tool outputs or approvals.',
  ],
  'agent.run.completed': ['RunCompletedEvent', 'The run replied: terminal.'],
  'agent.run.failed': ['RunFailedEvent', 'The run failed: terminal.'],
  'agent.run.cancelled': ['RunCancelledEvent', 'The run was cancelled: terminal.'],
  'agent.thread.titled': ['ThreadTitledEvent', 'The title model named the thread.'],
  'agent.thread.deleted': ['ThreadDeletedEvent', 'The thread is gone; `runId` is empty.'],
} as const satisfies { [Type in EventType]: readonly [string, string] };

function frame<Type extends EventType>(type: Type) {
  const [name, description] = FRAMES[type];
  return t.Object(
    { type: t.Literal(type), ...ids, payload: payloads[type] },
    { $id: name, description },
  );
}

const reset = <Payload extends TSchema>(name: string, payload: Payload, description: string) =>
  t.Object(
    {
      type: t.Literal(FEED_RESET),
      runId: ids.runId,
      threadId: ids.threadId,
      occurredAt: ids.occurredAt,
      payload,
    },
    {
      $id: name,
      description: `${description} Its \`id\` is where the feed goes on from; no eventId.`,
    },
  );

const lifecycle = [
  frame('agent.run.requested'),
  frame('agent.run.started'),
  frame('agent.run.tool_called'),
  frame('agent.run.tool_result'),
  frame('agent.run.requires_action'),
  frame('agent.run.completed'),
  frame('agent.run.failed'),
  frame('agent.run.cancelled'),
];

/** What GET /api/chat/runs/{runId}/events sends: the run's events, its deltas, maybe a reset. */
export const runFeedEvent = t.Union(
  [
    ...lifecycle,
    frame('agent.run.delta'),
    reset(
      'RunFeedResetEvent',
      t.Object({ run: runView }),
      'The events after Last-Event-ID are no longer kept: the run as it is now.',
    ),
  ],
  {
    $id: 'RunFeedEvent',
    description: "An SSE frame's `data` on a run feed; `event` is its `type`.",
  },
);

/** What GET /api/chat/threads/{threadId}/events sends: the thread's lifecycle events. */
export const threadFeedEvent = t.Union(
  [
    ...lifecycle,
    frame('agent.thread.titled'),
    frame('agent.thread.deleted'),
    reset(
      'ThreadFeedResetEvent',
      t.Object({ thread: threadView, runs: t.Array(runView, { description: 'Its 20 newest.' }) }),
      'The events after Last-Event-ID are no longer kept: the thread as it is now (`runId` empty).',
    ),
  ],
  {
    $id: 'ThreadFeedEvent',
    description: "An SSE frame's `data` on a thread feed; `event` is its `type`.",
  },
);
