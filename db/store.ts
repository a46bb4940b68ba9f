/**
 * The contract between the services and the two engines: the `Store` interface and the types
 * its calls take and give. One file on purpose, past 250 lines: both engines implement exactly
 * this, and a reader sees the whole of it at once.
 */
import type {
  ClientTool,
  FinishedRunStatus,
  MemoryReport,
  Message,
  MessageToolCall,
  OutboxRow,
  Run,
  RunAction,
  RunActionKind,
  RunCancel,
  RunError,
  RunUsage,
  Thread,
  TitleSource,
  WebhookDelivery,
  WebhookStatus,
} from './types';

export type { RunError };

/** One stream event, as the outbox stores it until it is delivered. */
export type Event = Pick<
  OutboxRow,
  'eventId' | 'type' | 'runId' | 'threadId' | 'occurredAt' | 'payload'
>;

/**
 * What a new message does to its thread's unfinished runs: `enqueue` waits its turn; `reject`
 * is refused while one is unfinished; `interrupt` cancels them; `rollback` cancels them and
 * deletes their user messages.
 */
export const MULTITASK = ['enqueue', 'reject', 'interrupt', 'rollback'] as const;
export type Multitask = (typeof MULTITASK)[number];

export interface RunRequest<R> {
  threadId: string;
  messageId: string;
  runId: string;
  content: string;
  /** The message's tokens (o200k, framing included), stored with it. */
  tokens: number;
  model: string;
  multitask: Multitask;
  /** The server tools the run may call, resolved (`runs.tools`). */
  tools: string[];
  /** The tools its client declared and answers itself (`runs.client_tools`). */
  clientTools: ClientTool[];
  /** The message's own webhook URL, allow-listed (`runs.webhook_url`); null: none. */
  webhookUrl: string | null;
  now: Date;
  event: Event;
  /** Makes `agent.run.cancelled` for a run that `interrupt` or `rollback` cancels. */
  cancelledEvent: (run: Run) => Event;
  idempotency?: { key: string; requestHash: string; response: R };
}

export type RunRequestResult<R> =
  /**
   * Accepted. `ended`: the runs `interrupt` or `rollback` cancelled at once (queued), their
   * terminal events to deliver; `cancelling`: those that were running, whose workers must be
   * told to stop.
   */
  | { kind: 'created'; row: OutboxRow; ended: RunEnd[]; cancelling: Run[] }
  | { kind: 'replayed'; response: R }
  | { kind: 'conflict' }
  /** `reject`, and the thread had an unfinished run (its head): nothing was written. */
  | { kind: 'busy'; runId: string };

/** Thrown inside an ingress transaction to undo it when `reject` finds the thread busy. */
export class ThreadBusyError extends Error {
  override name = 'ThreadBusyError';
  constructor(readonly runId: string) {
    super(`the thread has an unfinished run: ${runId}`);
  }
}

export interface RunFinish {
  runId: string;
  now: Date;
  attempts: number;
  /**
   * The run's own end, announced by `event`: its reply (completed) or its error (failed).
   * Without `event` the run ends cancelled: its attempt stopped for a cancel.
   */
  event?: Event;
  /** `position`: its place among the run's messages, after its steps' (see `commitStep`). */
  reply?: { id: string; content: string; position: number; tokens: number };
  /** The budget report of the run's last model call. */
  memory?: MemoryReport;
  usage?: Run['usage'];
  /** The run's counts at its end (see `StepCommit`); unchanged when absent. */
  steps?: number;
  toolCallCount?: number;
  error?: RunError;
  /**
   * Makes `agent.run.cancelled` from the run as it is stored at its end (status, cancel,
   * attempts). Used whenever the run ends cancelled: a cancel that came first wins over a reply
   * or an error that comes after it.
   */
  cancelledEvent: (run: Run) => Event;
}

/**
 * A message of a run's steps, to commit: the assistant message of a model call that asked for
 * tools (`toolCalls`), or one tool call's result (`role: 'tool'`). Its `position` is its place
 * among the run's messages (0, 1, …); the caller numbers them, so a step's results keep the
 * order of its calls however they finish. `tokens`: its tokens (o200k, framing included, tool
 * calls or result with it), stored with it.
 */
