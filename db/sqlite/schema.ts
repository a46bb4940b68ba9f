import { sql } from 'drizzle-orm';
import { index, integer, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';
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
  WEBHOOK_STATUSES,
} from '../run-columns';

const createdAt = () =>
  integer('created_at', { mode: 'timestamp_ms' })
    .notNull()
    .default(sql`(unixepoch('subsec') * 1000)`);

export const threads = sqliteTable(
  'threads',
  {
    id: text('id').primaryKey(),
    createdAt: createdAt(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
    messageCount: integer('message_count').notNull().default(0),
    /** Next conversation-order slot for a user message; its reply takes the slot after it. */
    nextSeq: integer('next_seq').notNull().default(0),
    summary: text('summary'),
    /** The last message the summary covers, and its `seq`, so the window query needs no join. */
    summaryThroughMessageId: text('summary_through_message_id'),
    summaryThroughSeq: integer('summary_through_seq'),
    /** The summary's tokens (o200k), counted when it is saved. */
    summaryTokens: integer('summary_tokens').notNull().default(0),
    title: text('title'),
    titleSource: text('title_source', { enum: TITLE_SOURCES }),
    /** The integrator's own keys and values (≤ 16, strings); their index is `thread_metadata`. */
    metadata: text('metadata', { mode: 'json' })
      .$type<Record<string, string>>()
      .notNull()
      .default(sql`'{}'`),
  },
  // The thread list (most recently updated first, paged by (updated_at, id)) and the retention
  // sweep read it.
  (t) => [index('threads_updated').on(t.updatedAt, t.id)],
);

/**
 * One row per metadata key of a thread, so that a list filtered by metadata finds its threads
 * by index at a million threads; written with the thread's `metadata`, in its transaction.
 */
export const threadMetadata = sqliteTable(
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

export const messages = sqliteTable(
  'messages',
  {
    id: text('id').primaryKey(),
    threadId: text('thread_id')
      .notNull()
      .references(() => threads.id),
    runId: text('run_id').notNull(),
    role: text('role', { enum: MESSAGE_ROLES }).notNull(),
    content: text('content').notNull(),
    /**
     * Conversation order within the thread: a user message takes an even slot when accepted and
     * its run's messages (tool calls, tool results, the reply) the odd slot right after, however
     * late they are written.
     */
    seq: integer('seq').notNull(),
    /**
     * Order within a slot: 0 for a user message; a run's messages take 0, 1, … in the order of
     * its steps, the reply after the last.
     */
    position: integer('position').notNull().default(0),
    /** An assistant message's tool calls (a step that called tools); null for a reply. */
    toolCalls: text('tool_calls', { mode: 'json' }).$type<MessageToolCall[]>(),
    /** A tool message: the call it answers, the tool, and whether the result is an error. */
    toolCallId: text('tool_call_id'),
    name: text('name'),
    isError: integer('is_error', { mode: 'boolean' }),
    /** Its tokens (o200k, message framing included), counted once when it is written; null for
     * a message written before counting existed (counted when read). */
    tokens: integer('tokens'),
    createdAt: createdAt(),
  },
  (t) => [
    // One message per place: a step committed twice (a zombie attempt) is refused.
    uniqueIndex('messages_thread_seq_position').on(t.threadId, t.seq, t.position),
    // At most one reply per run: a re-run after a crash cannot store two. Partial, so that
    // accepting a user message does not pay for a random-key index insert; the user message of
    // a run is `runs.user_message_id`.
    uniqueIndex('messages_run_reply')
      .on(t.runId)
      .where(sql`role = 'assistant' and tool_calls is null`),
  ],
);

export const runs = sqliteTable(
  'runs',
  {
    id: text('id').primaryKey(),
    threadId: text('thread_id')
      .notNull()
      .references(() => threads.id),
    userMessageId: text('user_message_id').notNull(),
    /** The user message's seq: runs of a thread go in this order, one at a time. */
    seq: integer('seq').notNull(),
    model: text('model').notNull(),
    status: text('status', { enum: RUN_STATUSES }).notNull().default('queued'),
    attempts: integer('attempts').notNull().default(0),
    error: text('error', { mode: 'json' }).$type<RunError>(),
    usage: text('usage', { mode: 'json' }).$type<RunUsage>(),
    replyMessageId: text('reply_message_id'),
    cancel: text('cancel', { mode: 'json' }).$type<RunCancel>(),
    /** The server tools the run may call (names resolved at ingress); empty: none. */
    tools: text('tools', { mode: 'json' }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Model calls whose answers are committed, and tool calls whose results are. */
    steps: integer('steps').notNull().default(0),
    toolCallCount: integer('tool_call_count').notNull().default(0),
    /** The tools its client declared and answers itself; empty: none. */
    clientTools: text('client_tools', { mode: 'json' })
      .$type<ClientTool[]>()
      .notNull()
      .default(sql`'[]'`),
    /** What the run waits for while `requires_action`; null otherwise. */
    action: text('action', { mode: 'json' }).$type<RunAction>(),
    /** The server tool calls its client approved (ids); each runs once it is its turn. */
    approved: text('approved', { mode: 'json' }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Answered since its last attempt paused: the next claim resumes it, spending no attempt. */
    resumed: integer('resumed', { mode: 'boolean' }).notNull().default(false),
    /** The budget report of its last model call. */
    memory: text('memory', { mode: 'json' }).$type<MemoryReport>(),
    /** The message's own `webhook.url` (allow-listed at ingress); null: none. */
    webhookUrl: text('webhook_url'),
    createdAt: createdAt(),
    startedAt: integer('started_at', { mode: 'timestamp_ms' }),
    finishedAt: integer('finished_at', { mode: 'timestamp_ms' }),
  },
  (t) => [
    uniqueIndex('runs_thread_seq').on(t.threadId, t.seq),
    index('runs_status_created').on(t.status, t.createdAt),
  ],
);

/**
 * Transactional outbox. Each row is one stream event to XADD and, optionally, one run to enqueue
 * after it. It is written in the same transaction as the state change it announces, so a crash
 * or a Redis outage between commit and publish loses nothing: the relay delivers it later.
 */
export const outbox = sqliteTable(
  'outbox',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** Stable across re-delivery; never looked up, so not indexed (a random-key insert each). */
    eventId: text('event_id').notNull(),
    type: text('type').notNull(),
    runId: text('run_id').notNull(),
    threadId: text('thread_id').notNull(),
    occurredAt: text('occurred_at').notNull(),
    payload: text('payload').notNull(),
    enqueueRunId: text('enqueue_run_id'),
    createdAt: createdAt(),
    deliveredAt: integer('delivered_at', { mode: 'timestamp_ms' }),
    /** A relay's lease on an undelivered row: no other process relays it before this time. */
    claimedUntil: integer('claimed_until', { mode: 'timestamp_ms' }),
  },
  (t) => [index('outbox_pending').on(t.deliveredAt, t.id)],
);

/**
 * One webhook delivery: an event to POST to one URL (WEBHOOK_URL, or the run's own
 * `webhook_url`). Written in the transaction of its event's outbox row, so it cannot be lost;
 * sent, signed and retried by the webhook sender (src/webhooks/sender.ts) of any process, under a
 * lease like the outbox relay's. No foreign keys: a thread's deletion keeps the deliveries of the
 * events it writes itself.
 */
export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    id: text('id').primaryKey(),
    /** The event's `eventId`: the `webhook-id` header of every attempt. */
    eventId: text('event_id').notNull(),
    eventType: text('event_type').notNull(),
    runId: text('run_id').notNull(),
    threadId: text('thread_id').notNull(),
    url: text('url').notNull(),
    /** The event as the feeds send it (JSON text). */
    event: text('event').notNull(),
    /** What every attempt POSTs (JSON text): the event, and `run` for a terminal one; fixed by
     * the first attempt, so that retries send the same bytes. */
    body: text('body'),
    status: text('status', { enum: WEBHOOK_STATUSES }).notNull().default('pending'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: integer('next_attempt_at', { mode: 'timestamp_ms' }).notNull(),
    /** A sender's lease: no other process sends it before this time. */
    claimedUntil: integer('claimed_until', { mode: 'timestamp_ms' }),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    createdAt: createdAt(),
    updatedAt: integer('updated_at', { mode: 'timestamp_ms' }).notNull(),
    deliveredAt: integer('delivered_at', { mode: 'timestamp_ms' }),
  },
  (t) => [
    // One delivery of an event per URL: WEBHOOK_URL and a message's own URL may be the same.
    uniqueIndex('webhook_deliveries_event_url').on(t.eventId, t.url),
    // The sender's query: pending deliveries by when they are due.
    index('webhook_deliveries_due').on(t.nextAttemptAt).where(sql`status = 'pending'`),
    // The delivery log, newest first, and its filters; a thread's deletion.
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

/**
 * Idempotency keys of POST /api/chat/messages: the first response, replayed for the same key and
 * body. Written in the ingress transaction, so two concurrent requests with one key make one run.
 * Purged after IDEMPOTENCY_TTL_MS (db/{sqlite,postgres}/queries/idempotency.ts).
 */
export const idempotencyKeys = sqliteTable(
  'idempotency_keys',
  {
    key: text('key').primaryKey(),
    /** SHA-256 of the normalised request: the same key with another body is a conflict. */
    requestHash: text('request_hash').notNull(),
    response: text('response', { mode: 'json' }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('idempotency_keys_created').on(t.createdAt)],
);
