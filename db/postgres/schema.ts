import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  customType,
  index,
  integer,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
} from 'drizzle-orm/pg-core';
import {
  type ClientTool,
  MESSAGE_ROLES,
  type MemoryReport,
  type MessageToolCall,
  RUN_STATUSES,
  type RunAction,
  type RunCancel,
  type RunError,
  type RunUsage,
  TITLE_SOURCES,
  UNFINISHED_SQL,
  WEBHOOK_STATUSES,
} from '../run-columns';

/**
 * The PostgreSQL schema: the same tables, columns and indexes as `db/sqlite/schema.ts` (see the
 * comments there), in PostgreSQL's types, and two partial indexes of its own (`runs_thread_unfinished`,
 * `outbox_run_pending`) for lookups that grow on PostgreSQL: each costs an index write a run that
 * SQLite, whose indexes hold no old row versions, would pay for little (about 10 % of its ingress
 * CPU, measured). `db/types.ts` fails to compile if the rows drift apart.
 */
const at = (name: string) => timestamp(name, { withTimezone: true, precision: 3, mode: 'date' });
const createdAt = () => at('created_at').notNull().defaultNow();

/**
 * A jsonb column whose value goes to the driver as it is: Bun's client encodes a value for a
 * jsonb parameter itself (drizzle's own jsonb column would hand it a JSON text, which it would
 * store as one JSON string), and gives jsonb back decoded.
 */
const jsonb = customType<{ data: unknown; driverData: unknown }>({
  dataType: () => 'jsonb',
  toDriver: (value) => value,
});

export const threads = pgTable(
  'threads',
  {
    id: text('id').primaryKey(),
    createdAt: createdAt(),
    updatedAt: at('updated_at').notNull(),
    messageCount: integer('message_count').notNull().default(0),
    nextSeq: integer('next_seq').notNull().default(0),
    summary: text('summary'),
    summaryThroughMessageId: text('summary_through_message_id'),
    summaryThroughSeq: integer('summary_through_seq'),
    summaryTokens: integer('summary_tokens').notNull().default(0),
    title: text('title'),
    titleSource: text('title_source', { enum: TITLE_SOURCES }),
    metadata: jsonb('metadata').$type<Record<string, string>>().notNull().default(sql`'{}'::jsonb`),
  },
  // The thread list (most recently updated first, paged by (updated_at, id)) and the retention
  // sweep read it.
  (t) => [index('threads_updated').on(t.updatedAt, t.id)],
);

export const threadMetadata = pgTable(
  'thread_metadata',
  {
    threadId: text('thread_id')
      .notNull()
      .references(() => threads.id),
    key: text('key').notNull(),
    value: text('value').notNull(),
  },
  (t) => [
    uniqueIndex('thread_metadata_thread_key').on(t.threadId, t.key),
    index('thread_metadata_key_value').on(t.key, t.value, t.threadId),
  ],
);

export const messages = pgTable(
  'messages',
  {
    id: text('id').primaryKey(),
    threadId: text('thread_id')
      .notNull()
      .references(() => threads.id),
    runId: text('run_id').notNull(),
    role: text('role', { enum: MESSAGE_ROLES }).notNull(),
    content: text('content').notNull(),
    seq: integer('seq').notNull(),
    position: integer('position').notNull().default(0),
    toolCalls: jsonb('tool_calls').$type<MessageToolCall[]>(),
    toolCallId: text('tool_call_id'),
    name: text('name'),
    isError: boolean('is_error'),
    tokens: integer('tokens'),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('messages_thread_seq_position').on(t.threadId, t.seq, t.position),
    uniqueIndex('messages_run_reply')
      .on(t.runId)
      .where(sql`role = 'assistant' and tool_calls is null`),
  ],
);