export type NewStepMessage =
  | {
      id: string;
      position: number;
      role: 'assistant';
      content: string;
      toolCalls: MessageToolCall[];
      tokens: number;
    }
  | {
      id: string;
      position: number;
      role: 'tool';
      content: string;
      toolCallId: string;
      name: string;
      isError: boolean;
      tokens: number;
    };

/** One unit of a run's progress (see `Store.commitStep`). */
export interface StepCommit {
  runId: string;
  now: Date;
  messages: NewStepMessage[];
  /** Written to the outbox with them (`agent.run.tool_called`, `agent.run.tool_result`). */
  events: Event[];
  /** The run's counts and token usage so far, this step included; unchanged when absent. */
  steps?: number;
  toolCallCount?: number;
  usage?: RunUsage;
  /** The budget report of the model call this step answers. */
  memory?: MemoryReport;
}

export type StepCommitResult =
  /** Written: the messages, the counts and these outbox rows (to deliver), in one transaction. */
  | { kind: 'committed'; rows: OutboxRow[] }
  /** The run is no longer running (cancelling, finished, unknown): nothing was written. */
  | { kind: 'not_running' }
  /**
   * One of the positions holds a message already (another attempt committed that step first):
   * nothing was written; read the run's steps again.
   */
  | { kind: 'taken' };

/** An attempt to claim (see `Store.startRunAttempt`). */
export interface RunStart {
  runId: string;
  now: Date;
  /**
   * Makes the attempt's `agent.run.started` from the run as started (its attempts); `resumed`:
   * the claim continues a run its client answered (see `Store.startRunAttempt`).
   */
  startedEvent: (run: Run, resumed: boolean) => Event;
}

/** A running run pauses for its client (see `Store.pauseRun`). */
export interface RunPause {
  runId: string;
  now: Date;
  action: RunAction;
  /** `agent.run.requires_action`, written to the outbox with the pause. */
  event: Event;
}

/** The client's answer to a paused run (see `Store.answerRun`). */
export interface RunAnswer {
  runId: string;
  now: Date;
  kind: RunActionKind;
  /** The pause answered (`RunAction.since`): an answer to an earlier pause changes nothing. */
  since: string;
  /** Tool results it settles: client tools' outputs, or denied calls' results. */
  messages: NewStepMessage[];
  /** Their `agent.run.tool_result` events. */
  events: Event[];
  /** Server tool calls approved: they run when the run goes on. */
  approved: string[];
  /** The run's count of tool calls with a result, these included. */
  toolCallCount: number;
}

export type RunAnswerResult =
  /** Stored in one transaction; the run is `queued` again, its job to be woken. */
  | { kind: 'answered'; run: Run; rows: OutboxRow[] }
  /** The run is not waiting for this (another status, another kind, another pause). */
  | { kind: 'not_waiting'; run: Run }
  | { kind: 'unknown' };

/** A claimed attempt (see `Store.startRunAttempt`). */
export interface RunAttempt {
  /** The run as claimed: running with one more attempt, or `cancelling` as found. */
  run: Run;
  /**
   * The attempt's `agent.run.started` row; null when nothing was started: a `cancelling` run
   * (this job only ends it) or a `requires_action` one (its job woke at its deadline, or was
   * enqueued again: the run fails `action_timeout` past its deadline, else it waits on).
   */
  row: OutboxRow | null;
  /**
   * Rows of this run still undelivered, oldest first: an earlier attempt's, when its process
   * died before they went out. They go out before `row`, so the stream keeps the run's order.
   */
  earlier: OutboxRow[];
  /**
   * No attempt claimed the run before this one (it had never started): no step can have been
   * committed for it, so the run job need not read its steps back. Not the attempt count: a
   * rate-limited try gives its attempt back.
   */
  firstClaim: boolean;
}

/** How `finishRun` ended a run, and the outbox row of its terminal event (to deliver). */
export interface RunEnd {
  status: FinishedRunStatus;
  run: Run;
  row: OutboxRow;
}

