/**
 * `bun run bench:storage [--messages N]`: what one accepted message costs the SQLite store alone,
 * with the server's Cuid2 ids and with time-ordered ids of the same length (bench/store-cost.ts).
 * It answers one question for whoever plans the speed work: how much of the ingress cost is the
 * random placement of Cuid2 keys in the B-trees (bench P1).
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
console.log('| ids | µs a message | messages/s |\n| --- | --- | --- |');
for (const [name, kind] of [
  ['Cuid2 (random, as the server makes them)', 'cuid2'],
  ['time-ordered, same length', 'ordered'],
] as const) {
  const { usPerMessage, perSecond } = await storeCost(kind, MESSAGES);
  console.log(
    `| ${name} | ${usPerMessage.toFixed(1)} | ${Math.round(perSecond).toLocaleString('en-US')} |`,
  );
}
