import { decode, encode } from 'gpt-tokenizer/encoding/o200k_base';
import { messageTokens, PLAIN_TEXT } from './tokens';

/** How the summary is put before the window: its own system message. */
export function summaryContent(summary: string): string {
  return `Summary of the earlier conversation:\n${summary}`;
}

/**
 * The summary's tokens as sent: its message (the heading above, the text, the framing). This is
 * what `saveSummary` stores (`threads.summary_tokens`), so the budget reads it without counting.
 */
export function summaryTokens(summary: string): number {
  return messageTokens({ content: summaryContent(summary) });
}

/**
 * The most a summary may take in a prompt: its message around CHAT_SUMMARY_MAX_TOKENS tokens of
 * text. `capSummary` keeps every stored summary within it, so the budget can set it aside
 * before a fold has answered.
 */
export function summaryReserveTokens(summaryMaxTokens: number): number {
  return messageTokens({ content: summaryContent('') }) + summaryMaxTokens;
}

/**
 * A new summary within its cap. The call asks for at most `summaryMaxTokens` (`max_tokens`), but
 * a server may ignore that: then the text is cut to that many tokens (a token prefix decoded
 * back, a broken last character dropped), and shorter still should the cut text count more
 * inside its message than the reserve allows.
 */
export function capSummary(text: string, summaryMaxTokens: number): string {
  const reserve = summaryReserveTokens(summaryMaxTokens);
  if (summaryTokens(text) <= reserve) return text;
  const tokens = encode(text, PLAIN_TEXT);
  let keep = Math.min(tokens.length, summaryMaxTokens);
  let cut = prefix(tokens, keep);
  while (keep > 0 && summaryTokens(cut) > reserve) cut = prefix(tokens, --keep);
  return cut;
}

function prefix(tokens: number[], count: number): string {
  return decode(tokens.slice(0, count)).replace(/\uFFFD+$/, '');
}
