import { DelayedError, type Job, RateLimitError, UnrecoverableError, WaitingError } from 'bullmq';
import { type Store, StoreUnavailableError } from '../db/store';
import type { OutboxRow, Run, RunAction } from '../db/types';
import type { Config } from '../src/config';
import { createDeltaWriter } from '../src/events/delta-writer';
import { buildEvent } from '../src/events/event';
import type { Publisher } from '../src/events/outbox-relay';
import type { StreamTarget } from '../src/events/stream-writer';
import { newMessageId } from '../src/ids';
import { type Llm, LlmError } from '../src/llm/llm';
import type { ToolRegistry } from '../src/tools/service';
import type { Logger } from '../src/logger';
import { buildRunPrompt } from '../src/memory/memory';
import { messageTokens } from '../src/memory/tokens';
import type { Metrics } from '../src/metrics/metrics';
import type { RedisClient } from '../src/redis/client';
import type { CancelSignals } from '../src/runs/cancel-signals';
import { announceEnd, cancelledEvent, failRun, type RunEndDeps } from '../src/runs/service';
import { titleThread } from '../src/threads/titles';
import { type LoopOutcome, RunNotRunningError, runAgentLoop } from './agent-loop';
import { parseRunJobData, type RunJobData, type RunQueue } from './catalog';
import {
  createRunReport,
  describeFailure,
  jobStoryWriter,
  previewText,
  type RunReport,
} from './run-report';

export interface RunJobDeps {
  config: Config;
  db: Store;
  redis: RedisClient;
  queue: RunQueue;
  llm: Llm;
  tools: ToolRegistry;
  publisher: Publisher;
  metrics: Metrics;
  stream: StreamTarget;
  cancels: CancelSignals;
  logger: Logger;
}

/** Hands the rows over in one turn, so they go out in one batch, in order; true when all did. */
function deliverInOrder(publisher: Publisher, rows: OutboxRow[]): Promise<boolean> {
  return Promise.all(rows.map((row) => publisher.deliver(row))).then((out) => out.every(Boolean));
}

/** A model server that answers 429 this many times in a row for one run fails it. */
export const MAX_RATE_LIMITED_TRIES = 10;
/** How long the queue pauses while the database does not answer, before the job is tried again. */
const STORE_WAIT_MS = 1000;
/** The longest queue pause one retry-after can ask for. */
const MAX_RATE_LIMIT_WAIT_MS = 5 * 60_000;

/** How much of the reply the job's return value shows. */
const REPLY_PREVIEW_CHARS = 200;

/**
 * The job a processor holds, its lock token (to hand it back as delayed), its story, and a
 * signal aborted when the job turned out not to be this processing's any more: BullMQ's, when
 * its lock could not be renewed (worker.ts), or this worker's own, when BullMQ handed the same
 * job out again (createRunProcessor). Another attempt holds the run, or is about to.
 */
interface HeldJob {
  job: Job<RunJobData>;
  token?: string;
  report: RunReport;
  lost?: AbortSignal;
}

/** The job's return value, shown in Bull Board: the reply's id and its first characters. */
export type RunJobResult =
  | { status: 'completed'; replyId: string; replyPreview: string }
  | { status: 'cancelled' }
  | { status: 'skipped' };

/**
 * The run job, top to bottom: claim the attempt, announce it, build memory, call the model,
 * then make the run terminal (reply, status and event in one transaction) — or hand the error
 * to BullMQ, which owns retries. A cancel aborts the model call (its signal) and the run ends
 * cancelled; the job then completes, so BullMQ neither shows it failed nor retries it.
 */
