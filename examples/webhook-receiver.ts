/**
 * A webhook receiver that checks every delivery's signature, as yours should:
 *
 *   WEBHOOK_SECRET=whsec_… bun examples/webhook-receiver.ts      # listens on :4020
 *
 * then start the server with WEBHOOK_URL=http://127.0.0.1:4020/hooks and the same secret.
 * It answers 204 to a delivery it verified (so the server stops retrying it), 400 to one it
 * could not, and prints each event once: a retry carries the same `webhook-id`, so a receiver
 * that keeps the ids it has handled handles each event exactly once.
 */
import { Webhook, WebhookVerificationError } from 'standardwebhooks';

const secret = process.env.WEBHOOK_SECRET;
if (!secret) {
  console.error("set WEBHOOK_SECRET to the server's secret (whsec_…)");
  process.exit(2);
}
const webhook = new Webhook(secret);
/** Ids handled already. A real receiver keeps them in its database, for a day or more. */
const handled = new Set<string>();

const server = Bun.serve({
  port: Number(process.env.PORT ?? 4020),
  hostname: '127.0.0.1',
  async fetch(request) {
    if (request.method !== 'POST') return new Response('POST webhooks here\n', { status: 405 });
    // Verify the raw body, before parsing it: the signature covers the exact bytes.
    const body = await request.text();
    let event: { type: string; runId: string; payload: unknown; run?: { status: string } };
    try {
      event = webhook.verify(body, Object.fromEntries(request.headers)) as typeof event;
    } catch (error) {
      if (error instanceof WebhookVerificationError) {
        console.log(`rejected: ${error.message}`);
        return new Response(null, { status: 400 });
      }
      throw error;
    }
    const id = request.headers.get('webhook-id') as string;
    if (!handled.has(id)) {
      handled.add(id);
      console.log(`verified ${id} ${event.type} run ${event.runId} ${event.run?.status ?? ''}`);
    }
    return new Response(null, { status: 204 });
  },
});
console.log(`webhook receiver on http://127.0.0.1:${server.port}/hooks`);
