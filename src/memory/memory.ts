import type { Store } from '../../db/store';
import type { Run } from '../../db/types';
import type { Config } from '../config';
import type { ChatMessage, Llm } from '../llm/llm';
import type { Logger } from '../logger';
import { buildPrompt, buildSummaryRequest, foldRange, type MemoryMessage } from './prompt';
import { alignWindow } from './window';

/**
 * Builds a run's prompt from bounded memory: the last N messages up to and including the run's
 * own (starting at a slot's beginning, tool calls only with their results: `alignWindow`), plus
 * a summary that is brought up to date incrementally (old summary + the messages that
 * left the window). If summarising fails the run goes on with those messages verbatim; the
 * summary is tried again next run.
 */
export async function buildRunPrompt(
  deps: { db: Store; llm: Llm; config: Config; logger: Logger },
  run: Run,
  /** Aborts the summary call too when the run is cancelled. */
  signal?: AbortSignal,
): Promise<ChatMessage[]> {
  const { db, llm, config, logger } = deps;
  const thread = await db.getThreadMemory(run.threadId, run.seq, config.chat.recentMessages);
  const recent = alignWindow(thread?.recent ?? []);
  let summary = thread?.summary ?? null;
  let uncovered: MemoryMessage[] = [];
  const range = recent[0] ? foldRange(recent[0].seq, thread?.summaryThroughSeq ?? null) : null;
  if (range) {
    const older = await db.listMessagesBetween(run.threadId, range.afterSeq, range.beforeSeq);
    const last = older.at(-1);
    if (last) {
      try {
        const result = await llm.chat({
          model: config.chat.summaryModel ?? run.model,
          messages: buildSummaryRequest(summary, older),
          signal,
        });
        summary = result.content;
        await db.saveSummary(run.threadId, {
          text: summary,
          throughMessageId: last.id,
          throughSeq: last.seq,
        });
      } catch (error) {
        if (signal?.aborted) throw error;
        logger.warn(
          { runId: run.id, threadId: run.threadId, err: error },
          'summary failed; sending the older messages verbatim',
        );
        uncovered = older;
      }
    }
  }
  return buildPrompt({ systemPrompt: config.chat.systemPrompt, summary, uncovered, recent });
}
