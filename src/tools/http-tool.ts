import type { HttpToolSpec } from './model';
import { abortResult, type CallResult, capOutput } from './output';

/** An HTTP tool's time limit when the file gives none. */
export const HTTP_TOOL_TIMEOUT_MS = 30_000;
/** Of a non-2xx answer's body, the model is shown this much. */
const ERROR_BODY_CHARS = 1000;

export interface HttpCallContext {
  runId: string;
  threadId: string;
  toolCallId: string;
  signal?: AbortSignal;
}

/**
 * POSTs the arguments (the model's JSON text, already validated) to the tool's URL. Every failure
 * is a result, never a throw: a non-2xx, a redirect (not followed, so a tool cannot send the
 * call's headers elsewhere), a timeout, a network error. The body is read only up to `maxChars`.
 */
export async function callHttpTool(
  spec: HttpToolSpec,
  args: string,
  ctx: HttpCallContext,
  maxChars: number,
): Promise<CallResult> {
  const timeoutMs = spec.timeoutMs ?? HTTP_TOOL_TIMEOUT_MS;
  const timeout = AbortSignal.timeout(timeoutMs);
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, timeout]) : timeout;
  try {
    const response = await fetch(spec.url, {
      method: 'POST',
      redirect: 'manual',
      signal,
      headers: {
        ...spec.headers,
        'content-type': 'application/json',
        // The same key on every try of this call: a tool can tell a repeat from a new call.
        'idempotency-key': `${ctx.runId}.${ctx.toolCallId}`,
        'x-agent-run-id': ctx.runId,
        'x-agent-thread-id': ctx.threadId,
      },
      body: args,
    });
    if (response.status >= 300 && response.status < 400) {
      await response.body?.cancel();
      const location = response.headers.get('location');
      return {
        isError: true,
        output: `HTTP ${response.status}: redirects are not followed${location ? ` (to ${location})` : ''}`,
        outcome: 'error',
      };
    }
    const ok = response.ok;
    const { text, cut } = await readText(response, ok ? maxChars : ERROR_BODY_CHARS);
    if (!ok) {
      const start = cut ? `${text}…` : text;
      return {
        isError: true,
        output: capOutput(`HTTP ${response.status}: ${start}`, maxChars),
        outcome: 'error',
      };
    }
    return { isError: false, output: capOutput(text, maxChars, cut), outcome: 'ok' };
  } catch (error) {
    if (signal.aborted) return abortResult(ctx.signal, `the call to ${spec.name}`, timeoutMs);
    return {
      isError: true,
      output: `the call to ${spec.name} failed: ${(error as Error).message}`,
      outcome: 'error',
    };
  }
}

/** The body's text up to `max` characters; the rest is never read (a huge answer costs nothing). */
async function readText(response: Response, max: number): Promise<{ text: string; cut: boolean }> {
  if (!response.body) return { text: '', cut: false };
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  try {
    while (text.length <= max) {
      const { done, value } = await reader.read();
      if (done) return { text: text + decoder.decode(), cut: false };
      text += decoder.decode(value, { stream: true });
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  return { text: text.slice(0, max), cut: true };
}
