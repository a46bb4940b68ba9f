import type { OverflowWording } from './context-window';
import { directiveCalls, directivePace } from './directives';
import type { FakeToolCall } from './tool-calls';

export type { FakeToolCall, OverflowWording };

/**
 * What the fake model does with a chat request: the tests' one-shot queue first, then a seeded
 * chaos fault, then the default (the echo unless a test set another: it answers
 * `echo: <the last user message>`, calls the tools a `[[tool:NAME {args}]]` directive names,
 * and answers tool results with `echo: <name> said <result>`; see directives.ts).
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
  /**
   * Answers with these tool calls (several: parallel calls) and `content` as text beside them,
   * whatever the request's `tools` and `tool_choice` say. Streamed (a request with
   * `stream: true`), each call's first piece holds its index, id and name; with `stream: 'split'`
   * (the default) its arguments follow in pieces of 3 to 7 characters, the calls' pieces
   * interleaved; with `'whole'` each call is one piece. `delayMs` apart.
   */
  | {
      kind: 'tools';
      calls: FakeToolCall[];
      content?: string;
      stream?: 'split' | 'whole';
      delayMs?: number;
      usage?: { prompt_tokens: number; completion_tokens: number };
    }
  | { kind: 'stall' }
  | { kind: 'status'; status: number; body?: unknown; headers?: Record<string, string> }
  | { kind: 'rate-limit'; retryAfterS?: number }
  | { kind: 'garbage'; body?: string }
  | { kind: 'empty' }
  | { kind: 'no-choices' }
  /**
   * Refuses the prompt as too long, in that server's words (default `openai`), whatever its
   * size: as the fake's context window (`setContextWindow`) refuses a prompt over it.
   */
  | { kind: 'context-overflow'; wording?: OverflowWording };

/** A chat request as the fake received it. */
export interface RecordedRequest {
  path: string;
  method: string;
  headers: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: a request body is whatever the client sent
  body: any;
  receivedAt: number;
  /** When the client went away before the answer was whole (it aborted the call), if it did. */
  closedAt?: number;
  /** The pieces of a streamed answer written so far. */
  chunksSent: number;
  /** Its prompt's tokens as the fake counts them (see context-window.ts). */
  promptTokens: number;
  /** What the fake chose to answer with (a directive's tool calls, say). */
  behaviour?: FakeBehaviour;
}

/** Shares of the calls that fail each way (0 to 1, default 0), rolled from `seed`. */
export interface ChaosOptions {
  seed: number;
  fail5xx?: number;
  stall?: number;
  rateLimit?: number;
  garbage?: number;
}

export type DefaultBehaviour = FakeBehaviour | ((req: RecordedRequest) => FakeBehaviour);

/**
 * The echo: a reply (streamed word by word at a `[[pace:MS]]`), or the tool calls the last user
 * message's directives ask for.
 */
const echo = (): DefaultBehaviour => (req) => {
  const calls = directiveCalls(req.body);
  if (calls) return { kind: 'tools', calls };
  const pace = directivePace(req.body);
  return pace === null ? { kind: 'reply' } : { kind: 'stream', delayMs: pace };
};

export class BehaviourChooser {
  private readonly queue: FakeBehaviour[] = [];
  private fallback: DefaultBehaviour = echo();
  private chaos: { options: ChaosOptions; next: () => number } | null = null;

  /** `streamDelayMs` (the standalone fake's --delay-ms): the default echo streams, one word per delay. */
  constructor(private readonly streamDelayMs?: number) {}

  enqueue(...behaviours: FakeBehaviour[]): void {
    this.queue.push(...behaviours);
  }

  setDefault(behaviour: DefaultBehaviour): void {
    this.fallback = behaviour;
  }

  setChaos(options: ChaosOptions | null): void {
    this.chaos = options ? { options, next: mulberry32(options.seed) } : null;
  }

  /** Empties the queue, turns chaos off, and makes the echo reply the default again. */
  reset(): void {
    this.queue.length = 0;
    this.chaos = null;
    this.fallback = echo();
  }

  choose(req: RecordedRequest): FakeBehaviour {
    const queued = this.queue.shift();
    if (queued) return queued;
    if (this.chaos) {
      const roll = this.chaos.next();
      const { fail5xx = 0, stall = 0, rateLimit = 0, garbage = 0 } = this.chaos.options;
      if (roll < fail5xx) return { kind: 'status', status: 503 };
      if (roll < fail5xx + stall) return { kind: 'stall' };
      if (roll < fail5xx + stall + rateLimit) return { kind: 'rate-limit', retryAfterS: 1 };
      if (roll < fail5xx + stall + rateLimit + garbage) return { kind: 'garbage' };
    }
    const chosen = typeof this.fallback === 'function' ? this.fallback(req) : this.fallback;
    if (
      this.streamDelayMs &&
      chosen.kind === 'reply' &&
      chosen.delayMs === undefined &&
      !chosen.content
    ) {
      return { kind: 'stream', delayMs: this.streamDelayMs };
    }
    if (this.streamDelayMs && chosen.kind === 'tools' && chosen.delayMs === undefined) {
      return { ...chosen, delayMs: this.streamDelayMs };
    }
    return chosen;
  }
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
