/**
 * `bun run watch <runId|threadId> [--url http://localhost:3000] [--key API_KEY]`: prints a run's
 * (or a thread's) live feed, the reply appearing as the model streams it (feed-printer.ts).
 */
import { parseArgs } from 'node:util';
import { createFeedPrinter } from './feed-printer';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { url: { type: 'string', default: 'http://localhost:3000' }, key: { type: 'string' } },
});
const id = positionals[0];
if (!id) {
  console.error(
    'usage: bun run watch <runId|threadId> [--url http://localhost:3000] [--key API_KEY]',
  );
  process.exit(2);
}
const path = id.startsWith('run_') ? `runs/${id}` : `threads/${id}`;
const response = await fetch(`${values.url}/api/chat/${path}/events`, {
  headers: values.key ? { authorization: `Bearer ${values.key}` } : {},
});
if (!response.ok || !response.body) {
  console.error(`${response.status}: ${await response.text()}`);
  process.exit(1);
}

const printer = createFeedPrinter(path.startsWith('runs/') ? 'run' : 'thread', (text) =>
  process.stdout.write(text),
);

const decoder = new TextDecoder();
let buffer = '';
for await (const chunk of response.body) {
  buffer += decoder.decode(chunk, { stream: true });
  for (let split = buffer.indexOf('\n\n'); split >= 0; split = buffer.indexOf('\n\n')) {
    const block = buffer.slice(0, split);
    buffer = buffer.slice(split + 2);
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (event && data) printer.show(event, JSON.parse(data));
  }
}
printer.end();
