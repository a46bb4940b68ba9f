import type { FakeToolCall } from './tool-calls';

/**
 * The echo's conventions, so a test or a person with curl can make the fake call tools without
 * configuring it:
 *
 * - A user message holding `[[tool:NAME {json arguments}]]` makes the fake call tool NAME with
 *   those arguments (`[[tool:NAME]]`: `{}`); several directives are several calls in one answer
 *   (parallel calls), in the message's order. Arguments that are not JSON are sent as they are
 *   written, so a model's invalid arguments can be played too. The directives count when the
 *   request's last message is that user message, the request offers tools (any: NAME need not be
 *   one of them) and its `tool_choice` is not `none` — as a real model would.
 * - When the request's last messages are tool results, the echo answers with them:
 *   `echo: <name> said <result>`, several joined by `; `, the name read from the assistant
 *   message whose tool call the result answers.
 *
 * - The conversation's latest user message holding `[[pace:MS]]` makes the echo stream its
 *   answer (the reply, or the echo of tool results) one word every MS milliseconds, so a run
 *   stays live for a while without configuring the fake (the live-feeds bench uses it).
 *
 * e.g. `please [[tool:weather {"city":"Paris"}]] and [[tool:clock]]` → two calls, then
 * `echo: weather said {"temp":21}; clock said 12:00` once both results are sent back.
 */
// biome-ignore lint/suspicious/noExplicitAny: the request body as sent
export function directiveCalls(body: any): FakeToolCall[] | null {
  const messages = Array.isArray(body?.messages) ? body.messages : [];
  const last = messages.at(-1);
  if (last?.role !== 'user' || typeof last.content !== 'string') return null;
  if (!Array.isArray(body.tools) || body.tools.length === 0 || body.tool_choice === 'none') {
    return null;
  }
  const calls: FakeToolCall[] = [];
  const text: string = last.content;
  const directive = /\[\[tool:([^\s\]]+)/g;
  for (let match = directive.exec(text); match; match = directive.exec(text)) {
    const argsStart = match.index + match[0].length;
    const parsed = readArguments(text, argsStart);
    if (!parsed) continue; // never closed
    calls.push({ name: match[1] as string, arguments: parsed.arguments });
    directive.lastIndex = parsed.end;
  }
  return calls.length > 0 ? calls : null;
}

/** The `[[pace:MS]]` of the conversation's latest user message: ms between streamed words. */
// biome-ignore lint/suspicious/noExplicitAny: the request body as sent
export function directivePace(body: any): number | null {
  const messages: unknown[] = Array.isArray(body?.messages) ? body.messages : [];
  // biome-ignore lint/suspicious/noExplicitAny: messages as sent
  const user = messages.findLast((m: any) => m?.role === 'user') as any;
  if (typeof user?.content !== 'string') return null;
  const match = /\[\[pace:(\d{1,5})\]\]/.exec(user.content);
  return match ? Number(match[1]) : null;
}

/**
 * The arguments run to the first `]]` after which they read as JSON (JSON may hold `]]`
 * itself); when no `]]` gives JSON, to the first `]]`, as raw text.
 */
function readArguments(text: string, start: number): { arguments: unknown; end: number } | null {
  const first = text.indexOf(']]', start);
  if (first < 0) return null;
  for (let close = first; close >= 0; close = text.indexOf(']]', close + 1)) {
    const raw = text.slice(start, close).trim();
    if (raw === '') return { arguments: {}, end: close + 2 };
    try {
      return { arguments: JSON.parse(raw), end: close + 2 };
    } catch {
      // not yet: this `]]` may be inside the JSON
    }
  }
  return { arguments: text.slice(start, first).trim(), end: first + 2 };
}

/** `<name> said <result>` for each tool result the request ends with; null when it ends otherwise. */
// biome-ignore lint/suspicious/noExplicitAny: messages as sent
export function toolResultsEcho(messages: any[]): string | null {
  let first = messages.length;
  while (first > 0 && messages[first - 1]?.role === 'tool') first--;
  if (first === messages.length) return null;
  const names = new Map<string, string>();
  for (const message of messages.slice(0, first)) {
    for (const call of Array.isArray(message?.tool_calls) ? message.tool_calls : []) {
      if (typeof call?.id === 'string') names.set(call.id, call.function?.name ?? call.id);
    }
  }
  return messages
    .slice(first)
    .map((m) => {
      const content = typeof m.content === 'string' ? m.content : JSON.stringify(m.content);
      return `${names.get(m.tool_call_id) ?? m.tool_call_id} said ${content}`;
    })
    .join('; ');
}
