/**
 * Every code a failed run can carry: the run's `error.code`, `agent.run.failed`'s
 * `payload.error.code`, and the error a retried attempt leaves on the run meanwhile. One closed
 * set, each code with what causes it; docs/events.md lists them for users. The model's errors are
 * classified in llm/openai.ts, the run job wraps anything else as `internal_error`, and the
 * worker's safety net and the reconciler give up on a run as `run_aborted`.
 */
export const RUN_FAILURES = {
  llm_not_configured: 'no model server is configured (OPENAI_API_KEY or OPENAI_BASE_URL); final',
  llm_timeout:
    'no answer within LLM_TIMEOUT_MS, silence that long in the middle of a streamed answer, or a 408; retried',
  llm_aborted: 'the model call was aborted; retried',
  llm_unreachable: 'the model server could not be reached (a network error); retried',
  llm_rate_limited:
    'still answered 429 after ten rate-limited tries in a row (which spend no attempt)',
  llm_conflict: 'the model server answered 409; retried',
  llm_server_error: 'the model server answered 5xx; retried',
  llm_bad_response:
    'a 200 that is not a chat completion holding text, or an answer that could not be read; retried',
  llm_bad_request: 'the model server answered 400; final',
  llm_unauthorized: 'the model server answered 401 (a wrong OPENAI_API_KEY); final',
  llm_forbidden: 'the model server answered 403; final',
  llm_not_found: 'the model server answered 404 (an unknown model, a wrong OPENAI_BASE_URL); final',
  llm_unprocessable: 'the model server answered 422; final',
  llm_request_rejected: 'the model server answered another 4xx; final',
  context_overflow:
    'the model server refused the prompt as longer than its context window (a context-length error, whatever its status); recovered once by halving the window; a second refusal is final',
  action_timeout:
    'the run waited for its client (tool outputs or approvals) longer than RUN_ACTION_TIMEOUT_MS; final',
  internal_error: 'an unexpected error inside the run job; retried like a 5xx',
  run_aborted:
    'the job failed outside the run: its worker died twice, or BullMQ failed it for good without the run ending',
} as const;

export type RunFailureCode = keyof typeof RUN_FAILURES;

/** What a failed run (or a failed attempt) records: a code of the closed set and a message. */
export interface RunFailure {
  code: RunFailureCode;
  message: string;
}
