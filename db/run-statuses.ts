/** A run's states, and which of them are finished; the schemas and the services share them. */
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
