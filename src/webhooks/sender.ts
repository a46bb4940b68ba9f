import { Webhook } from 'standardwebhooks';
import type { Store } from '../../db/store';
import type { WebhookDelivery } from '../../db/types';
import type { Config } from '../config';
import { isTerminalEvent } from '../events/event';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics/metrics';
import { getRunView } from '../runs/service';
import { isWebhookTarget, loggableUrl } from './urls';

/** A receiver gets this long to answer with its status line; then the attempt has failed. */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/**
 * A sender's lease on the deliveries it takes: no other process sends them meanwhile. Well over
 * an attempt (the timeout) and the write of its outcome.
 */
const LEASE_MS = 15_000;
/** Deliveries taken at a time; they are sent at once, side by side. */
const BATCH = 32;
/**
 * How often a sender looks for due deliveries (a process's own new ones go at once: `kick`):
 * every second, or as often as the shortest retry delay when that is shorter (down to 50 ms).
 */
const POLL_MS = 1000;
const MIN_POLL_MS = 50;
const USER_AGENT = 'agent-run-server-webhooks';

export interface WebhookSender {
  /** Looks for due deliveries now (an event with deliveries was just committed). */
  kick(): void;
  /** One pass: sends what is due; resolves with how many attempts it made (tests). */
  sendDue(): Promise<number>;
  start(): void;
  stop(): Promise<void>;
}

/**
 * Sends the webhook deliveries the store holds (`webhook_deliveries`), in every process: each
 * pass leases the due ones (so two processes never send one at once), POSTs each signed by the
 * Standard Webhooks scheme, and stores the outcome — delivered on a 2xx within 10 s, otherwise
 * tried again after WEBHOOK_RETRY_SCHEDULE_MS until WEBHOOK_MAX_ATTEMPTS. Redirects are not
 * followed and a response body is never read. A process killed mid-attempt leaves its lease to
 * run out: the delivery is sent again, with the same `webhook-id`. Without WEBHOOK_SECRET no
 * delivery can exist, and the sender does nothing.
 */
