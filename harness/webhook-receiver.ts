import { Webhook } from 'standardwebhooks';
import { waitForValue } from './wait';

/** What the receiver does with one request: answer with a status, redirect, hang, or stream. */
export type ReceiverAnswer =
  | { status: number; delayMs?: number }
  | { redirect: string }
  /** Never answers (until the sender gives up and the connection closes). */
  | { hang: true }
  /** 200, then a body that never ends: a sender that read it would never finish. */
  | { endless: true };

export interface ReceivedWebhook {
  webhookId: string;
  timestamp: string;
  signature: string;
  body: string;
  /** The Standard Webhooks library's verdict on the signature. */
  verified: boolean;
  /** The body, parsed, when verified. */
  // biome-ignore lint/suspicious/noExplicitAny: tests inspect bodies freely
  event: any;
  /** 1 for the first request with this webhook-id, 2 for the next… */
  attempt: number;
  path: string;
}

/**
 * A real webhook receiver on loopback for tests: it verifies every request with the Standard
 * Webhooks library (as a user's receiver would), keeps what it got, answers as `answer` says
 * (by default 200), and counts how many requests of one webhook-id are in flight at once.
 */
export async function startWebhookReceiver(opts: {
  secret: string;
  answer?: (request: ReceivedWebhook) => ReceiverAnswer;
}) {
  const verifier = new Webhook(opts.secret);
  const received: ReceivedWebhook[] = [];
  const attempts = new Map<string, number>();
  const inFlight = new Map<string, number>();
  let maxInFlightPerId = 0;
  let endlessBytes = 0;
  let endlessCancelled = 0;
  let answer = opts.answer ?? (() => ({ status: 200 }));

  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    idleTimeout: 0,
    async fetch(request) {
      const body = await request.text();
      const webhookId = request.headers.get('webhook-id') ?? '';
      const headers = {
        'webhook-id': webhookId,
        'webhook-timestamp': request.headers.get('webhook-timestamp') ?? '',
        'webhook-signature': request.headers.get('webhook-signature') ?? '',
      };
      let event: unknown;
      let verified = false;
      try {
        event = verifier.verify(body, headers);
        verified = true;
      } catch {
        // kept as not verified: the test says what it expects
      }
      const attempt = (attempts.get(webhookId) ?? 0) + 1;
      attempts.set(webhookId, attempt);
      const got: ReceivedWebhook = {
        webhookId,
        timestamp: headers['webhook-timestamp'],
        signature: headers['webhook-signature'],
        body,
        verified,
        event,
        attempt,
        path: new URL(request.url).pathname,
      };
      received.push(got);
      const now = (inFlight.get(webhookId) ?? 0) + 1;
      inFlight.set(webhookId, now);
      maxInFlightPerId = Math.max(maxInFlightPerId, now);
      const done = () => inFlight.set(webhookId, (inFlight.get(webhookId) ?? 1) - 1);
      const reply = answer(got);
      if ('hang' in reply) {
        await new Promise<void>((resolve) =>
          request.signal.addEventListener('abort', () => resolve()),
        );
        done();
        return new Response(null, { status: 504 });
      }
      if ('redirect' in reply) {
        done();
        return new Response(null, { status: 302, headers: { location: reply.redirect } });
      }
      if ('endless' in reply) {
        done();
        const chunk = new Uint8Array(64 * 1024).fill(97);
        return new Response(
          new ReadableStream({
            pull(controller) {
              endlessBytes += chunk.length;
              controller.enqueue(chunk);
            },
            cancel() {
              endlessCancelled++;
            },
          }),
          { status: 200, headers: { 'content-type': 'text/plain' } },
        );
      }
      const { delayMs } = reply as { delayMs?: number };
      if (delayMs) await Bun.sleep(delayMs);
      done();
      return new Response(null, { status: reply.status });
    },
  });

  return {
    url: `http://127.0.0.1:${server.port}`,
    received,
    get maxInFlightPerId() {
      return maxInFlightPerId;
    },
    get endless() {
      return { bytes: endlessBytes, cancelled: endlessCancelled };
    },
    /** Changes how the receiver answers from now on. */
    answerWith(next: (request: ReceivedWebhook) => ReceiverAnswer) {
      answer = next;
    },
    /** The requests got so far for one webhook-id. */
    of(webhookId: string) {
      return received.filter((r) => r.webhookId === webhookId);
    },
    /** Resolves once `check` holds of what was received; fails after `timeoutMs`. */
    async waitFor(check: (received: ReceivedWebhook[]) => boolean, timeoutMs = 20_000) {
      if (!(await waitForValue(() => check(received), Boolean, timeoutMs))) {
        throw new Error(
          `the receiver did not get what was expected in ${timeoutMs} ms; got ${received.length} requests`,
        );
      }
    },
    close() {
      server.stop(true);
    },
  };
}

export type WebhookReceiver = Awaited<ReturnType<typeof startWebhookReceiver>>;

/** A fresh Standard Webhooks secret: `whsec_` and 32 random bytes in base64. */
export function newWebhookSecret(): string {
  return `whsec_${Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64')}`;
}
