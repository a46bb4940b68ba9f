import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDb } from '../db/client';
import { messages, type Run, threads } from '../db/schema';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { buildRunPrompt } from '../src/memory/memory';
import { percentile } from './load';

/**
 * P3: the time to build a run's prompt, and its size, for threads of growing length. The thread
 * is in steady state (its summary covers everything before the window), as it is after every
 * run; the model is never called. Bounded memory means the figures do not grow with the thread.
 */
export async function promptGrowth(sizes: number[], builds: number) {
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-bench-growth-'));
  const config = loadConfig({ DATABASE_URL: `file:${join(dir, 'growth.db')}` });
  const store = openDb(config.databaseUrl);
  const llm = {
    chat: async () => {
      throw new Error('the model must not be called: the summary is up to date');
    },
  };
  const deps = { db: store.db, llm, config, logger: createLogger('silent') };
  const results: { size: number; medianMs: number; promptMessages: number; promptChars: number }[] =
    [];
  try {
    for (const size of sizes) {
      const threadId = `growth-${size}`;
      const last = size - 1 - ((size - 1) % 2); // the newest user message (even slot)
      const windowStart = Math.max(0, last - config.chat.recentMessages + 1);
      const now = new Date();
      store.db
        .insert(threads)
        .values({
          id: threadId,
          createdAt: now,
          updatedAt: now,
          messageCount: size,
          nextSeq: last + 2,
          summary: windowStart > 0 ? `Summary of the first ${windowStart} messages.` : null,
          summaryThroughMessageId: windowStart > 0 ? `msg_${size}_${windowStart - 1}` : null,
          summaryThroughSeq: windowStart > 0 ? windowStart - 1 : null,
        })
        .run();
      for (let from = 0; from < size; from += 5000) {
        const rows = Array.from({ length: Math.min(5000, size - from) }, (_, i) => {
          const seq = from + i;
          return {
            id: `msg_${size}_${seq}`,
            threadId,
            runId: `run_${size}_${seq >> 1}`,
            role: seq % 2 === 0 ? ('user' as const) : ('assistant' as const),
            content: `message ${seq}: ${'lorem ipsum '.repeat(8)}`,
            seq,
            createdAt: now,
          };
        });
        store.db.insert(messages).values(rows).run();
      }
      const run = { id: `run_${size}`, threadId, seq: last, model: 'bench' } as Run;
      let prompt = await buildRunPrompt(deps, run);
      const times: number[] = [];
      for (let i = 0; i < builds; i++) {
        const start = performance.now();
        prompt = await buildRunPrompt(deps, run);
        times.push(performance.now() - start);
      }
      results.push({
        size,
        medianMs: percentile(times, 50),
        promptMessages: prompt.length,
        promptChars: prompt.reduce((n, m) => n + m.content.length, 0),
      });
    }
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