export function createWebhookSender(deps: {
  db: Store;
  config: Pick<Config, 'webhooks'>;
  logger: Logger;
  metrics: Metrics;
}): WebhookSender {
  const { db, config, metrics } = deps;
  const { secret, maxAttempts, retryScheduleMs } = config.webhooks;
  const logger = deps.logger.child({ component: 'webhooks' });
  const signer = secret === null ? undefined : new Webhook(secret);
  const pollMs = Math.max(MIN_POLL_MS, Math.min(POLL_MS, ...retryScheduleMs));
  let timer: ReturnType<typeof setTimeout> | undefined;
  let pass: Promise<number> | undefined;
  let again = false;
  let stopped = true;

  async function sendOnce(): Promise<number> {
    let sent = 0;
    // A full batch means more may be due: go on at once.
    for (;;) {
      const due = await db.claimDueWebhooks(new Date(), BATCH, LEASE_MS);
      await Promise.all(due.map((delivery) => attempt(delivery)));
      sent += due.length;
      if (due.length < BATCH || stopped) return sent;
    }
  }

  function sendDue(): Promise<number> {
    if (!signer) return Promise.resolve(0);
    if (pass) {
      // One pass at a time; a kick during one makes another right after it.
      again = true;
      return pass;
    }
    pass = sendOnce()
      .catch((error) => {
        logger.warn({ err: error }, 'webhook pass failed; the next one tries again');
        return 0;
      })
      .finally(() => {
        pass = undefined;
        if (again && !stopped) {
          again = false;
          void sendDue();
        }
      });
    return pass;
  }

  /** One attempt at one leased delivery, and its outcome stored under that lease. */
  async function attempt(delivery: WebhookDelivery) {
    const claimedUntil = delivery.claimedUntil as Date;
    const body = delivery.body ?? (await firstBody(delivery));
    const log = {
      deliveryId: delivery.id,
      webhookId: delivery.eventId,
      eventType: delivery.eventType,
      runId: delivery.runId,
      url: loggableUrl(delivery.url),
    };
    // A URL the configuration no longer allows (WEBHOOK_URL changed, a prefix removed) is never
    // fetched again.
    const allowed = isWebhookTarget(config, delivery.url);
    const answer = allowed
      ? await post(delivery, body)
      : { statusCode: null, error: 'the URL is no longer WEBHOOK_URL nor in WEBHOOK_ALLOWED_URLS' };
    const attempts = delivery.attempts + 1;
    const now = new Date();
    const status =
      answer.error === null
        ? 'delivered'
        : !allowed || attempts >= maxAttempts
          ? 'failed'
          : 'pending';
    const delay = retryScheduleMs[Math.min(attempts, retryScheduleMs.length) - 1] ?? 0;
    const recorded = await db.recordWebhookAttempt({
      id: delivery.id,
      claimedUntil,
      body,
      now,
      status,
      nextAttemptAt: status === 'pending' ? new Date(now.getTime() + delay) : now,
      statusCode: answer.statusCode,
      error: answer.error,
    });
    const outcome = !allowed ? 'refused' : status === 'pending' ? 'retry' : status;
    metrics.webhookDeliveries.inc({ outcome });
    if (!recorded) {
      logger.warn(
        { ...log, attempts },
        'webhook attempt outlived its lease; its outcome is not kept',
      );
    } else if (status === 'failed') {
      logger.warn({ ...log, attempts, error: answer.error }, 'webhook delivery failed for good');
    } else if (status === 'pending') {
      logger.info(
        { ...log, attempts, error: answer.error, retryInMs: delay },
        'webhook attempt failed; will retry',
      );
    } else {
      logger.debug({ ...log, attempts }, 'webhook delivered');
    }
  }

  /**
   * What every attempt of a delivery sends: the event as the feeds send it, and for a run's end
   * the run view as well. Built once, at the first attempt (the run is terminal by then: the
   * event was written with its end); a run deleted with its thread has no view to add.
   */
  async function firstBody(delivery: WebhookDelivery): Promise<string> {
    if (!isTerminalEvent(delivery.eventType)) return delivery.event;
    const run = await getRunView(db, delivery.runId).catch(() => undefined);
    return run === undefined
      ? delivery.event
      : `${delivery.event.slice(0, -1)},"run":${JSON.stringify(run)}}`;
  }

  /** POSTs a delivery once. Never reads the response body: only the status line counts. */
  async function post(
    delivery: WebhookDelivery,
    body: string,
  ): Promise<{ statusCode: number | null; error: string | null }> {
    const timestamp = new Date();
    try {
      const response = await fetch(delivery.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': USER_AGENT,
          'webhook-id': delivery.eventId,
          'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
          'webhook-signature': (signer as Webhook).sign(delivery.eventId, timestamp, body),
        },
        body,
        redirect: 'manual',
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      });
      void response.body?.cancel().catch(() => {});
      if (response.status >= 200 && response.status < 300) {
        return { statusCode: response.status, error: null };
      }
      const redirect = response.status >= 300 && response.status < 400;
      return {
        statusCode: response.status,
        error: redirect
          ? `HTTP ${response.status}: redirects are not followed`
          : `HTTP ${response.status}`,
      };
    } catch (error) {
      const timedOut = error instanceof DOMException && error.name === 'TimeoutError';
      return {
        statusCode: null,
        error: timedOut
          ? `no answer within ${WEBHOOK_TIMEOUT_MS / 1000} s`
          : `could not connect: ${(error as Error).message}`,
      };
    }
  }

  function schedule() {
    if (stopped) return;
    timer = setTimeout(async () => {
      await sendDue();
      schedule();
    }, pollMs);
  }

  return {
    kick() {
      if (!stopped) void sendDue();
    },
    sendDue,
    start() {
      if (!signer) return;
      stopped = false;
      schedule();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await pass;
    },
  };
}
