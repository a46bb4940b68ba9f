import type { Store } from '../../db/store';
import type { Message, Run } from '../../db/types';
import type { Config } from '../config';
import { buildEvent } from '../events/event';
import type { Publisher } from '../events/outbox-relay';
import type { ChatMessage, Llm } from '../llm/llm';
import type { Logger } from '../logger';

/** A title's length at most, in characters (code points), as DESIGN has it. */
export const TITLE_MAX_CHARS = 80;
/**
 * How much of the first message and of the reply the title model is shown: their openings name
 * the subject, and a title call stays small and cheap whatever the conversation's length.
 */
const TITLE_INPUT_CHARS = 2000;
/** A cut at a word boundary keeps at least this much of the 80; else the title is cut mid-word. */
const MIN_WORD_CUT_CHARS = 40;

const TITLE_INSTRUCTION =
  'Name this conversation with a short title of at most 80 characters, in the language of the ' +
  'conversation. Answer with the title alone: no quotes, no trailing period.';

export interface TitleDeps {
  config: Pick<Config, 'chat'>;
  db: Pick<
    Store,
    'getThread' | 'getRunWithReply' | 'getMessage' | 'listMessagesBetween' | 'saveTitle'
  >;
  llm: Llm;
  publisher: Pick<Publisher, 'deliver'>;
}

/**
 * Titles a thread after a completed run, when CHAT_TITLE_MODEL is set and the thread has no title
 * yet: the title model names it from the thread's first user message and the run's reply, the
 * title is stored with its `agent.thread.titled` outbox row (`Store.saveTitle`: a model title
 * never overwrites one, a user's above all) and delivered. Never throws: a failure (the model,
 * the store) is logged and leaves no title, so the thread's next completed run tries again.
 * `logger`: the run's, which names its runId and threadId.
 */
export async function titleThread(deps: TitleDeps, run: Run, logger: Logger): Promise<void> {
  const model = deps.config.chat.titleModel;
  if (!model) return;
  try {
    const thread = await deps.db.getThread(run.threadId);
    if (!thread || thread.title !== null) return;
    const exchange = await readFirstExchange(deps.db, run);
    if (!exchange) return;
    // No signal: the run is over, nothing cancels a title; LLM_TIMEOUT_MS bounds the call.
    const answer = await deps.llm.chat({ model, messages: buildTitleRequest(exchange) });
    const title = cleanTitle(answer.content);
    if (!title) {
      logger.warn({ model }, 'the title model gave no title; the next completed run tries again');
      return;
    }
    const now = new Date();
    const saved = await deps.db.saveTitle({
      threadId: run.threadId,
      title,
      source: 'model',
      now,
      event: buildEvent(
        'agent.thread.titled',
        { runId: run.id, threadId: run.threadId },
        { title },
        now,
      ),
    });
    // Nothing saved: titled meanwhile (a user's PATCH) or deleted. Nothing to announce.
    if (!saved) return;
    // False: left to the outbox relay, which delivers it; the title is stored either way.
    await deps.publisher.deliver(saved.row);
    logger.info({ title }, 'thread titled');
  } catch (error) {
    logger.warn(
      { err: error, model },
      'titling the thread failed; the next completed run tries again',
    );
  }
}

/**
 * The thread's first user message and this run's reply. The thread's first slot (seq 0) holds
 * its first user message, unless a rollback deleted that run: then the run's own message stands
 * in. One slot is read, not the thread: a thread whose title keeps failing is read this way after
 * each of its runs. Null without a reply (nothing to name).
 */
async function readFirstExchange(
  db: TitleDeps['db'],
  run: Run,
): Promise<{ question: string; answer: string } | null> {
  const found = await db.getRunWithReply(run.id);
  const answer = found?.reply?.content;
  if (!answer) return null;
  let first: Message | undefined;
  if (run.seq > 0) {
    first = (await db.listMessagesBetween(run.threadId, -1, 1)).find((m) => m.role === 'user');
  }
  first ??= await db.getMessage(run.userMessageId);
  if (!first) return null;
  return { question: first.content, answer };
}

/** The title call: a short instruction, then the two texts (their openings) as one user message. */
export function buildTitleRequest(exchange: { question: string; answer: string }): ChatMessage[] {
  return [
    { role: 'system', content: TITLE_INSTRUCTION },
    {
      role: 'user',
      content:
        `User: ${cutChars(exchange.question, TITLE_INPUT_CHARS)}\n\n` +
        `Assistant: ${cutChars(exchange.answer, TITLE_INPUT_CHARS)}`,
    },
  ];
}

/** Opening and closing quotes a model wraps a title in. */
const QUOTES: Record<string, string> = {
  '"': '"',
  "'": "'",
  '`': '`',
  '“': '”',
  '‘': '’',
  '«': '»',
  '„': '“',
  '*': '*',
};

/**
 * The model's answer as a title: its first non-empty line, whitespace collapsed, a leading
 * `Title:` and surrounding quotes stripped, no trailing period (an ellipsis stays), at most 80
 * characters, cut at a word boundary when one leaves at least half. Empty: no title.
 */
export function cleanTitle(answer: string): string {
  const line = answer.split('\n').find((l) => l.trim() !== '') ?? '';
  let title = line.replace(/\s+/g, ' ').trim();
  title = title.replace(/^title\s*:\s*/i, '');
  for (let close = QUOTES[title[0] ?? '']; close && title.length >= 2 && title.endsWith(close); ) {
    title = title.slice(1, -1).trim();
    close = QUOTES[title[0] ?? ''];
  }
  title = title.replace(/(?<!\.)\.$/, '').trim();
  const chars = Array.from(title);
  if (chars.length <= TITLE_MAX_CHARS) return title;
  const head = chars.slice(0, TITLE_MAX_CHARS + 1).join('');
  const space = head.lastIndexOf(' ');
  const cut =
    space >= 0 && Array.from(head.slice(0, space)).length >= MIN_WORD_CUT_CHARS
      ? head.slice(0, space)
      : chars.slice(0, TITLE_MAX_CHARS).join('');
  return cut.replace(/[\s,;:\-–—]+$/, '');
}

/** The first `max` characters (code points: a cut never splits a surrogate pair). */
function cutChars(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max).join('')}…`;
}
