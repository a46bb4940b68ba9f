/** One tool call of a `tools` answer. */
export interface FakeToolCall {
  name: string;
  /** An object is sent as its JSON; a string is sent as it is (invalid JSON too). Default `{}`. */
  arguments?: unknown;
  /** Default: a made-up `call_…`; null: the call is sent without an id, as some models do. */
  id?: string | null;
}

/** A tool call as OpenAI's API sends it; `id` is missing when the behaviour said `id: null`. */
export interface WireToolCall {
  id?: string;
  type: 'function';
  function: { name: string; arguments: string };
}

/** The behaviour's calls as sent: arguments as JSON text, ids made up where none was given. */
export function wireToolCalls(calls: FakeToolCall[]): WireToolCall[] {
  return calls.map((call) => {
    const args =
      typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments ?? {});
    const wire: WireToolCall = { type: 'function', function: { name: call.name, arguments: args } };
    if (call.id !== null)
      wire.id = call.id ?? `call_fake${crypto.randomUUID().replaceAll('-', '')}`;
    return wire;
  });
}

/** Arguments are cut in pieces of these sizes, in turn: 3 to 7 characters. */
const PIECE_SIZES = [3, 5, 7, 4, 6];

/**
 * The `delta.tool_calls` of a streamed answer, one per chunk. Each call's first piece holds its
 * index, id, type and name with empty arguments, as OpenAI sends it; `split`: then its arguments
 * in pieces, the calls taking turns (call 0's header, call 1's header, a piece of 0, a piece of
 * 1, …), so a client must assemble by index; `whole`: one piece a call, arguments included.
 */
export function toolCallPieces(calls: WireToolCall[], mode: 'split' | 'whole'): object[][] {
  if (mode === 'whole') return calls.map((call, index) => [{ index, ...call }]);
  const queues = calls.map((call, index) => {
    const pieces: object[] = [
      { index, ...call, function: { name: call.function.name, arguments: '' } },
    ];
    const args = call.function.arguments;
    for (let at = 0, turn = index; at < args.length; turn++) {
      const size = PIECE_SIZES[turn % PIECE_SIZES.length] as number;
      pieces.push({ index, function: { arguments: args.slice(at, at + size) } });
      at += size;
    }
    return pieces;
  });
  const out: object[][] = [];
  for (let round = 0; queues.some((q) => round < q.length); round++) {
    for (const queue of queues) {
      const piece = queue[round];
      if (piece) out.push([piece]);
    }
  }
  return out;
}