/** A cancel asked for by a client or a producer (see `Store.cancelRun`). */
export interface RunCancelRequest {
  runId: string;
  cancel: RunCancel;
  now: Date;
  cancelledEvent: (run: Run) => Event;
}

export type RunCancelResult =
  /** Completed or failed already: nothing to cancel. */
  | { kind: 'finished'; run: Run }
  /** Cancelled now (`row`: its terminal event), or already (`row` null). */
  | { kind: 'cancelled'; run: Run; row: OutboxRow | null }
  /** Running: marked cancelling (now or before); its worker must be told to stop. */
  | { kind: 'cancelling'; run: Run };

/** What a run's memory starts from: the thread's summary and the recent window. */
export interface ThreadMemory {
  summary: string | null;
  /** The summary's tokens (0 without one). */
  summaryTokens: number;
  summaryThroughSeq: number | null;
  /** The last `count` messages at or before slot `throughSeq`, in conversation order. */
  recent: Message[];
}

/** A thread and what its view shows beyond its row. */
export interface ThreadDetails {
  thread: Thread;
  /** It has an unfinished run (queued, running, cancelling or requires_action). */
  busy: boolean;
  /** Its newest run's id; null for a thread without runs. */
  lastRunId: string | null;
}

/** Where a page of threads ends: the last thread's `updated_at` and id. */
export interface ThreadCursor {
  updatedAt: Date;
  id: string;
}

/** What `deleteThread` leaves the caller to do after its commit. */
export interface ThreadDeletion {
  /** The cancelled runs' terminal rows, then the `agent.thread.deleted` row: to deliver. */
  rows: OutboxRow[];
  /** The runs that were running: their workers must be told to stop (a cancel signal). */
  cancelling: string[];
  /** Every run the thread had: their run streams go. */
  runIds: string[];
  /** The runs it cancelled. */
  cancelledRunIds: string[];
}

/**
 * Who is sent webhooks: every outbox row of one of `events` (WEBHOOK_EVENTS) gets a delivery in
 * its own transaction, to `url` (WEBHOOK_URL) and, for a run's events, to the run's own
 * `webhook_url`. Given when the store opens.
 */
export interface WebhookTargets {
  /** WEBHOOK_URL; null: none. */
  url: string | null;
  events: readonly string[];
  /** Runs may carry their own URL (WEBHOOK_ALLOWED_URLS is set): look for it. */
  perRun: boolean;
}

/** No webhooks: what a store opened without targets writes. */
export const NO_WEBHOOKS: WebhookTargets = { url: null, events: [], perRun: false };

/** The outcome of one attempt at a delivery (see `Store.recordWebhookAttempt`). */
export interface WebhookAttempt {
  id: string;
  /** The lease it was sent under: a sender whose lease ran out (another took it) records nothing. */
  claimedUntil: Date;
  /** What was sent: kept, so that every later attempt sends the same bytes. */
  body: string;
  now: Date;
  /** `delivered` (a 2xx), `pending` (to try again at `nextAttemptAt`) or `failed` (no more). */
  status: WebhookStatus;
  nextAttemptAt: Date;
  /** The receiver's status code; null when none came (a timeout, a refused connection). */
  statusCode: number | null;
  /** What went wrong; null for a 2xx. */
  error: string | null;
}

/** Where a page of the delivery log ends: the last delivery's `created_at` and id. */
export interface WebhookCursor {
  createdAt: Date;
  id: string;
}

export interface WebhookDeliveryQuery {
  runId?: string;
  status?: WebhookStatus;
  limit: number;
  after?: WebhookCursor;
}

export type WebhookRedelivery =
  | { kind: 'queued'; delivery: WebhookDelivery }
  /** A sender holds it right now: its attempt is under way. */
  | { kind: 'in_flight'; delivery: WebhookDelivery }
  | { kind: 'unknown' };

/** What `markOutboxDelivered` tells of each row it marked. */
export type DeliveredOutboxRow = Pick<OutboxRow, 'id' | 'threadId' | 'enqueueRunId'>;

/**
 * The store, whichever engine holds it: SQLite (the embedded default) or PostgreSQL. Services
 * and jobs see only this; `db/sqlite` and `db/postgres` implement it.
 */
