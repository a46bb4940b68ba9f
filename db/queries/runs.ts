import { and, asc, eq, inArray, lt, ne, notExists, sql } from 'drizzle-orm';
import { alias } from 'drizzle-orm/sqlite-core';
import type { Db } from '../client';
import { type Message, messages, outbox, type Run, runs, threads } from '../schema';
import type { NewOutboxRow } from './outbox';

export const ACTIVE = ['queued', 'running'] as const;
export type Event = Omit<NewOutboxRow, 'id' | 'enqueueRunId' | 'createdAt' | 'deliveredAt'>;

export async function getRun(db: Db, runId: string): Promise<Run | undefined> {
  return db.select().from(runs).where(eq(runs.id, runId)).get();
}

export async function getRunWithReply(
  db: Db,
  runId: string,
): Promise<{ run: Run; reply: Message | null } | undefined> {
  const run = db.select().from(runs).where(eq(runs.id, runId)).get();
  if (!run) return undefined;
  const reply = run.replyMessageId
    ? (db.select().from(messages).where(eq(messages.id, run.replyMessageId)).get() ?? null)
    : null;
  return { run, reply };
}

/**
 * Claims an attempt: status running, attempts + 1 (an attempt cut off by a crash was spent too).
 * Returns null for a completed run (a duplicate job: skip it). A failed run is reopened: only an
 * operator's retry from Bull Board processes its job again.
 */
export async function startRunAttempt(db: Db, runId: string, now: Date): Promise<Run | null> {
  return db.transaction(
    (tx) => {
      const run = tx.select().from(runs).where(eq(runs.id, runId)).get();
      if (!run || run.status === 'completed') return null;
      return tx
        .update(runs)
        .set({
          status: 'running',
          attempts: run.attempts + 1,
          startedAt: run.startedAt ?? now,
          finishedAt: null,
        })
        .where(eq(runs.id, runId))
        .returning()
        .get();
    },
    { behavior: 'immediate' },
  );
}

/** The run waits for BullMQ's next try; `attempts` is what was spent so far. */
export async function recordRunRetry(
  db: Db,
  runId: string,
  attempts: number,
  error: { code: string; message: string },
): Promise<void> {
  db.update(runs)
    .set({ status: 'queued', attempts, error })
    .where(and(eq(runs.id, runId), ne(runs.status, 'completed')))
    .run();
}

/**
 * Makes a run terminal: the reply (if any), the run's final state and the outbox row of its
 * terminal event, in one transaction. The same row enqueues the thread's next unfinished run,
 * so the per-thread chain lives in the database and survives any crash. Returns null when the
 * run was already terminal (another delivery of the job finished it first).
 */
export async function finishRun(
  db: Db,
  input: {
    runId: string;
    now: Date;
    attempts: number;
    event: Event;
    reply?: { id: string; content: string };
    usage?: Run['usage'];
    error?: { code: string; message: string };
  },
) {
  return db.transaction(
    (tx) => {
      const run = tx.select().from(runs).where(eq(runs.id, input.runId)).get();
      if (!run || run.status === 'completed' || run.status === 'failed') return null;
      if (input.reply) {
        tx.insert(messages)
          .values({
            id: input.reply.id,
            threadId: run.threadId,
            runId: run.id,
            role: 'assistant',
            content: input.reply.content,
            seq: run.seq + 1,
            createdAt: input.now,
          })
          .run();
        tx.update(threads)
          .set({ messageCount: sql`${threads.messageCount} + 1`, updatedAt: input.now })
          .where(eq(threads.id, run.threadId))
          .run();
      }
      tx.update(runs)
        .set({
          status: input.reply ? 'completed' : 'failed',
          attempts: input.attempts,
          error: input.error ?? null,
          usage: input.usage ?? null,
          replyMessageId: input.reply?.id ?? null,
          finishedAt: input.now,
        })
        .where(eq(runs.id, run.id))
        .run();
      const next = tx
        .select({ id: runs.id })
        .from(runs)
        .where(
          and(eq(runs.threadId, run.threadId), inArray(runs.status, ACTIVE), ne(runs.id, run.id)),
        )
        .orderBy(asc(runs.seq))
        .limit(1)
        .get();
      return tx
        .insert(outbox)
        .values({ ...input.event, enqueueRunId: next?.id ?? null, createdAt: input.now })
        .returning()
        .get();
    },
    { behavior: 'immediate' },
  );
}

/**
 * Each thread's oldest unfinished run: the one run per thread that should have a live job.
 * (The runs behind it have none by design; the head's completion enqueues the next.)
 */
export async function listThreadHeads(db: Db, limit: number): Promise<Run[]> {
  const earlier = alias(runs, 'earlier');
  return db
    .select()
    .from(runs)
    .where(
      and(
        inArray(runs.status, ACTIVE),
        notExists(
          db
            .select({ one: sql`1` })
            .from(earlier)
            .where(
              and(
                eq(earlier.threadId, runs.threadId),
                inArray(earlier.status, ACTIVE),
                lt(earlier.seq, runs.seq),
              ),
            ),
        ),
      ),
    )
    .orderBy(asc(runs.createdAt))
    .limit(limit)
    .all();
}
