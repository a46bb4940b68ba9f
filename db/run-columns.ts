/**
 * The run row's typed columns, shared by both schemas and the services: its states (and which of
 * them are finished), its error and its token usage.
 */
import { type Column, type SQL, sql } from 'drizzle-orm';

/**
 * A run waiting for its job or in it: a thread's runs go one at a time, oldest first.
 * `cancelling`: a cancel was accepted while the run was running; its worker has not stopped yet.
 * `requires_action`: the run is paused for its client (tool outputs or approvals, `runs.action`);
 * no worker holds it, and its thread stays busy.
 */
export const UNFINISHED_RUN_STATUSES = [
  'queued',
  'running',
  'cancelling',
  'requires_action',
] as const;
/**
 * `UNFINISHED_RUN_STATUSES` as a list of SQL literals, `('queued', …)`: the predicate of
 * PostgreSQL's partial index `runs_thread_unfinished`, and what a statement that means to use
 * that index says (both engines type it in, so their statements read alike). A planner takes
 * a partial index only for a condition it can see implies the index's one, so the values are
 * typed into the statement, never bound as parameters.
 */
export const UNFINISHED_SQL = `(${UNFINISHED_RUN_STATUSES.map((s) => `'${s}'`).join(', ')})`;
/** `status in ('queued', …)`, with the values typed in (see `UNFINISHED_SQL`), for either engine. */
export const isUnfinished = (status: Column): SQL => sql`${status} in ${sql.raw(UNFINISHED_SQL)}`;
/**
 * A terminal run: its reply, error or cancel is stored and its terminal event is in the outbox.
 * A failed run can be reopened by an operator's retry; a cancelled one never.
 */
export const FINISHED_RUN_STATUSES = ['completed', 'failed', 'cancelled'] as const;
export const RUN_STATUSES = [...UNFINISHED_RUN_STATUSES, ...FINISHED_RUN_STATUSES] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export type UnfinishedRunStatus = (typeof UNFINISHED_RUN_STATUSES)[number];
export type FinishedRunStatus = (typeof FINISHED_RUN_STATUSES)[number];

/** Whether a run with this status is terminal (see `FINISHED_RUN_STATUSES`). */
export function isFinishedStatus(status: string): status is FinishedRunStatus {
  return (FINISHED_RUN_STATUSES as readonly string[]).includes(status);
}

/**
 * A failed run's error as stored. The code is one of the closed set in src/failures.ts
 * (`RunFailureCode`), kept as text: the store keeps what the service gives it.
 */
export interface RunError {
  code: string;
  message: string;
}

/** The model's token count for a run's reply. */
export interface RunUsage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
}

/** Who cancelled a run: its client, a newer message (`multitask`), or the thread's deletion. */
export const CANCELLED_BY = ['client', 'interrupt', 'rollback', 'thread_deleted'] as const;
export type CancelledBy = (typeof CANCELLED_BY)[number];

/** A run's cancel, once one was asked for: why (if the client said), by whom, when (ISO 8601). */
export interface RunCancel {
  reason: string | null;
  by: CancelledBy;
  requestedAt: string;
}

/** The roles of a thread's messages: a `tool` message is one tool call's result. */
export const MESSAGE_ROLES = ['user', 'assistant', 'tool'] as const;
export type MessageRole = (typeof MESSAGE_ROLES)[number];

/**
 * A tool call an assistant message made, as stored and shown: the model's id for it, the tool's
 * name and the arguments as the JSON text the model produced.
 */
export interface MessageToolCall {
  toolCallId: string;
  name: string;
  arguments: string;
}

/** A tool the client declares on its message and answers itself (`runs.client_tools`). */
export interface ClientTool {
  name: string;
  description?: string;
  /** JSON Schema of the arguments, given to the model. */
  parameters: Record<string, unknown>;
}

/** What a paused run waits for: its client's tool outputs, or its approval of server tool calls. */
export const RUN_ACTION_KINDS = ['tool_outputs', 'approval'] as const;
export type RunActionKind = (typeof RUN_ACTION_KINDS)[number];

/**
 * A run's pending action while it is `requires_action` (`runs.action`; null otherwise). Its calls
 * carry the place their result takes among the run's messages; `step` is the model call that
 * asked for them. `since` tells one pause from the next; past `deadline` the run fails
 * `action_timeout`. Times are ISO 8601.
 */
export interface RunAction {
  kind: RunActionKind;
  step: number;
  toolCalls: (MessageToolCall & { position: number })[];
  since: string;
  deadline: string;
}

/**
 * The budget report of a run's last model call (`runs.memory`, `agent.run.completed`): the
 * model's context window, what was left for the window after the fixed parts and the margin,
 * the tokens of each part as sent (message framing included), the messages in the window, and
 * how many of the thread's messages the summary covers.
 */
export interface MemoryReport {
  contextTokens: number;
  budgetTokens: number;
  systemTokens: number;
  summaryTokens: number;
  toolsTokens: number;
  windowTokens: number;
  windowMessages: number;
  summarisedMessages: number;
}

/** Who gave a thread its title: the title model after its first run, or a user (PATCH). */
export const TITLE_SOURCES = ['model', 'user'] as const;
export type TitleSource = (typeof TITLE_SOURCES)[number];

/** A webhook delivery: waiting for its next attempt, answered 2xx, or out of attempts. */
export const WEBHOOK_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type WebhookStatus = (typeof WEBHOOK_STATUSES)[number];
