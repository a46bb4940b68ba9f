import type { Message } from '../../db/types';
import type { ChatMessage } from '../llm/llm';
import { summaryContent } from './summary';
import { completeToolGroups } from './window';

/**
 * A message as memory sees it: its place in the conversation (slot, then position), its role
 * and text, and the tool fields of a tool-call step or a tool result.
 */
export type MemoryMessage = Pick<
  Message,
  'id' | 'seq' | 'position' | 'role' | 'content' | 'toolCalls' | 'toolCallId' | 'name' | 'isError'
> & {
  /** Its tokens as sent; null or absent: written before counting, counted when read. */
  tokens?: number | null;
};

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

/**
 * The summary call: instruction as system, old summary plus the transcript to fold as user.
 * Tool calls and results are folded in as text (`assistant called weather({...})`,
 * `tool weather: ...`): the summary keeps what they told, and a half step is just text there.
 */
export function buildSummaryRequest(
  previousSummary: string | null,
  messages: MemoryMessage[],
): ChatMessage[] {
  const transcript = messages.map(transcriptEntry).join('\n\n');
  return [
    { role: 'system', content: SUMMARY_INSTRUCTION },
    {
      role: 'user',
      content: `Previous summary:\n${previousSummary ?? '(none)'}\n\nNew messages:\n${transcript}`,
    },
  ];
}

function transcriptEntry(m: MemoryMessage): string {
  if (m.role === 'tool') {
    return `tool ${m.name ?? 'unknown'}${m.isError ? ' (error)' : ''}: ${m.content}`;
  }
  const calls = m.role === 'assistant' ? (m.toolCalls ?? []) : [];
  if (calls.length === 0) return `${m.role}: ${m.content}`;
  const lines = calls.map((call) => `assistant called ${call.name}(${call.arguments})`);
  return (m.content ? [`assistant: ${m.content}`, ...lines] : lines).join('\n');
}

/**
 * The prompt: optional system prompt, the summary as its own system message, then any older
 * messages a failed summary left uncovered, then the recent window, all with their own roles.
 * A tool-call step goes only with all of its results (`completeToolGroups`), in both parts.
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
    prompt.push({ role: 'system', content: summaryContent(parts.summary) });
  }
  for (const m of [...completeToolGroups(parts.uncovered), ...completeToolGroups(parts.recent)]) {
    prompt.push(toChatMessage(m));
  }
  return prompt;
}

/**
 * A run's own committed step rows (`Store.listRunSteps`), as the run loop appends them after
 * the prompt to go on where an earlier attempt stopped. Mapped as they are, a half step
 * included: completing it (the calls without a result) is the loop's business, not memory's.
 */
export function stepMessages(rows: MemoryMessage[]): ChatMessage[] {
  return rows.map(toChatMessage);
}

function toChatMessage(m: MemoryMessage): ChatMessage {
  if (m.role === 'tool') {
    if (m.toolCallId == null) throw new Error(`tool message ${m.id} has no toolCallId`);
    return { role: 'tool', toolCallId: m.toolCallId, content: m.content };
  }
  if (m.role === 'assistant' && m.toolCalls && m.toolCalls.length > 0) {
    return {
      role: 'assistant',
      content: m.content,
      toolCalls: m.toolCalls.map((call) => ({
        id: call.toolCallId,
        name: call.name,
        arguments: call.arguments,
      })),
    };
  }
  return { role: m.role, content: m.content };
}
