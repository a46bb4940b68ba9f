import type { ChatMessage } from '../llm/llm';

/** A message as memory sees it: its conversation slot, role and text. */
export interface MemoryMessage {
  id: string;
  seq: number;
  role: 'user' | 'assistant';
  content: string;
}

export const SUMMARY_INSTRUCTION =
  'You maintain the running summary of a conversation between a user and an assistant. ' +
  'Merge the previous summary with the new messages into one concise summary that keeps every ' +
  'fact, name, number, decision, preference and open question a later reply may need. ' +
  'Answer with the summary text only.';

/**
 * The slots a summary still has to fold in: everything after what the stored summary covers and
 * before the recent window. Null when the summary is up to date.
 */
export function foldRange(
  windowStartSeq: number,
  summaryThroughSeq: number | null,
): { afterSeq: number; beforeSeq: number } | null {
  const afterSeq = summaryThroughSeq ?? -1;
  return afterSeq + 1 < windowStartSeq ? { afterSeq, beforeSeq: windowStartSeq } : null;
}

/** The summary call: instruction as system, old summary plus the transcript to fold as user. */
export function buildSummaryRequest(
  previousSummary: string | null,
  messages: MemoryMessage[],
): ChatMessage[] {
  const transcript = messages.map((m) => `${m.role}: ${m.content}`).join('\n\n');
  return [
    { role: 'system', content: SUMMARY_INSTRUCTION },
    {
      role: 'user',
      content: `Previous summary:\n${previousSummary ?? '(none)'}\n\nNew messages:\n${transcript}`,
    },
  ];
}

/**
 * The prompt: optional system prompt, the summary as its own system message, then any older
 * messages a failed summary left uncovered, then the recent window, all with their own roles.
 */
export function buildPrompt(parts: {
  systemPrompt: string | null;
  summary: string | null;
  uncovered: MemoryMessage[];
  recent: MemoryMessage[];
}): ChatMessage[] {
  const prompt: ChatMessage[] = [];
  if (parts.systemPrompt) prompt.push({ role: 'system', content: parts.systemPrompt });
  if (parts.summary) {
    prompt.push({
      role: 'system',
      content: `Summary of the earlier conversation:\n${parts.summary}`,
    });
  }
  for (const m of [...parts.uncovered, ...parts.recent]) {
    prompt.push({ role: m.role, content: m.content });
  }
  return prompt;
}
