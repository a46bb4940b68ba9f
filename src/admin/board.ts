import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ElysiaAdapter } from '@bull-board/elysia';
import { Elysia } from 'elysia';
import type { RunQueue } from '../../jobs/catalog';
import { consoleRunPath } from '../console/links';

export const BOARD_PATH = '/admin/queues';

/**
 * Bull Board 6.21's BullMQ adapter reads the queue's Redis client from `queue.client`, which
 * BullMQ 6.7 no longer has: the client moved to the queue's backend. Every handler that needs
 * the client then got `undefined`: the job page's flow poll threw (`WeakMap keys must be
 * objects`, from the FlowProducer cache keyed by client) and the Redis details answered 500.
 * This adapter hands Bull Board the client where BullMQ keeps it now.
 *
 * Known limit (Bull Board's, not ours): the FlowProducer it builds for the flow view uses
 * BullMQ's default key prefix `bull`, so under another prefix it finds no flow. Our jobs never
 * form flows (no parents, no children: jobs/catalog.ts), so its answer, "not a flow", is right.
 */
class RunQueueAdapter extends BullMQAdapter {
  constructor(
    private readonly runs: RunQueue,
    options: ConstructorParameters<typeof BullMQAdapter>[1],
  ) {
    super(runs, options);
  }

  override getClient() {
    return this.runs.getBackend().client;
  }

  override async getRedisInfo() {
    return (await this.getClient()).info();
  }
}

/** A `<link>` to a stylesheet on another host: Bull Board's page loads its font from Google. */
const OUTSIDE_STYLESHEET = /<link\b[^>]*\bhref="(?:https?:)?\/\/[^"]*"[^>]*>\s*/gi;

/**
 * Bull Board over the runs queue. It is mounted inside its own named instance because the
 * plugin's error handler would otherwise leak into the whole app and turn our 4xx into 500s.
 * Basic auth is enforced in front of routing (admin/auth.ts), so static files are covered too.
 * Each job links to its run in the console (`consoleRunPath`).
 */
export async function boardRoutes(queue: RunQueue) {
  const serverAdapter = new ElysiaAdapter(BOARD_PATH);
  createBullBoard({
    queues: [
      new RunQueueAdapter(queue, {
        description: 'LLM runs: job id = run id',
        // The job id is the run id (jobs/catalog.ts).
        externalJobUrl: (job) => ({
          displayText: 'open the run in the console',
          href: consoleRunPath(String(job.id)),
        }),
      }),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Agent runs' } },
  });
  return (
    new Elysia({ name: 'bull-board' })
      // The board's page, minus its stylesheet from an outside host (its font falls back to the
      // system's sans-serif): the board works offline and the browser asks no other host.
      // Local to this instance: only the board's own responses pass through here.
      .onAfterHandle(async ({ response }) => {
        if (!(response instanceof Response)) return;
        if (!response.headers.get('content-type')?.startsWith('text/html')) return;
        const page = await response.text();
        return new Response(page.replace(OUTSIDE_STYLESHEET, ''), {
          status: response.status,
          headers: response.headers,
        });
      })
      .use(await serverAdapter.registerPlugin())
  );
}
