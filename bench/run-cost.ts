/**
 * A run's own commits to the SQLite store alone, through the real `Store`: the attempt's claim
 * (`startRunAttempt`, with its `agent.run.started` row) and the run's end (`finishRun`: the
 * reply, the run's final state and its `agent.run.completed` row), each row then marked
 * delivered, in groups of 50 as group commit makes them under load. The accepted messages they
 * start from are written first, off the clock (their cost is the ingress's: store-cost.ts). Used
 * by bench P2's floor (floor.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../db/client';
import type { Store } from '../db/store';
import { buildEvent } from '../src/events/event';
import { newMessageId, newRunId, newThreadId } from '../src/ids';
import { messageTokens } from '../src/memory/tokens';
import { type Ids, runRequest } from './store-cost';

const GROUP = 50;
const CONTENT = 'How many moons does Jupiter have?';
const REPLY = 'echo: How many moons does Jupiter have?';
const CONTENT_TOKENS = messageTokens({ content: CONTENT });
const REPLY_TOKENS = messageTokens({ content: REPLY });
const MODEL = 'gpt-4o-mini';

async function accept(store: Store, ids: Ids) {
  const result = await store.insertRunRequest(runRequest(ids));
  if (result.kind !== 'created') throw new Error(`the run was not accepted: ${result.kind}`);
  await store.markOutboxDelivered([result.row.id]);
}

/** One run's claim and end, as the run job makes them, with their rows marked delivered. */
async function claimAndFinish(store: Store, ids: Ids) {
  const claimed = await store.startRunAttempt({
    runId: ids.runId,
    now: new Date(),
    startedEvent: (run) => buildEvent('agent.run.started', ids, { attempt: run.attempts }),
  });
  if (!claimed?.row) throw new Error('the attempt was not claimed');
  const now = new Date();
  const replyId = newMessageId();
  const usage = { promptTokens: 12, completionTokens: 8, totalTokens: 20 };
  const memory = {
    contextTokens: 128_000,
    budgetTokens: 117_504,
    systemTokens: 0,
    summaryTokens: 0,
    toolsTokens: 0,
    windowTokens: CONTENT_TOKENS,
    windowMessages: 1,
    summarisedMessages: 0,
  };
  const end = await store.finishRun({
    runId: ids.runId,
    now,
    attempts: claimed.run.attempts,
    reply: { id: replyId, content: REPLY, position: 0, tokens: REPLY_TOKENS },
    usage,
    steps: 1,
    toolCallCount: 0,
    memory,
    event: buildEvent(
      'agent.run.completed',
      ids,
      {
        messageId: replyId,
        model: MODEL,
        content: REPLY,
        usage,
        attempts: claimed.run.attempts,
        durationMs: 1,
        steps: 1,
        toolCalls: 0,
        memory,
      },
      now,
    ),
    cancelledEvent: () => {
      throw new Error('nothing cancels these runs');
    },
  });
  if (end?.status !== 'completed' || !end) throw new Error('the run did not complete');
  return [claimed.row.id, end.row.id];
}

/** The store's time (wall) and CPU a run's claim and end take, with the server's ids. */
export async function runCommitCost(runs: number) {
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-bench-run-cost-'));
  const store = await openStore(`file:${join(dir, 'runs.db')}`);
  try {
    const allIds: Ids[] = Array.from({ length: runs }, () => ({
      threadId: newThreadId(),
      messageId: newMessageId(),
      runId: newRunId(),
    }));
    for (let done = 0; done < runs; done += GROUP) {
      await Promise.all(allIds.slice(done, done + GROUP).map((ids) => accept(store, ids)));
    }
    const start = performance.now();
    const cpu = process.cpuUsage();
    for (let done = 0; done < runs; done += GROUP) {
      const group = allIds.slice(done, done + GROUP);
      const rows = await Promise.all(group.map((ids) => claimAndFinish(store, ids)));
      await store.markOutboxDelivered(rows.flat());
    }
    const used = process.cpuUsage(cpu);
    return {
      usPerRun: ((performance.now() - start) * 1000) / runs,
      cpuUsPerRun: (used.user + used.system) / runs,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