export interface Store {
  /**
   * Accepts a user message: thread (created on first use), message, run and the outbox row of
   * `agent.run.requested`, all in one transaction, so a 202 always means all four exist. The
   * outbox row carries the job only when this run is the thread's oldest unfinished one;
   * otherwise the run that finishes before it enqueues it (see `finishRun`). With an
   * idempotency key, the key is claimed in the same transaction: a key already stored returns
   * its first response (same request) or a conflict (another request), and creates nothing.
   * `multitask` acts on the thread's unfinished runs in the same transaction (see `Multitask`).
   */
  insertRunRequest<R>(input: RunRequest<R>): Promise<RunRequestResult<R>>;

  getRun(runId: string): Promise<Run | undefined>;
  getRunWithReply(runId: string): Promise<{ run: Run; reply: Message | null } | undefined>;
  /**
   * Claims an attempt: status running, attempts + 1 (an attempt cut off by a crash was spent
   * too). Null for an unknown, completed or cancelled run (a duplicate job, or a cancelled run's
   * job: skip it). A failed run is reopened: only an operator's retry from Bull Board processes
   * its job again. A `cancelling` run is returned as it is, not started (`row` null): its worker
   * died while it was being cancelled, and this job only has to end it. A `requires_action` run
   * is returned as it is too (`row` null). A `resumed` run (answered by its client) is started
   * without spending an attempt (attempts stay, `resumed` is cleared, and `startedEvent` is told).
   * The attempt's `agent.run.started` outbox row is written with it, so the announcement is as
   * durable as the attempt: a Redis that does not answer delays it (the relay sends it), and
   * never fails the attempt.
   */
  startRunAttempt(input: RunStart): Promise<RunAttempt | null>;
  /**
   * Pauses a running run for its client, in one transaction: status `requires_action`, its
   * `action`, and the outbox row of `agent.run.requires_action`. Null (nothing written) when the
   * run is not `running` (a cancel came first). Pausing spends no attempt.
   */
  pauseRun(input: RunPause): Promise<{ row: OutboxRow } | null>;
  /**
   * Takes the client's answer to a paused run, in one transaction: the tool results it settles
   * (in the run's slot, counted on the thread) with their outbox rows, `approved` extended, the
   * tool-call count, then status `queued`, `action` null and `resumed` set, so that the next
   * claim continues the run without spending an attempt. The caller checks the answer's ids
   * against the action first; this only checks that the run still waits for that pause.
   */
  answerRun(input: RunAnswer): Promise<RunAnswerResult>;
  /**
   * The run waits for BullMQ's next try; `attempts` is what was spent so far. False when the run
   * is no longer running (a cancel came first): then it must end cancelled, not be retried.
   */
  recordRunRetry(runId: string, attempts: number, error: RunError): Promise<boolean>;
  /**
   * Cancels a run in one transaction. A queued run (waiting for its turn, its job, or a retry's
   * backoff) or a `requires_action` one ends cancelled at once, with its `agent.run.cancelled` outbox row; if it was its
   * thread's head, that row enqueues the thread's next run (as `finishRun`'s does). A running run
   * is marked `cancelling`: its worker ends it (`finishRun`). Repeating a cancel changes nothing,
   * and the first cancel's reason stays. Undefined for an unknown run.
   */
  cancelRun(input: RunCancelRequest): Promise<RunCancelResult | undefined>;
  /**
   * Makes a run terminal: the reply (if any), the run's final state and the outbox row of its
   * terminal event, in one transaction. The same row enqueues the thread's next unfinished run,
   * so the per-thread chain lives in the database and survives any crash; but if that run's own
   * `agent.run.requested` is still undelivered (Redis was down when it was accepted), its job
   * is handed to that row instead, so no run's job goes out before its announcement. A run
   * that is `cancelling` ends cancelled whatever the input says, with no reply stored. Null when
   * the run was already terminal (another delivery of the job finished it first).
   */
  finishRun(input: RunFinish): Promise<RunEnd | null>;
  /**
   * Commits one unit of a running run's steps in one transaction: its messages (in the run's
   * slot, after its user message, counted on the thread), the run's counts and usage, and the
   * outbox rows of their events. Nothing is written for a run that is not `running` (a cancel
   * came first) or when a position is taken (see `StepCommitResult`).
   */
  commitStep(input: StepCommit): Promise<StepCommitResult>;
  /** A run's committed step messages (not its user message, nor its reply), by position. */
  listRunSteps(runId: string): Promise<Message[]>;
  /**
   * One page of a thread's runs, newest first: the `limit` runs before slot `beforeSeq` (or the
   * newest ones), each with its reply, plus whether older ones exist.
   */
  listThreadRuns(
    threadId: string,
    opts: { limit: number; beforeSeq?: number },
  ): Promise<{ runs: { run: Run; reply: Message | null }[]; hasMore: boolean }>;
  /** Each thread's oldest unfinished run: the one run per thread that should have a live job. */
  listThreadHeads(limit: number): Promise<Run[]>;

