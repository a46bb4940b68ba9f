/**
 * One accepted message's cost to the SQLite store alone: the ingress transaction, then the
 * delivery mark, through the real `Store`, in groups of 50 as group commit makes them under
 * load, each message a new thread. Used by `bench:storage` and `bench:floor`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStore } from '../db/client';
import { buildEvent } from '../src/events/event';
import { newMessageId, newRunId, newThreadId } from '../src/ids';
import { messageTokens } from '../src/memory/tokens';

const GROUP = 50;
const CONTENT = 'How many moons does Jupiter have?';
/** Counted once, outside the clock: this measures the storage, as the ids below. */
const CONTENT_TOKENS = messageTokens({ content: CONTENT });

export type Ids = { threadId: string; messageId: string; runId: string };

/** Every id a Cuid2, random by design (the server's ids before message and run ids were time-ordered). */
const cuid2Ids = (): Ids => ({
  threadId: newThreadId(),
  messageId: `msg_${newThreadId().slice(4)}`,
  runId: `run_${newThreadId().slice(4)}`,
});

/** The server's ids: a Cuid2 thread id (each message a new thread here), time-ordered message and run ids. */
const serverIds = (): Ids => ({
  threadId: newThreadId(),
  messageId: newMessageId(),
  runId: newRunId(),
});

/** Ids of the same shape whose order is their creation order: each insert lands at the end. */
let sequence = 0;
const orderedIds = (): Ids => {
  const key = (sequence++).toString(36).padStart(24, '0');
  return { threadId: `thr_${key}`, messageId: `msg_${key}`, runId: `run_${key}` };
};

/** An accepted message's request to the store, as ingress makes it: `enqueue`, no tools. */
export function runRequest(ids: Ids) {
  const now = new Date();
  return {
    ...ids,
    content: CONTENT,
    tokens: CONTENT_TOKENS,
    model: 'gpt-4o-mini',
    multitask: 'enqueue' as const,
    tools: [],
    clientTools: [],
    webhookUrl: null,
    now,
    cancelledEvent: (): never => {
      throw new Error('enqueue cancels nothing');
    },
    event: buildEvent(
      'agent.run.requested',
      ids,
      { messageId: ids.messageId, model: 'gpt-4o-mini', content: CONTENT },
      now,
    ),
  };
}

/**
 * µs a message and messages a second, with Cuid2 ids, the server's ids, or time-ordered ones
 * throughout.
 */
export async function storeCost(kind: 'cuid2' | 'server' | 'ordered', messages: number) {
  const nextIds = kind === 'cuid2' ? cuid2Ids : kind === 'server' ? serverIds : orderedIds;
  // Made before the clock starts: this measures the storage, not the making of ids.
  const allIds = Array.from({ length: messages }, nextIds);
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-bench-storage-'));
  const store = await openStore(`file:${join(dir, 'storage.db')}`);
  try {
    const start = performance.now();
    const cpuBefore = process.cpuUsage();
    for (let done = 0; done < messages; done += GROUP) {
      const group = Array.from({ length: Math.min(GROUP, messages - done) }, (_, i) => {
        return store.insertRunRequest(runRequest(allIds[done + i] as Ids));
      });
      const results = await Promise.all(group);
      await store.markOutboxDelivered(
        results.flatMap((result) => (result.kind === 'created' ? [result.row.id] : [])),
      );
    }
    const ms = performance.now() - start;
    const cpu = process.cpuUsage(cpuBefore);
    return {
      usPerMessage: (ms * 1000) / messages,
      perSecond: (messages / ms) * 1000,
      // This process's CPU (its threads: the checkpointer's too), steadier than wall time on a
      // shared machine.
      cpuUsPerMessage: (cpu.user + cpu.system) / messages,
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