export function createRunProcessor(deps: RunJobDeps) {
  const { db, redis, stream } = deps;
  /**
   * The processing of each job in this worker, by job id. BullMQ hands a job out again when its
   * lock lapsed or was released, possibly to this same worker, and then tracks only the newer
   * processing (its lock renews fine): the older one is stopped here (see `handOver`).
   */
  const processing = new Map<string, AbortController>();

  /**
   * A database that does not answer fails every run alike, and no run's fault: pause the queue
   * and put the job back without spending an attempt (as for a 429), until the database is back.
   * A run cut off between its reply and its finish asks the model again; its reply is stored
   * once (finishRun). Known limit: BullMQ counts each wait as a started try, so they add to the
   * tally of rate-limited tries that a 429 right after a long outage is held to.
   */
  return async function processRun(
    job: Job<RunJobData>,
    token?: string,
    lost?: AbortSignal,
  ): Promise<RunJobResult> {
    const report = createRunReport(jobStoryWriter(deps.queue, job), {
      maxSteps: deps.config.run.maxSteps,
      logger: deps.logger,
    });
    const id = job.id ?? job.data.runId;
    const mine = new AbortController();
    const displaced = processing.get(id);
    displaced?.abort();
    processing.set(id, mine);
    const stale = lost ? AbortSignal.any([lost, mine.signal]) : mine.signal;
    // BullMQ tracks a job's lock by its id, so the displaced processing's end stops the renewal
    // of this one's too: this one renews its own lock then (and stops if it is lost as well).
    const lockMs = deps.config.run.lockMs;
    const renewal =
      displaced && token
        ? setInterval(() => {
            job.extendLock(token, lockMs).then(
              (held) => held || mine.abort(),
              () => {},
            );
          }, lockMs / 2)
        : undefined;
    try {
      return await processOnce({ job, token, report, lost: stale });
    } catch (error) {
      if (!(error instanceof StoreUnavailableError)) throw error;
      await deps.queue.rateLimit(STORE_WAIT_MS);
      deps.logger.warn(
        { runId: job.data.runId, waitMs: STORE_WAIT_MS },
        'the database is not answering; queue paused, the run will be tried again',
      );
      report.line(
        `the database is not answering: queue paused ${STORE_WAIT_MS} ms, the run waits (no attempt spent)`,
      );
      throw new RateLimitError();
    } finally {
      clearInterval(renewal);
      if (processing.get(id) === mine) processing.delete(id);
      await report.close();
    }
  };

  async function processOnce(held: HeldJob): Promise<RunJobResult> {
    const { runId } = parseRunJobData(held.job.data);
    // Watched before the attempt is claimed, so a cancel accepted in between still stops it.
    const cancel = deps.cancels.watch(runId);
    try {
      return await attemptRun(held, runId, cancel.signal);
    } finally {
      cancel.release();
    }
  }

  async function attemptRun(
    held: HeldJob,
    runId: string,
    cancelled: AbortSignal,
  ): Promise<RunJobResult> {
    const { report, lost } = held;
    let resumedAttempt = false;
    const claimed = await db.startRunAttempt({
      runId,
      now: new Date(),
      startedEvent: (started, resumed) => {
        resumedAttempt = resumed;
        return buildEvent(
          'agent.run.started',
          { runId: started.id, threadId: started.threadId },
          resumed ? { attempt: started.attempts, resumed: true } : { attempt: started.attempts },
        );
      },
    });
    // Completed or cancelled already (a duplicate delivery, a cancelled run's job) or unknown:
    // nothing to do, nothing to announce.
    if (!claimed) {
      report.line('skipped: the run is finished already (or unknown)');
      return { status: 'skipped' };
    }
    const { run } = claimed;
    const ids = { runId: run.id, threadId: run.threadId };
    const logger = deps.logger.child(ids);
    // What an earlier attempt left undelivered goes first, then this attempt's `started`: handed
    // in one turn, they go out in one batch, in order. `started` was committed with the attempt
    // and goes out while memory is built and the model called. A Redis that does not take them
    // now only delays them (the relay sends them, in order): the attempt goes on.
    const announced = deliverInOrder(deps.publisher, [
      ...claimed.earlier,
      ...(claimed.row ? [claimed.row] : []),
    ]);
    // Everything the attempt commits after that (its steps' events, its end) goes out in commit
    // order, each batch once the one before is out: when one was left to the relay, so is the
    // rest, and the relay delivers them in order.
    let chain = announced;
    const announce = (rows: OutboxRow[]) => {
      chain = chain.then((ok) => ok && deliverInOrder(deps.publisher, rows));
      return chain;
    };
    const ends: RunEndDeps = {
      ...deps,
      publisher: { ...deps.publisher, deliver: (row) => announce([row]) },
    };
    // Paused for its client: the job woke at the deadline (or was enqueued again meanwhile).
    if (!claimed.row && run.status === 'requires_action') {
      return waitForClient(ends, held, run, logger);
    }
    // Its worker died while it was being cancelled: this job only ends it.
    if (!claimed.row) return endCancelled(ends, held, run, run.attempts, logger);
    const attempt = run.attempts;
    logger.info({ attempt, model: run.model }, 'run attempt started');
    report.attemptStarted(attempt, run.model, resumedAttempt);

    let outcome: LoopOutcome;
    const deltas = createDeltaWriter({ redis, stream, ids, attempt, after: () => chain });
    // A lost job stops the model and tool calls as a cancel does, but ends nothing (handOver).
    const stop = lost ? AbortSignal.any([cancelled, lost]) : cancelled;
    try {
      outcome = await runAgentLoop({
        deps: { ...deps, logger },
        run,
        firstAttempt: claimed.firstClaim,
        buildPrompt: (fit) => buildRunPrompt({ ...deps, logger }, run, stop, fit),
        signal: stop,
        onDelta: (text) => {
          deltas.push(text);
          report.streamed();
        },
        announce: (rows) => void announce(rows),
        report,
        logger,
      });
      await deltas.close();
    } catch (thrown) {
      await deltas.close();
      if (lost?.aborted) handOver(held, logger);
      if (thrown instanceof StoreUnavailableError) throw thrown;
      if (cancelled.aborted || thrown instanceof RunNotRunningError) {
        return endCancelled(ends, held, run, attempt, logger);
      }
      const error =
        thrown instanceof LlmError
          ? thrown
          : new LlmError(
              'retryable',
              'internal_error',
              (thrown as Error)?.message ?? String(thrown),
            );
      return handleFailure(ends, held, run, attempt, error, logger);
    }

    if (lost?.aborted) handOver(held, logger);
    if (outcome.kind === 'pause') return pauseForClient(ends, held, run, outcome.action, logger);
    const reply = outcome;
    const now = new Date();
    const replyId = newMessageId();
    const { usage, steps, toolCallCount } = reply;
    const end = await db.finishRun({
      runId,
      now,
      attempts: attempt,
      reply: {
        id: replyId,
        content: reply.content,
        position: reply.position,
        tokens: messageTokens({ content: reply.content }),
      },
      usage,
      steps,
      toolCallCount,
      memory: reply.memory,
      event: buildEvent(
        'agent.run.completed',
        ids,
        {
          messageId: replyId,
          model: run.model,
          content: reply.content,
          usage,
          attempts: attempt,
          durationMs: now.getTime() - (run.startedAt ?? now).getTime(),
          steps,
          toolCalls: toolCallCount,
          memory: reply.memory,
        },
        now,
      ),
      // A cancel that came while the model answered wins: the reply is not stored.
      cancelledEvent: cancelledEvent(now),
    });
    if (!end) {
      report.line('skipped: the run finished meanwhile');
      return { status: 'skipped' };
    }
    await announceEnd(ends, end);
    logger.info({ attempt, usage, status: end.status }, `run ${end.status}`);
    if (end.status === 'completed') {
      report.completed({ replyId, replyChars: reply.content.length, steps, toolCallCount, usage });
    } else report.line('cancelled while the model answered: the reply is not stored');
    // Awaited once the end is announced: the terminal event is out and titleThread never throws,
    // so the run neither fails nor waits for it. The job holds its slot for the title call (once
    // a thread, bounded by LLM_TIMEOUT_MS), and a shutdown waits for it instead of closing the
    // store under it. `ends.publisher`: `titled` goes out after `completed`, never before.
    if (end.status === 'completed') {
      await titleThread({ ...deps, publisher: ends.publisher }, end.run, logger);
    }
    return end.status === 'completed'
      ? {
          status: 'completed',
          replyId,
          replyPreview: previewText(reply.content, REPLY_PREVIEW_CHARS),
        }
      : { status: 'cancelled' };
  }

  /**
   * The model called tools the client answers (or must approve): the run pauses in the store,
   * announces what it waits for, and its job sleeps until the deadline (a delayed job: no worker
   * slot is held). An answer wakes it early (`promote`); pausing spends no attempt.
   */
  async function pauseForClient(
    ends: RunEndDeps,
    held: HeldJob,
    run: Run,
    action: RunAction,
    logger: Logger,
  ): Promise<RunJobResult> {
    const ids = { runId: run.id, threadId: run.threadId };
    const paused = await db.pauseRun({
      runId: run.id,
      now: new Date(action.since),
      action,
      event: buildEvent(
        'agent.run.requires_action',
        ids,
        {
          kind: action.kind,
          toolCalls: action.toolCalls.map(({ toolCallId, name, arguments: args }) => ({
            toolCallId,
            name,
            arguments: args,
          })),
        },
        new Date(action.since),
      ),
    });
    // Not running any more: a cancel came first.
    if (!paused) return endCancelled(ends, held, run, run.attempts, logger);
    await ends.publisher.deliver(paused.row);
    logger.info(
      { kind: action.kind, toolCalls: action.toolCalls.length, deadline: action.deadline },
      'run waits for its client',
    );
    const names = action.toolCalls.map((call) => call.name).join(', ');
    held.report.line(
      `waits for the client (${action.kind === 'approval' ? 'approvals' : 'tool outputs'}: ${names}) until ${action.deadline}; no worker slot is held`,
    );
    return sleepUntilAnswered(held, run.id, Date.parse(action.deadline));
  }

  /** A paused run's job woke: past the deadline the run fails `action_timeout`, else it sleeps on. */
  async function waitForClient(
    ends: RunEndDeps,
    held: HeldJob,
    run: Run,
    logger: Logger,
  ): Promise<RunJobResult> {
    const deadline = run.action ? Date.parse(run.action.deadline) : 0;
    if (Date.now() < deadline) return sleepUntilAnswered(held, run.id, deadline);
    const failure = {
      code: 'action_timeout' as const,
      message: `no answer from the client within ${deps.config.run.actionTimeoutMs} ms`,
    };
    const status = await failRun(ends, run, run.attempts, failure);
    if (status === 'cancelled') return { status: 'cancelled' };
    logger.warn({ error: failure }, 'run failed');
    held.report.line(`failed: ${describeFailure(failure)}`);
    throw new UnrecoverableError(`${failure.code}: ${failure.message}`);
  }

  /**
   * Hands the job back to BullMQ as delayed until `deadline`. An answer that came while it was
   * still ours could not wake it (`promote` needs a delayed job): if the run is no longer paused,
   * wake it now.
   */
  async function sleepUntilAnswered(
    held: HeldJob,
    runId: string,
    deadline: number,
  ): Promise<never> {
    await held.job.moveToDelayed(deadline, held.token);
    const now = await db.getRun(runId);
    if (now?.status !== 'requires_action') await held.job.promote().catch(() => {});
    throw new DelayedError();
  }

  /**
   * The job is no longer this worker's: its lock lapsed or was released (its process taken for
   * dead, liveness.ts), so the run belongs to the attempt that takes the job next. This attempt
   * stops without writing anything, and BullMQ leaves the job where it is (a WaitingError).
   */
  function handOver(held: HeldJob, logger: Logger): never {
    logger.warn('run attempt stopped: its job is held by another worker now');
    held.report.line('stopped: the job lock was lost, another attempt takes the run');
    throw new WaitingError();
  }

  /** The attempt stopped for a cancel (or found its run cancelling): the run ends cancelled. */
  async function endCancelled(
    ends: RunEndDeps,
    held: HeldJob,
    run: Pick<Run, 'id'>,
    attempts: number,
    logger: Logger,
  ): Promise<RunJobResult> {
    const now = new Date();
    const end = await db.finishRun({
      runId: run.id,
      now,
      attempts,
      cancelledEvent: cancelledEvent(now),
    });
    if (end) await announceEnd(ends, end);
    logger.info({ attempts }, 'run cancelled');
    held.report.line('cancelled');
    // The job completes: a cancelled run is no failure, and nothing retries it.
    return { status: 'cancelled' };
  }

  async function handleFailure(
    ends: RunEndDeps,
    held: HeldJob,
    run: Run,
    attempt: number,
    error: LlmError,
    logger: Logger,
  ): Promise<RunJobResult> {
    const { job, report } = held;
    const failure = { code: error.code, message: error.message };
    // attemptsStarted counts every start, attemptsMade only the spent attempts: the difference
    // is this run's rate-limited tries (this one included).
    const rateLimitedTries = job.attemptsStarted - job.attemptsMade;
    if (error.kind === 'rate_limited' && rateLimitedTries < MAX_RATE_LIMITED_TRIES) {
      // Pause the whole queue for the server's retry-after and put the job back without
      // spending an attempt: the model server asked every caller to wait, not just this run.
      const waitMs = Math.min(error.retryAfterMs ?? 1000, MAX_RATE_LIMIT_WAIT_MS);
      // A rate-limited try spends no attempt: give back the one claimed at the start. A run
      // cancelled meanwhile is not tried again.
      if (!(await db.recordRunRetry(run.id, attempt - 1, failure))) {
        return endCancelled(ends, held, run, attempt - 1, logger);
      }
      await deps.queue.rateLimit(waitMs);
      logger.warn({ waitMs }, 'model server rate limited; queue paused');
      report.line(
        `rate limited by the model server (${rateLimitedTries} in a row): queue paused ${waitMs} ms, no attempt spent`,
      );
      throw new RateLimitError();
    }
    const lastAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    let spent = attempt;
    if (error.kind === 'rate_limited') {
      failure.message = `still rate limited after ${rateLimitedTries} tries: ${failure.message}`;
      spent = attempt - 1;
    }
    if (error.kind === 'retryable' && !lastAttempt) {
      if (!(await db.recordRunRetry(run.id, attempt, failure))) {
        return endCancelled(ends, held, run, attempt, logger);
      }
      logger.warn({ attempt, error: failure }, 'run attempt failed; BullMQ will retry');
      report.line(`attempt ${attempt} failed: ${describeFailure(failure)}; BullMQ retries it`);
      throw error;
    }
    const status = await failRun(ends, run, spent, failure);
    if (status === 'cancelled') return { status: 'cancelled' };
    logger.warn({ attempt, error: failure }, 'run failed');
    report.line(`failed: ${describeFailure(failure)}`);
    // Unrecoverable: BullMQ moves the job to failed now, where Bull Board can retry it.
    throw new UnrecoverableError(`${failure.code}: ${failure.message}`);
  }
}
