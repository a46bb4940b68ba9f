/**
 * `bun run watch <runId|threadId> [--url http://localhost:3000] [--key API_KEY]`: prints a run's
 * (or a thread's) live feed, the reply appearing as the model streams it.
 */
import { parseArgs } from 'node:util';

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

let attempt = 0;
let midReply = false;
const line = (text: string) => {
  if (midReply) process.stdout.write('\n');
  midReply = false;
  console.log(text);
};
const show = (type: string, data: { runId: string; payload: Record<string, unknown> }) => {
  const p = data.payload;
  if (type === 'agent.run.delta') {
    if ((p.attempt as number) !== attempt) {
      attempt = p.attempt as number;
      line(`  reply (attempt ${attempt}):`);
      process.stdout.write('  ');
    }
    process.stdout.write(String(p.text));
    midReply = true;
    return;
  }
  const detail =
    type === 'agent.run.requested'
      ? `"${p.content}" (${p.model})`
      : type === 'agent.run.started'
        ? `attempt ${p.attempt}`
        : type === 'agent.run.completed'
          ? `${p.attempts} attempt(s), ${JSON.stringify(p.usage)}, ${p.durationMs} ms`
          : type === 'agent.run.failed'
            ? `${JSON.stringify(p.error)} after ${p.attempts} attempt(s)`
            : '';
  line(`• ${type} ${data.runId} ${detail}`);
};

const decoder = new TextDecoder();
let buffer = '';
for await (const chunk of response.body) {
  buffer += decoder.decode(chunk, { stream: true });
  for (let split = buffer.indexOf('\n\n'); split >= 0; split = buffer.indexOf('\n\n')) {
    const block = buffer.slice(0, split);
    buffer = buffer.slice(split + 2);
    const event = /^event: (.*)$/m.exec(block)?.[1];
    const data = /^data: (.*)$/m.exec(block)?.[1];
    if (event && data) show(event, JSON.parse(data));
  }
}
line('(feed ended)');
