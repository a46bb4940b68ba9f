/**
 * The run row's typed columns, shared by both schemas and the services: its states (and which of
 * them are finished), its error and its token usage.
 */
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