export const runs = pgTable(
  'runs',
  {
    id: text('id').primaryKey(),
    threadId: text('thread_id')
      .notNull()
      .references(() => threads.id),
    userMessageId: text('user_message_id').notNull(),
    seq: integer('seq').notNull(),
    model: text('model').notNull(),
    status: text('status', { enum: RUN_STATUSES }).notNull().default('queued'),
    attempts: integer('attempts').notNull().default(0),
    error: jsonb('error').$type<RunError>(),
    usage: jsonb('usage').$type<RunUsage>(),
    replyMessageId: text('reply_message_id'),
    cancel: jsonb('cancel').$type<RunCancel>(),
    tools: jsonb('tools').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    steps: integer('steps').notNull().default(0),
    toolCallCount: integer('tool_call_count').notNull().default(0),
    clientTools: jsonb('client_tools').$type<ClientTool[]>().notNull().default(sql`'[]'::jsonb`),
    action: jsonb('action').$type<RunAction>(),
    approved: jsonb('approved').$type<string[]>().notNull().default(sql`'[]'::jsonb`),
    resumed: boolean('resumed').notNull().default(false),
    memory: jsonb('memory').$type<MemoryReport>(),
    webhookUrl: text('webhook_url'),
    createdAt: createdAt(),
    startedAt: at('started_at'),
    finishedAt: at('finished_at'),
  },
  (t) => [
    uniqueIndex('runs_thread_seq').on(t.threadId, t.seq),
    index('runs_status_created').on(t.status, t.createdAt),
    // A thread's unfinished runs, oldest first: whether the thread is busy (ingress), and the
    // run that follows one that ends. Partial, so a long thread's finished runs (and their old
    // versions, until a vacuum) are not walked.
    index('runs_thread_unfinished')
      .on(t.threadId, t.seq)
      .where(sql`${t.status} in ${sql.raw(UNFINISHED_SQL)}`),
  ],
);

export const outbox = pgTable(
  'outbox',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    eventId: text('event_id').notNull(),
    type: text('type').notNull(),
    runId: text('run_id').notNull(),
    threadId: text('thread_id').notNull(),
    occurredAt: text('occurred_at').notNull(),
    payload: text('payload').notNull(),
    enqueueRunId: text('enqueue_run_id'),
    createdAt: createdAt(),
    deliveredAt: at('delivered_at'),
    claimedUntil: at('claimed_until'),
  },
  (t) => [
    index('outbox_pending').on(t.deliveredAt, t.id),
    // A run's undelivered rows, by run: what a finish hands the next run's job to, and what a
    // retried attempt sends again. Partial, so it holds only the few rows still undelivered: a
    // lookup in outbox_pending walks every row delivered since the last vacuum on PostgreSQL,
    // whose index keeps an entry for each old version of a row until then.
    index('outbox_run_pending').on(t.runId).where(sql`${t.deliveredAt} is null`),
  ],
);

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    key: text('key').primaryKey(),
    requestHash: text('request_hash').notNull(),
    response: jsonb('response').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('idempotency_keys_created').on(t.createdAt)],
);

export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    runId: text('run_id').notNull(),
    threadId: text('thread_id').notNull(),
    url: text('url').notNull(),
    event: text('event').notNull(),
    body: text('body'),
    status: text('status', { enum: WEBHOOK_STATUSES }).notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: at('next_attempt_at').notNull(),
    claimedUntil: at('claimed_until'),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    createdAt: createdAt(),
    updatedAt: at('updated_at').notNull(),
    deliveredAt: at('delivered_at'),
  },
  (t) => [
    uniqueIndex('webhook_deliveries_event_url').on(t.eventId, t.url),
    index('webhook_deliveries_due').on(t.nextAttemptAt).where(sql`status = 'pending'`),
    index('webhook_deliveries_created').on(t.createdAt, t.id),
    index('webhook_deliveries_run').on(t.runId, t.createdAt),
    index('webhook_deliveries_thread').on(t.threadId),
  ],
);

export type Thread = typeof threads.$inferSelect;
export type ThreadMetadataRow = typeof threadMetadata.$inferSelect;
export type Message = typeof messages.$inferSelect;
export type Run = typeof runs.$inferSelect;
export type OutboxRow = typeof outbox.$inferSelect;
export type WebhookDelivery = typeof webhookDeliveries.$inferSelect;
