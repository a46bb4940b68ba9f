import { Database } from 'bun:sqlite';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../db/client';
import { sqlitePath } from '../db/path';
import type { Run } from '../db/types';
import { loadConfig } from '../src/config';
import { createLogger } from '../src/logger';
import { buildRunPrompt } from '../src/memory/memory';
import { messageTokens } from '../src/memory/tokens';
import { percentile } from './load';

/**
 * P3: the time to build a run's prompt, and its size, for threads of growing length. The thread
 * is in steady state (its summary covers everything before the window), as it is after every
 * run; the model is never called. Bounded memory means the figures do not grow with the thread.
 */
export async function promptGrowth(sizes: number[], builds: number) {
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-bench-growth-'));
  const config = loadConfig({ DATABASE_URL: `file:${join(dir, 'growth.db')}` });
  const store = await openStore(config.databaseUrl);
  // Seeded with SQL of its own: the store has no bulk insert, and the bench needs 100 000 rows.
  const seed = new Database(sqlitePath(config.databaseUrl), { strict: true });
  seed.exec('PRAGMA busy_timeout = 5000');
  const insertThread = seed.prepare(
    `INSERT INTO threads (id, created_at, updated_at, message_count, next_seq, summary,
       summary_through_message_id, summary_through_seq, summary_tokens)
     VALUES ($id, $now, $now, $count, $nextSeq, $summary, $throughId, $throughSeq, $summaryTokens)`,
  );
  const insertMessage = seed.prepare(
    `INSERT INTO messages (id, thread_id, run_id, role, content, seq, tokens, created_at)
     VALUES ($id, $threadId, $runId, $role, $content, $seq, $tokens, $now)`,
  );
  // The summary is up to date, so the model is never called; if it were, P3 would not measure
  // prompt building alone: the bench fails loudly.
  let modelCalls = 0;
  const llm = {
    chat: async () => {
      modelCalls++;
      throw new Error('the model must not be called: the summary is up to date');
    },
  };
  const deps = { db: store, llm, config, logger: createLogger('silent') };
  const results: { size: number; medianMs: number; promptMessages: number; promptChars: number }[] =
    [];
  try {
    for (const size of sizes) {
      const threadId = `growth-${size}`;
      const last = size - 1 - ((size - 1) % 2); // the newest user message (even slot)
      const windowStart = Math.max(0, last - config.chat.recentMessages + 1);
      const now = Date.now();
      seed.transaction(() => {
        insertThread.run({
          id: threadId,
          now,
          count: size,
          nextSeq: last + 2,
          summary: windowStart > 0 ? `Summary of the first ${windowStart} messages.` : null,
          summaryTokens:
            windowStart > 0
              ? messageTokens({ content: `Summary of the first ${windowStart} messages.` })
              : 0,
          throughId: windowStart > 0 ? `msg_${size}_${windowStart - 1}` : null,
          throughSeq: windowStart > 0 ? windowStart - 1 : null,
        });
        for (let seq = 0; seq < size; seq++) {
          const content = `message ${seq}: ${'lorem ipsum '.repeat(8)}`;
          insertMessage.run({
            id: `msg_${size}_${seq}`,
            threadId,
            runId: `run_${size}_${seq >> 1}`,
            role: seq % 2 === 0 ? 'user' : 'assistant',
            content,
            seq,
            // Counted once when written, as the store does.
            tokens: messageTokens({ content }),
            now,
          });
        }
      })();
      const run = {
        id: `run_${size}`,
        threadId,
        seq: last,
        model: 'bench',
        userMessageId: `msg_${size}_${last}`,
        tools: [],
        clientTools: [],
      } as unknown as Run;
      const fit = { tools: [], stepTokens: 0 };
      let prompt = await buildRunPrompt(deps, run, undefined, fit);
      const times: number[] = [];
      for (let i = 0; i < builds; i++) {
        const start = performance.now();
        prompt = await buildRunPrompt(deps, run, undefined, fit);
        times.push(performance.now() - start);
      }
      if (modelCalls > 0) throw new Error(`P3: the model was called ${modelCalls} times`);
      results.push({
        size,
        medianMs: percentile(times, 50),
        promptMessages: prompt.messages.length,
        promptChars: prompt.messages.reduce((n, m) => n + m.content.length, 0),
      });
    }
  } finally {
    seed.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return results;
}
