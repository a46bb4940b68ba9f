/**
 * `bun run bench:storage [--messages N]`: what one accepted message costs the SQLite store alone
 * (the ingress transaction, then the delivery mark), through the real `Store`, in groups of 50
 * as group commit makes them under load, with the server's Cuid2 ids and with time-ordered ids
 * of the same length. It answers one question for whoever plans the speed work: how much of the
 * ingress cost is the random placement of Cuid2 keys in the B-trees (bench P1).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { openStore } from '../db/client';
import { buildEvent } from '../src/events/event';
import { newMessageId, newRunId, newThreadId } from '../src/ids';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '50000' } } });
const MESSAGES = Number(values.messages);
if (!Number.isInteger(MESSAGES) || MESSAGES < 1) {
  console.error('--messages must be a positive integer');
  process.exit(2);
}
const GROUP = 50;
const CONTENT = 'How many moons does Jupiter have?';

type Ids = { threadId: string; messageId: string; runId: string };

/** The server's ids: Cuid2, random by design. */
const cuid2Ids = (): Ids => ({
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

async function measure(nextIds: () => Ids) {
  // Made before the clock starts: this measures the storage, not the making of ids.
  const allIds = Array.from({ length: MESSAGES }, nextIds);
  const dir = mkdtempSync(join(tmpdir(), 'agent-run-bench-storage-'));
  const store = await openStore(`file:${join(dir, 'storage.db')}`);
  try {
    const start = performance.now();
    for (let done = 0; done < MESSAGES; done += GROUP) {
      const group = Array.from({ length: Math.min(GROUP, MESSAGES - done) }, (_, i) => {
        const ids = allIds[done + i] as Ids;
        const now = new Date();
        return store.insertRunRequest({
          ...ids,
          content: CONTENT,
          model: 'gpt-4o-mini',
          now,
          event: buildEvent(
            'agent.run.requested',
            ids,
            { messageId: ids.messageId, model: 'gpt-4o-mini', content: CONTENT },
            now,
          ),
        });
      });
      const results = await Promise.all(group);
      await store.markOutboxDelivered(
        results.flatMap((result) => (result.kind === 'created' ? [result.row.id] : [])),
      );
    }
    const ms = performance.now() - start;
    return { usPerMessage: (ms * 1000) / MESSAGES, perSecond: (MESSAGES / ms) * 1000 };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

console.log(
  `SQLite store, ${MESSAGES.toLocaleString('en-US')} accepted messages in groups of ${GROUP} (each a new thread), then marked delivered\n`,
);
console.log('| ids | µs a message | messages/s |\n| --- | --- | --- |');
for (const [name, nextIds] of [
  ['Cuid2 (random, as the server makes them)', cuid2Ids],
  ['time-ordered, same length', orderedIds],
] as const) {
  const { usPerMessage, perSecond } = await measure(nextIds);
  console.log(
    `| ${name} | ${usPerMessage.toFixed(1)} | ${Math.round(perSecond).toLocaleString('en-US')} |`,
  );
}
