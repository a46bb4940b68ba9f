import { countTokens } from 'gpt-tokenizer/encoding/o200k_base';
import type { MessageToolCall } from '../../db/types';
import type { ToolDefinition } from '../llm/llm';

/**
 * Token counts, with o200k (OpenAI's current encoding, via gpt-tokenizer: pure TypeScript, no
 * native build, the fastest of the maintained JavaScript tokenizers). For other models' own
 * tokenizers it is an estimate; the budget keeps a margin for that (docs/architecture.md).
 */

/** What the chat format adds around each message (role and separators), as OpenAI counts it. */
export const MESSAGE_FRAMING_TOKENS = 4;

/**
 * Special-token names in a text (`<|endoftext|>`) are counted as the plain text they are: a
 * model server sends user text as text, and gpt-tokenizer would otherwise throw on them.
 */
export const PLAIN_TEXT = { disallowedSpecial: new Set<string>() };

export function textTokens(text: string): number {
  return text.length === 0 ? 0 : countTokens(text, PLAIN_TEXT);
}

/**
 * A message's tokens as sent: its text, its tool calls (name and arguments) or its tool result,
 * and the framing. Counted once, when the message is written (`messages.tokens`).
 */
export function messageTokens(message: {
  content: string;
  toolCalls?: MessageToolCall[] | null;
  name?: string | null;
}): number {
  let tokens = MESSAGE_FRAMING_TOKENS + textTokens(message.content);
  for (const call of message.toolCalls ?? []) {
    tokens += textTokens(call.name) + textTokens(call.arguments) + MESSAGE_FRAMING_TOKENS;
  }
  if (message.name) tokens += textTokens(message.name);
  return tokens;
}

/**
 * The tool definitions a request offers, as the JSON the model is given: in the wire shape
 * (`{type: "function", function: …}`, as request-body.ts sends them).
 */
export function toolDefinitionTokens(tools: ToolDefinition[]): number {
  if (tools.length === 0) return 0;
  return textTokens(JSON.stringify(tools.map((tool) => ({ type: 'function', function: tool }))));
}
