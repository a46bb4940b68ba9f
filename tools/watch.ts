/**
 * `bun run watch <runId|threadId> [--url http://localhost:3000] [--key API_KEY]`: prints a run's
 * (or a thread's) live feed, the reply appearing as the model streams it (feed-printer.ts),
 * through the typed client generated from the OpenAPI document (src/client/).
 */
import { parseArgs } from 'node:util';
import { createApiClient } from '../src/client';
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
// The typed client generated from the OpenAPI document, as the console uses it.
const api = createApiClient({ baseUrl: values.url, apiKey: values.key });
const kind = id.startsWith('run_') ? 'run' : 'thread';
const { data: body, response } =
  kind === 'run'
    ? await api.GET('/api/chat/runs/{runId}/events', {
        params: { path: { runId: id } },
        parseAs: 'stream',
      })
    : await api.GET('/api/chat/threads/{threadId}/events', {
        params: { path: { threadId: id } },
        parseAs: 'stream',
      });
if (!response.ok || !body) {
  console.error(`${response.status}: ${await response.text().catch(() => '')}`);
  process.exit(1);
}

const printer = createFeedPrinter(kind, (text) => process.stdout.write(text));

const decoder = new TextDecoder();
let buffer = '';
for await (const chunk of body) {
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
