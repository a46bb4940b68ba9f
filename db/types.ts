import type * as pg from './postgres/schema';
import type * as sqlite from './sqlite/schema';

/**
 * The rows services see, whichever engine stores them. Both schemas must infer exactly these
 * types: the checks below fail to compile if one dialect's table drifts from the other's.
 */
export type Thread = sqlite.Thread;
export type Message = sqlite.Message;
export type Run = sqlite.Run;
export type OutboxRow = sqlite.OutboxRow;

/** A run waiting for its job or in it: a thread's runs go one at a time, oldest first. */
export const UNFINISHED_RUN_STATUSES = ['queued', 'running'] as const;
/** A terminal run: its reply or error is stored and its terminal event is in the outbox. */
export const FINISHED_RUN_STATUSES = ['completed', 'failed'] as const;
export const RUN_STATUSES = [...UNFINISHED_RUN_STATUSES, ...FINISHED_RUN_STATUSES] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];
export type UnfinishedRunStatus = (typeof UNFINISHED_RUN_STATUSES)[number];
export type FinishedRunStatus = (typeof FINISHED_RUN_STATUSES)[number];

/** Whether a run with this status is terminal (see `FINISHED_RUN_STATUSES`). */
export function isFinishedStatus(status: string): status is FinishedRunStatus {
  return (FINISHED_RUN_STATUSES as readonly string[]).includes(status);
}

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameRows: [
  Same<Thread, pg.Thread>,
  Same<Message, pg.Message>,
  Same<Run, pg.Run>,
  Same<OutboxRow, pg.OutboxRow>,
] = [true, true, true, true];
void sameRows;
