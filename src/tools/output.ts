/** What a tool call came to, before it is timed and counted. */
export interface CallResult {
  isError: boolean;
  output: string;
  /** The metrics label: `ok`, `error`, `invalid_arguments`, `timeout`, `cancelled`, `unavailable`. */
  outcome: ToolCallOutcome;
}

export type ToolCallOutcome =
  | 'ok'
  | 'error'
  | 'invalid_arguments'
  | 'timeout'
  | 'cancelled'
  | 'unavailable';

/**
 * `text` cut to at most `max` characters, saying so at its end: the model must know it saw only
 * the start. `cut` says it was cut already upstream (a body not read to its end).
 */
export function capOutput(text: string, max: number, cut = false): string {
  if (!cut && text.length <= max) return text;
  const note = `\n[output cut: longer than ${max} characters]`;
  return `${text.slice(0, Math.max(0, max - note.length))}${note}`.slice(0, max);
}

/** Why a call that was aborted stopped: the caller's cancel, or the call's own time limit. */
export function abortResult(signal: AbortSignal | undefined, what: string, ms: number): CallResult {
  if (signal?.aborted)
    return { isError: true, output: `${what} was cancelled`, outcome: 'cancelled' };
  return { isError: true, output: `${what} timed out after ${ms} ms`, outcome: 'timeout' };
}
