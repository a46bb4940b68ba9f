import type { Server } from 'bun';

/**
 * A small OpenAI-compatible model server: the only fake in the test suite. The real `openai`
 * SDK talks to it over HTTP, and each test tells it how to answer: reply, stream, stall, fail
 * with any status, rate-limit, or send garbage.
 */
export type FakeBehaviour =
  | {
      kind: 'reply';
      content?: string;
      /** The whole answer takes this long (streamed: before its first piece). */
      delayMs?: number;
      usage?: { prompt_tokens: number; completion_tokens: number };
    }
  /** Streamed in these pieces (default: the echo's words), `delayMs` apart. */
  | { kind: 'stream'; chunks?: string[]; delayMs?: number }
  | { kind: 'stall' }
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  | { kind: 'rate-limit'; retryAfterS?: number }
  | { kind: 'garbage'; body?: string }
  | { kind: 'empty' }
  | { kind: 'no-choices' };

export interface RecordedRequest {
  path: string;
  method: string;
  headers: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: a request body is whatever the client sent
  body: any;
  receivedAt: number;
}

export interface ChaosOptions {
  seed: number;
  fail5xx?: number;
  stall?: number;
  rateLimit?: number;
  garbage?: number;
}

export interface FakeLlm {
  /** Base URL for the SDK, e.g. `http://127.0.0.1:PORT/v1`. */
  url: string;
  port: number;
  /** Every chat request received, in order. */
  requests: RecordedRequest[];
  /** One-shot behaviours, used in order, one per chat request. */
  enqueue(...behaviours: FakeBehaviour[]): void;
  /** Used when the queue is empty (and chaos did not pick a fault). */
  setDefault(behaviour: FakeBehaviour | ((req: RecordedRequest) => FakeBehaviour)): void;
  /** Seeded random faults for chaos runs; null turns them off. */
  setChaos(options: ChaosOptions | null): void;
  /** Clears queue, requests and chaos; the default goes back to the echo reply. */
  reset(): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  stop(): Promise<void>;
}

const echo = (): FakeBehaviour => ({ kind: 'reply' });

