import { newToolCallId } from '../ids';
import { LlmError, type ToolCall } from './llm';

/**
 * A tool call as the wire has it, whole (a completion's `message.tool_calls[i]`) or in pieces (a
 * stream's `delta.tool_calls[i]`). Plain shapes, so this file needs no SDK.
 */
export interface ToolCallPiece {
  index?: number;
  id?: string | null;
  /** `function`; a custom tool's call (which we never offer) has no function name. */
  type?: string | null;
  function?: { name?: string | null; arguments?: string | null } | null;
}

interface Partial {
  id: string;
  name: string;
  arguments: string;
}

/**
 * Builds a streamed answer's tool calls from their pieces. The first piece of a call carries its
 * `index`, id and name; its `function.arguments` then arrive split across many pieces, and the
 * pieces of several calls may be interleaved: each is added to the call of its `index`. A piece
 * without an `index` (some OpenAI-compatible servers) starts a new call when it has an id not
 * seen yet, and continues the latest call otherwise.
 */
export class ToolCallAssembler {
  private readonly calls = new Map<number, Partial>();
  private latest: number | undefined;

  add(piece: ToolCallPiece): void {
    const key = this.keyOf(piece);
    let call = this.calls.get(key);
    if (!call) {
      call = { id: '', name: '', arguments: '' };
      this.calls.set(key, call);
    }
    this.latest = key;
    if (piece.id) call.id = piece.id;
    // A name is sent whole (some servers repeat it in every piece); arguments are appended.
    if (piece.function?.name) call.name = piece.function.name;
    if (piece.function?.arguments) call.arguments += piece.function.arguments;
  }

  /** The whole calls, in index order. */
  finish(): ToolCall[] {
    const ordered = [...this.calls.entries()].sort(([a], [b]) => a - b).map(([, call]) => call);
    return completeToolCalls(ordered);
  }

  private keyOf(piece: ToolCallPiece): number {
    if (typeof piece.index === 'number') return piece.index;
    const known = [...this.calls.values()].some((call) => call.id === piece.id);
    if (this.latest === undefined || (piece.id && !known)) {
      return this.calls.size === 0 ? 0 : Math.max(...this.calls.keys()) + 1;
    }
    return this.latest;
  }
}

/** A completion's `message.tool_calls`, whole. */
export function readToolCalls(raw: unknown): ToolCall[] {
  if (!Array.isArray(raw)) return [];
  return completeToolCalls(
    raw.map((piece: ToolCallPiece) => ({
      id: piece?.id ?? '',
      name: piece?.function?.name ?? '',
      arguments: piece?.function?.arguments ?? '',
    })),
  );
}

/**
 * The calls we can act on. A call without an id gets one, and so does one whose id repeats an
 * earlier call's (each result must name exactly one call). Arguments left empty (a tool without
 * parameters, on some servers) are `{}`. A call without a function name (a custom tool's call
 * holds its name elsewhere, and we only offer function tools) cannot be acted on: the answer is a bad response, retried
 * like a 5xx rather than run with a call missing.
 */
function completeToolCalls(calls: Partial[]): ToolCall[] {
  const seen = new Set<string>();
  const complete: ToolCall[] = [];
  for (const call of calls) {
    if (call.name === '') {
      throw new LlmError(
        'retryable',
        'llm_bad_response',
        'the model server answered a tool call that is not a named function call',
      );
    }
    const id = call.id && !seen.has(call.id) ? call.id : newToolCallId();
    seen.add(id);
    complete.push({
      id,
      name: call.name,
      arguments: call.arguments === '' ? '{}' : call.arguments,
    });
  }
  return complete;
}
