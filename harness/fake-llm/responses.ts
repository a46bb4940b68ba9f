import type { FakeBehaviour, RecordedRequest } from './behaviours';
import { toolResultsEcho } from './directives';
import { toolCallPieces, type WireToolCall, wireToolCalls } from './tool-calls';

/** OpenAI-shaped answers: a completion, an error, a streamed completion in SSE frames. */

type Usage = { prompt_tokens: number; completion_tokens: number };
/** Waits `ms`; the server's, so stopping it cuts every pending delay short. */
export type Sleep = (ms: number) => Promise<void>;

/** The answer to a behaviour other than a stall (a stall is the server's: it holds the request). */
export async function answer(
  behaviour: Exclude<FakeBehaviour, { kind: 'stall' } | { kind: 'context-overflow' }>,
  // biome-ignore lint/suspicious/noExplicitAny: the request body as sent
  body: any,
  sleep: Sleep,
  /** Where a streamed answer's progress is noted (pieces sent, the client leaving). */
  progress: Pick<RecordedRequest, 'closedAt' | 'chunksSent'> = { chunksSent: 0 },
): Promise<Response> {
  const model = typeof body.model === 'string' ? body.model : 'fake-model';
  switch (behaviour.kind) {
    case 'status':
      return Response.json(
        behaviour.body ?? openAiError(`fake failure ${behaviour.status}`, behaviour.status),
        { status: behaviour.status, headers: behaviour.headers },
      );
    case 'rate-limit':
      return Response.json(openAiError('rate limited by the fake', 429), {
        status: 429,
        headers: { 'retry-after': String(behaviour.retryAfterS ?? 1) },
      });
    case 'garbage':
      return new Response(behaviour.body ?? 'not json at all', {
        headers: { 'content-type': 'application/json' },
      });
    case 'empty':
      return Response.json(completion(model, null, { prompt_tokens: 1, completion_tokens: 0 }));
    case 'no-choices':
      return Response.json({ id: 'chatcmpl-fake', object: 'chat.completion', model });
    case 'tools': {
      const calls = wireToolCalls(behaviour.calls);
      const text = behaviour.content ?? '';
      const usage =
        behaviour.usage ??
        estimateUsage(body.messages, text + calls.map((c) => c.function.arguments).join(''));
      if (body.stream === true) {
        const deltas = [
          ...(text ? words(text) : []).map((piece) => ({ content: piece })),
          ...toolCallPieces(calls, behaviour.stream ?? 'split').map((tool_calls) => ({
            tool_calls,
          })),
        ];
        const gap = behaviour.delayMs ?? 0;
        return streamResponse(model, deltas, gap, usage, body, sleep, progress, 'tool_calls');
      }
      if (behaviour.delayMs) await sleep(behaviour.delayMs);
      return Response.json(completion(model, behaviour.content ?? null, usage, calls));
    }
    case 'reply':
    case 'stream': {
      const content =
        behaviour.kind === 'reply'
          ? (behaviour.content ?? echoContent(body.messages))
          : (behaviour.chunks?.join('') ?? echoContent(body.messages));
      const usage =
        (behaviour.kind === 'reply' && behaviour.usage) || estimateUsage(body.messages, content);
      if (body.stream === true) {
        const chunks =
          behaviour.kind === 'stream' && behaviour.chunks ? behaviour.chunks : words(content);
        // 'reply' answers slowly as a whole (delay before the first piece); 'stream' pauses
        // between pieces.
        if (behaviour.kind === 'reply' && behaviour.delayMs) await sleep(behaviour.delayMs);
        const gap = behaviour.kind === 'stream' ? (behaviour.delayMs ?? 0) : 0;
        const deltas = chunks.map((piece) => ({ content: piece }));
        return streamResponse(model, deltas, gap, usage, body, sleep, progress, 'stop');
      }
      if (behaviour.delayMs) await sleep(behaviour.delayMs);
      return Response.json(completion(model, content, usage));
    }
  }
}

export function openAiError(message: string, status: number) {
  return {
    error: { message, type: status === 429 ? 'rate_limit_error' : 'fake_error', code: null },
  };
}

function completion(model: string, content: string | null, usage: Usage, calls?: WireToolCall[]) {
  const message = calls
    ? { role: 'assistant', content, tool_calls: calls }
    : { role: 'assistant', content };
  return {
    id: `chatcmpl-fake-${Date.now()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message, finish_reason: calls ? 'tool_calls' : 'stop' }],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}

/** `deltas`: each chunk's `delta` after the first (the role), `delayMs` apart. */
function streamResponse(
  model: string,
  deltas: object[],
  delayMs: number,
  usage: Usage,
  // biome-ignore lint/suspicious/noExplicitAny: the request body as sent
  body: any,
  sleep: Sleep,
  progress: Pick<RecordedRequest, 'closedAt' | 'chunksSent'>,
  finishReason: 'stop' | 'tool_calls',
): Response {
  const id = `chatcmpl-fake-${Date.now()}`;
  const created = Math.floor(Date.now() / 1000);
  const encoder = new TextEncoder();
  const frame = (data: unknown) => encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
  const chunk = (delta: object, finish: string | null = null) => ({
    id,
    object: 'chat.completion.chunk',
    created,
    model,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  const stream = new ReadableStream<Uint8Array>({
    async start(controller) {
      try {
        controller.enqueue(frame(chunk({ role: 'assistant', content: '' })));
        for (const [i, delta] of deltas.entries()) {
          if (delayMs && i > 0) await sleep(delayMs);
          if (progress.closedAt !== undefined) return; // the client left: write nothing more
          controller.enqueue(frame(chunk(delta)));
          progress.chunksSent++;
        }
        controller.enqueue(frame(chunk({}, finishReason)));
        if (body?.stream_options?.include_usage) {
          controller.enqueue(
            frame({
              id,
              object: 'chat.completion.chunk',
              created,
              model,
              choices: [],
              usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
            }),
          );
        }
        controller.enqueue(encoder.encode('data: [DONE]\n\n'));
        controller.close();
      } catch {
        // the client went away mid-stream
        progress.closedAt ??= Date.now();
      }
    },
    cancel() {
      progress.closedAt ??= Date.now();
    },
  });
  return new Response(stream, {
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
  });
}

/**
 * The default reply: `echo: <the last user message>`, or, when the request ends with tool
 * results, `echo: <name> said <result>` for each (directives.ts).
 */
// biome-ignore lint/suspicious/noExplicitAny: messages as sent
function echoContent(messages: any): string {
  const results = Array.isArray(messages) ? toolResultsEcho(messages) : null;
  if (results !== null) return `echo: ${results}`;
  const lastUser = Array.isArray(messages)
    ? [...messages].reverse().find((m) => m?.role === 'user')
    : undefined;
  return typeof lastUser?.content === 'string' ? `echo: ${lastUser.content}` : 'echo';
}

/** About four characters a token, as OpenAI's rule of thumb has it. */
// biome-ignore lint/suspicious/noExplicitAny: messages as sent
function estimateUsage(messages: any, reply: string): Usage {
  const promptChars = Array.isArray(messages)
    ? messages.reduce(
        (n: number, m: { content?: unknown }) => n + String(m?.content ?? '').length,
        0,
      )
    : 0;
  return {
    prompt_tokens: Math.ceil(promptChars / 4),
    completion_tokens: Math.ceil(reply.length / 4),
  };
}

/** A text's stream pieces: each word with the space after it. */
function words(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [text];
}