export async function startFakeLlm(
  opts: { port?: number; hostname?: string; quiet?: boolean; delayMs?: number } = {},
): Promise<FakeLlm> {
  const queue: FakeBehaviour[] = [];
  const requests: RecordedRequest[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const stalled = new Set<() => void>();
  let waiters: (() => void)[] = [];
  let fallback: FakeBehaviour | ((req: RecordedRequest) => FakeBehaviour) = echo();
  let chaos: { options: ChaosOptions; next: () => number } | null = null;

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  function pick(req: RecordedRequest): FakeBehaviour {
    const queued = queue.shift();
    if (queued) return queued;
    if (chaos) {
      const roll = chaos.next();
      const { fail5xx = 0, stall = 0, rateLimit = 0, garbage = 0 } = chaos.options;
      if (roll < fail5xx) return { kind: 'status', status: 503 };
      if (roll < fail5xx + stall) return { kind: 'stall' };
      if (roll < fail5xx + stall + rateLimit) return { kind: 'rate-limit', retryAfterS: 1 };
      if (roll < fail5xx + stall + rateLimit + garbage) return { kind: 'garbage' };
    }
    const chosen = typeof fallback === 'function' ? fallback(req) : fallback;
    // The standalone fake's --delay-ms: a streamed echo, one word per delay.
    if (
      opts.delayMs &&
      chosen.kind === 'reply' &&
      chosen.delayMs === undefined &&
      !chosen.content
    ) {
      return { kind: 'stream', delayMs: opts.delayMs };
    }
    return chosen;
  }

  async function chat(request: Request, recorded: RecordedRequest): Promise<Response> {
    const behaviour = pick(recorded);
    if (!opts.quiet) {
      console.log(
        `${recorded.method} ${recorded.path} model=${recorded.body?.model} → ${behaviour.kind}`,
      );
    }
    const body = recorded.body ?? {};
    const model = typeof body.model === 'string' ? body.model : 'fake-model';
    switch (behaviour.kind) {
      case 'stall':
        return new Promise<Response>((resolve) => {
          const end = () => resolve(new Response(null, { status: 499 }));
          stalled.add(end);
          request.signal.addEventListener('abort', () => {
            stalled.delete(end);
            end();
          });
        });
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
          return streamResponse(model, chunks, gap, usage, body, sleep);
        }
        if (behaviour.delayMs) await sleep(behaviour.delayMs);
        return Response.json(completion(model, content, usage));
      }
    }
  }

  const server: Server<undefined> = Bun.serve({
    port: opts.port ?? 0,
    hostname: opts.hostname ?? '127.0.0.1',
    idleTimeout: 0,
    async fetch(request) {
      const url = new URL(request.url);
      if (request.method === 'GET' && url.pathname === '/health') return new Response('ok');
      if (request.method === 'GET' && url.pathname === '/v1/models') {
        return Response.json({
          object: 'list',
          data: [{ id: 'fake-model', object: 'model', created: 0, owned_by: 'fake' }],
        });
      }
      if (request.method !== 'POST' || url.pathname !== '/v1/chat/completions') {
        return Response.json(openAiError(`no route ${request.method} ${url.pathname}`, 404), {
          status: 404,
        });
      }
      const text = await request.text();
      let parsed: unknown = null;
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
      const recorded: RecordedRequest = {
        path: url.pathname,
        method: request.method,
        headers: Object.fromEntries(request.headers),
        body: parsed,
        receivedAt: Date.now(),
      };
      requests.push(recorded);
      for (const wake of waiters) wake();
      return chat(request, recorded);
    },
  });

  const port = server.port as number;
  return {
    url: `http://${opts.hostname ?? '127.0.0.1'}:${port}/v1`,
    port,
    requests,
    enqueue: (...behaviours) => {
      queue.push(...behaviours);
    },
    setDefault: (behaviour) => {
      fallback = behaviour;
    },
    setChaos: (options) => {
      chaos = options ? { options, next: mulberry32(options.seed) } : null;
    },
    reset: () => {
      queue.length = 0;
      requests.length = 0;
      chaos = null;
      fallback = echo();
    },
    waitForRequests: (count, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (requests.length < count) return false;
          clearTimeout(timer);
          waiters = waiters.filter((w) => w !== wake);
          resolve(requests.slice());
          return true;
        };
        const wake = () => void check();
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== wake);
          reject(new Error(`fake LLM: waited for ${count} requests, got ${requests.length}`));
        }, timeoutMs);
        if (!check()) waiters.push(wake);
      }),
    stop: async () => {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      for (const end of stalled) end();
      stalled.clear();
      await server.stop(true);
    },
  };
}

function openAiError(message: string, status: number) {
  return {
    error: { message, type: status === 429 ? 'rate_limit_error' : 'fake_error', code: null },
  };
}

type Usage = { prompt_tokens: number; completion_tokens: number };

function completion(model: string, content: string | null, usage: Usage) {
  return {
    id: `chatcmpl-fake-${Date.now()}`,
    object: 'chat.completion',
    created: Math.floor(Date.now() / 1000),
    model,
    choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }],
    usage: { ...usage, total_tokens: usage.prompt_tokens + usage.completion_tokens },
  };
}

function streamResponse(
  model: string,
  chunks: string[],
  delayMs: number,
  usage: Usage,
  // biome-ignore lint/suspicious/noExplicitAny: the request body as sent
  body: any,
  sleep: (ms: number) => Promise<void>,
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
        for (const [i, text] of chunks.entries()) {
          if (delayMs && i > 0) await sleep(delayMs);
          controller.enqueue(frame(chunk({ content: text })));
        }
        controller.enqueue(frame(chunk({}, 'stop')));
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
      }
    },
  });
  return new Response(stream, {
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' },
  });
}

// biome-ignore lint/suspicious/noExplicitAny: messages as sent
function echoContent(messages: any): string {
  const lastUser = Array.isArray(messages)
    ? [...messages].reverse().find((m) => m?.role === 'user')
    : undefined;
  return typeof lastUser?.content === 'string' ? `echo: ${lastUser.content}` : 'echo';
}

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

function words(text: string): string[] {
  return text.match(/\S+\s*|\s+/g) ?? [text];
}

/** A small seeded PRNG, so a chaos run with one seed fails the same calls every time. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
