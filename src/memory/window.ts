import type { MemoryMessage } from './prompt';

/**
 * The recent window as a prompt may hold it. The store hands over the last N messages, which
 * can begin inside a run's slot (its later steps, without the user message and the first steps
 * they follow): then every window message of that slot is dropped, so the window starts at a
 * slot's beginning. Those messages are older than the window now, and `foldRange` (everything
 * before the window's first slot) hands them to the summary next. Then incomplete tool-call
 * groups go (see `completeToolGroups`).
 */
export function alignWindow<M extends MemoryMessage>(recent: M[]): M[] {
  const first = recent[0];
  const aligned =
    first && first.position !== 0 ? recent.filter((m) => m.seq !== first.seq) : recent;
  return completeToolGroups(aligned);
}

/**
 * Keeps an assistant message that called tools only together with all of its results, right
 * after it; drops the group otherwise, and drops a tool result that does not follow its call.
 * A model API refuses either half on its own, and a failed or cancelled run (or a crash between
 * two commits) can leave half a step behind. Everything else is kept, in order.
 */
export function completeToolGroups<M extends MemoryMessage>(messages: M[]): M[] {
  const kept: M[] = [];
  let i = 0;
  while (i < messages.length) {
    const message = messages[i] as M;
    i++;
    if (message.role === 'tool') continue; // its call is not right before it
    const calls = message.role === 'assistant' ? (message.toolCalls ?? []) : [];
    if (calls.length === 0) {
      kept.push(message);
      continue;
    }
    const waiting = new Set(calls.map((call) => call.toolCallId));
    const results: M[] = [];
    for (let next = messages[i]; next?.role === 'tool'; next = messages[i]) {
      if (next.toolCallId == null || !waiting.delete(next.toolCallId)) break;
      results.push(next);
      i++;
    }
    if (waiting.size === 0) kept.push(message, ...results);
  }
  return kept;
}

/** A message with its tokens as sent (`messages.tokens`, or counted when that is null). */
export interface Counted<M> {
  message: M;
  tokens: number;
}

/**
 * The newest whole slots of `messages` (conversation order, each slot a user message with its
 * run's messages) whose tokens fit `budget` together, in order. A slot is never split: the
 * window starts at a slot's beginning (see `alignWindow`), so what the summary covers ends
 * where the window starts. With `keepLast` the newest slot is kept even if it alone is over
 * (the run's own user message: the model then refuses and the overflow rule applies).
 */
export function fitNewest<M extends MemoryMessage>(
  messages: Counted<M>[],
  budget: number,
  opts: { keepLast?: boolean } = {},
): Counted<M>[] {
  let start = messages.length;
  let used = 0;
  while (start > 0) {
    const seq = messages[start - 1]?.message.seq;
    let from = start;
    let tokens = 0;
    while (from > 0 && messages[from - 1]?.message.seq === seq) {
      from--;
      tokens += messages[from]?.tokens ?? 0;
    }
    const first = start === messages.length && opts.keepLast;
    if (!first && used + tokens > budget) break;
    used += tokens;
    start = from;
  }
  return messages.slice(start);
}

export function tokensOf(messages: Counted<unknown>[]): number {
  return messages.reduce((sum, m) => sum + m.tokens, 0);
}