  /**
   * Claims up to `limit` undelivered rows written before `createdBefore`, oldest first, for
   * `leaseMs`: no other process's relay takes them until the lease runs out, so two processes
   * never deliver one row at the same time.
   */
  claimPendingOutbox(createdBefore: Date, limit: number, leaseMs: number): Promise<OutboxRow[]>;
  /**
   * Marks rows delivered and returns them as they are now: a row whose `enqueueRunId` was set
   * after it was read (handed over by `finishRun`) still has that job to enqueue.
   */
  markOutboxDelivered(ids: number[]): Promise<DeliveredOutboxRow[]>;

  /**
   * Leases up to `limit` pending deliveries due at `now` (oldest due first) that no sender holds:
   * `claimed_until` = now + `leaseMs`, atomically, so two senders never take one delivery. The
   * first attempt's `body` is null (the sender builds it).
   */
  claimDueWebhooks(now: Date, limit: number, leaseMs: number): Promise<WebhookDelivery[]>;
  /**
   * Stores one attempt's outcome and releases the lease: attempts + 1, status, next attempt,
   * last status code and error, the body sent. Only under the lease it was claimed with: false
   * (nothing written) when that lease is gone.
   */
  recordWebhookAttempt(attempt: WebhookAttempt): Promise<boolean>;
  /** The delivery log, newest first. */
  listWebhookDeliveries(query: WebhookDeliveryQuery): Promise<WebhookDelivery[]>;
  /**
   * Makes a delivery due now, whatever its status (a delivered or failed one is sent once more,
   * with the same body and `webhook-id`); a delivery a sender holds is left alone (`in_flight`).
   */
  redeliverWebhook(id: string, now: Date): Promise<WebhookRedelivery>;

