import type { Server } from 'bun';
import {
  BehaviourChooser,
  type ChaosOptions,
  type DefaultBehaviour,
  type FakeBehaviour,
  type RecordedRequest,
} from './behaviours';
import { type OverflowWording, overflowResponse, promptTokens } from './context-window';
import { answer, openAiError } from './responses';

/** The fake model over HTTP: it records each chat request, then answers as its behaviour says. */
export interface FakeLlm {
  /** Base URL for the SDK, e.g. `http://127.0.0.1:PORT/v1`. */
  url: string;
  port: number;
  /** Every chat request received, in order. */
  requests: RecordedRequest[];
  /** One-shot behaviours, used in order, one per chat request. */
  enqueue(...behaviours: FakeBehaviour[]): void;
  /** Used when the queue is empty (and chaos did not pick a fault). */
  setDefault(behaviour: DefaultBehaviour): void;
  /**
   * A context window: a chat request whose prompt (`RecordedRequest.promptTokens`) is over it is
   * refused as `wording`'s server refuses it (default `openai`), before any queued behaviour is
   * used (it stays queued for the next request); null: no window, every prompt is taken.
   */
  setContextWindow(tokens: number | null, wording?: OverflowWording): void;
  /** Seeded random faults for chaos runs; null turns them off. */
  setChaos(options: ChaosOptions | null): void;
  /**
   * Clears queue, requests and chaos; the default goes back to the echo reply, the context
   * window to the one given at start.
   */
  reset(): void;
  waitForRequests(count: number, timeoutMs?: number): Promise<RecordedRequest[]>;
  stop(): Promise<void>;
}

export async function startFakeLlm(
  opts: {
    port?: number;
    hostname?: string;
    quiet?: boolean;
    delayMs?: number;
    /** A context window from the start (see `setContextWindow`), with OpenAI's wording. */
    contextTokens?: number;
  } = {},
): Promise<FakeLlm> {
  const behaviours = new BehaviourChooser(opts.delayMs);
  const startWindow = { tokens: opts.contextTokens ?? null, wording: 'openai' as OverflowWording };
  let contextWindow = { ...startWindow };
  const requests: RecordedRequest[] = [];
  const timers = new Set<ReturnType<typeof setTimeout>>();
  const stalled = new Set<() => void>();
  let waiters: (() => void)[] = [];

  // Every delay is a timer stop() can clear, so a stopped fake leaves nothing pending.
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  function chat(request: Request, recorded: RecordedRequest): Promise<Response> {
    const { tokens: window, wording } = contextWindow;
    const behaviour: FakeBehaviour =
      window !== null && recorded.promptTokens > window
        ? { kind: 'context-overflow', wording }
        : behaviours.choose(recorded);
    recorded.behaviour = behaviour;
    if (!opts.quiet) {
      console.log(
        `${recorded.method} ${recorded.path} model=${recorded.body?.model} → ${behaviour.kind}`,
      );
    }
    // The client aborting the call: noted, so a test can tell when a cancel reached the model.
    request.signal.addEventListener('abort', () => {
      recorded.closedAt ??= Date.now();
    });
    if (behaviour.kind === 'context-overflow') {
      const prompt = recorded.promptTokens;
      return Promise.resolve(
        overflowResponse(behaviour.wording ?? 'openai', {
          prompt,
          context: window ?? Math.max(prompt - 1, 1),
          maxTokens: recorded.body?.max_tokens ?? recorded.body?.max_completion_tokens,
        }),
      );
    }
    if (behaviour.kind !== 'stall') return answer(behaviour, recorded.body ?? {}, sleep, recorded);
    // A stall answers only when the client gives up (or the fake stops).
    return new Promise<Response>((resolve) => {
      const end = () => resolve(new Response(null, { status: 499 }));
      stalled.add(end);
      request.signal.addEventListener('abort', () => {
        stalled.delete(end);
        end();
      });
    });
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
        chunksSent: 0,
        promptTokens: promptTokens(parsed),
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
    enqueue: (...queued) => behaviours.enqueue(...queued),
    setDefault: (behaviour) => behaviours.setDefault(behaviour),
    setContextWindow: (tokens, wording = 'openai') => {
      contextWindow = { tokens, wording };
    },
    setChaos: (options) => behaviours.setChaos(options),
    reset: () => {
      behaviours.reset();
      contextWindow = { ...startWindow };
      requests.length = 0;
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
