/**
 * The hot writes send their SQL straight to the driver (db/postgres/group-commit.ts), so their
 * rows come back as the driver gives them: snake_case, timestamps as `Date`s, bigint as text,
 * jsonb parsed. These map them to the schema's rows,
 * as drizzle's columns would.
 */
import type { OutboxRow, Run } from './schema';

type Raw = Record<string, unknown>;

const date = (value: unknown) => (value == null ? null : new Date(value as string));

/** Positional parameters for one statement's text: `add` returns the `$n` a value goes in. */
export class Params {
  readonly values: unknown[] = [];
  add(value: unknown): string {
    this.values.push(value);
    return `$${this.values.length}`;
  }
}

export function runFromRow(r: Raw): Run {
  return {
    id: r.id as string,
    threadId: r.thread_id as string,
    userMessageId: r.user_message_id as string,
    seq: r.seq as number,
    model: r.model as string,
    status: r.status as Run['status'],
    attempts: r.attempts as number,
    error: r.error as Run['error'],
    usage: r.usage as Run['usage'],
    replyMessageId: r.reply_message_id as string | null,
    cancel: r.cancel as Run['cancel'],
    tools: r.tools as Run['tools'],
    steps: r.steps as number,
    toolCallCount: r.tool_call_count as number,
    clientTools: r.client_tools as Run['clientTools'],
    action: r.action as Run['action'],
    approved: r.approved as Run['approved'],
    resumed: r.resumed as boolean,
    memory: r.memory as Run['memory'],
    webhookUrl: r.webhook_url as string | null,
    createdAt: date(r.created_at) as Date,
    startedAt: date(r.started_at),
    finishedAt: date(r.finished_at),
  };
}

export function outboxFromRow(r: Raw): OutboxRow {
  return {
    id: Number(r.id),
    eventId: r.event_id as string,
    type: r.type as string,
    runId: r.run_id as string,
    threadId: r.thread_id as string,
    occurredAt: r.occurred_at as string,
    payload: r.payload as string,
    enqueueRunId: r.enqueue_run_id as string | null,
    createdAt: date(r.created_at) as Date,
    deliveredAt: date(r.delivered_at),
    claimedUntil: date(r.claimed_until),
  };
}