  getThread(threadId: string): Promise<Thread | undefined>;
  /**
   * A thread with what its view shows beyond its row: `busy` (it has an unfinished run) and its
   * newest run's id. Undefined for an unknown thread.
   */
  getThreadDetails(threadId: string): Promise<ThreadDetails | undefined>;
  /**
   * Creates an empty thread with its metadata (rows of `thread_metadata` too), in one
   * transaction. `exists` when a thread has that id already: nothing written.
   */
  createThread(input: {
    threadId: string;
    metadata: Record<string, string>;
    now: Date;
  }): Promise<{ kind: 'created'; thread: ThreadDetails } | { kind: 'exists' }>;
  /**
   * One page of threads, most recently updated first (ties by id, descending): the `limit`
   * after `after` (the last of the previous page), those whose metadata has every given
   * key/value, found by the `thread_metadata` index. `hasMore` when more follow.
   */
  listThreads(opts: {
    limit: number;
    after?: ThreadCursor;
    metadata: Record<string, string>;
  }): Promise<{ threads: ThreadDetails[]; hasMore: boolean }>;
  /**
   * Changes a thread's metadata (replaced whole, its index rows too) and/or its title (a user's:
   * `title_source` 'user', never overwritten by the title model) and moves `updated_at`, in one
   * transaction. Undefined for an unknown thread.
   */
  updateThread(input: {
    threadId: string;
    metadata?: Record<string, string>;
    title?: string;
    now: Date;
  }): Promise<ThreadDetails | undefined>;
  /**
   * Deletes a thread whole, in one transaction: its unfinished runs end cancelled first (by
   * `thread_deleted`: their `agent.run.cancelled` rows are written, and stay), then its
   * messages, runs, metadata, idempotency keys that answered for it, the outbox rows of its
   * other events, and the thread itself; then the outbox row of `agent.thread.deleted`
   * (`deletedEvent`, given the cancelled run ids). Returns what the caller must do after the
   * commit: deliver `rows` (the cancelled events, then the deletion), tell `cancelling` runs'
   * workers to stop, and remove `runIds`' run streams. Undefined for an unknown thread.
   */
  deleteThread(input: {
    threadId: string;
    now: Date;
    cancelledEvent: (run: Run) => Event;
    deletedEvent: (cancelledRunIds: string[]) => Event;
  }): Promise<ThreadDeletion | undefined>;
  /**
   * The retention sweep's pick: up to `limit` ids of threads not updated since `before`, oldest
   * first. Deleting them is `deleteThread`'s (a thread deleted meanwhile is just undefined
   * there), so two processes sweeping at once delete each thread once.
   */
  listExpiredThreads(before: Date, limit: number): Promise<string[]>;
  /** Stores a summary with the last message it covers (id and conversation slot). */
  saveSummary(
    threadId: string,
    summary: { text: string; throughMessageId: string; throughSeq: number; tokens: number },
  ): Promise<void>;
  /**
   * Gives a thread its title, in one transaction with the outbox row of `event`
   * (`agent.thread.titled`): a `model` title only while the thread has none (a failed or later
   * try never overwrites one, a user's above all); a `user` title always. Null when nothing was
   * saved (no such thread, or a title there already for a model title).
   */
  saveTitle(input: {
    threadId: string;
    title: string;
    source: TitleSource;
    now: Date;
    event: Event;
  }): Promise<{ row: OutboxRow } | null>;
  /** The summary and the recent window of a thread; undefined when the thread does not exist. */
  getThreadMemory(
    threadId: string,
    throughSeq: number,
    count: number,
  ): Promise<ThreadMemory | undefined>;

  getMessage(messageId: string): Promise<Message | undefined>;
  /**
   * One page of a thread in conversation order (slot, then position): the `limit` messages
   * before the place `before` (or the newest ones), returned oldest first, plus whether older
   * ones exist.
   */
  listThreadMessages(
    threadId: string,
    opts: { limit: number; before?: { seq: number; position: number } },
  ): Promise<{ messages: Message[]; hasMore: boolean }>;
  /** Messages strictly between two slots, in conversation order: what a summary has to fold in. */
  listMessagesBetween(threadId: string, afterSeq: number, beforeSeq: number): Promise<Message[]>;

  /** Deletes idempotency keys written before `before`; returns how many. */
  purgeIdempotencyKeys(before: Date): Promise<number>;

  /** Cheap liveness probe for `/ready`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/**
 * The store did not answer: the database server is down or unreachable, or (SQLite) another
 * process held the write lock past the busy timeout. The HTTP API answers 503 and stores nothing
 * it can know of; the caller may try again.
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

/** Whether the error's code or errno, or its cause's (drizzle wraps the driver's error), matches. */
export function hasErrorCode(error: unknown, codes: RegExp): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    const { code, errno } = e as { code?: unknown; errno?: unknown };
    if (codes.test(String(code ?? '')) || codes.test(String(errno ?? ''))) return true;
  }
  return false;
}

/**
 * The same store, with every failure whose error matches `codes` (`hasErrorCode`) rethrown as a
 * `StoreUnavailableError`, so callers need not know the engine's error codes.
 */
export function withUnavailable(store: Store, codes: RegExp): Store {
  const isUnavailable = (error: unknown) => hasErrorCode(error, codes);
  const guarded: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(store)) {
    guarded[name] =
      typeof value === 'function' && name !== 'close'
        ? async (...args: unknown[]) => {
            try {
              return await value(...args);
            } catch (error) {
              if (!isUnavailable(error)) throw error;
              throw new StoreUnavailableError('the database is not answering', { cause: error });
            }
          }
        : value;
  }
  return guarded as unknown as Store;
}
