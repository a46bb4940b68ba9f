/**
 * `bun run bench:storage [--messages N]`: what one accepted message costs the SQLite store alone,
 * with Cuid2 ids throughout, with the server's ids (a Cuid2 thread id, time-ordered message and
 * run ids) and with time-ordered ids throughout, all of the same length (bench/store-cost.ts):
 * how much of the ingress cost is the random placement of keys in the B-trees (bench P1).
 */
import { parseArgs } from 'node:util';
import { storeCost } from './store-cost';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '50000' } } });
const MESSAGES = Number(values.messages);
if (!Number.isInteger(MESSAGES) || MESSAGES < 1) {
  console.error('--messages must be a positive integer');
  process.exit(2);
}

console.log(
  `SQLite store, ${MESSAGES.toLocaleString('en-US')} accepted messages in groups of 50 (each a new thread), then marked delivered\n`,
);
console.log('| ids | µs a message | CPU µs a message | messages/s |\n| --- | --- | --- | --- |');
for (const [name, kind] of [
  ['Cuid2 (random) throughout', 'cuid2'],
  ["the server's: Cuid2 thread ids, time-ordered message and run ids", 'server'],
  ['time-ordered throughout, same length', 'ordered'],
] as const) {
  const { usPerMessage, cpuUsPerMessage, perSecond } = await storeCost(kind, MESSAGES);
  console.log(
    `| ${name} | ${usPerMessage.toFixed(1)} | ${cpuUsPerMessage.toFixed(1)} | ${Math.round(perSecond).toLocaleString('en-US')} |`,
  );
}
