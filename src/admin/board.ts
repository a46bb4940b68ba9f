import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ElysiaAdapter } from '@bull-board/elysia';
import { Elysia } from 'elysia';
import type { RunQueue } from '../../jobs/catalog';

export const BOARD_PATH = '/admin/queues';

/**
 * Bull Board over the runs queue. It is mounted inside its own named instance because the
 * plugin's error handler would otherwise leak into the whole app and turn our 4xx into 500s.
 * Basic auth is enforced in front of routing (admin/auth.ts), so static files are covered too.
 */
export async function boardRoutes(queue: RunQueue) {
  const serverAdapter = new ElysiaAdapter(BOARD_PATH);
  createBullBoard({
    queues: [new BullMQAdapter(queue, { description: 'LLM runs: job id = run id' })],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Agent runs' } },
  });
  return new Elysia({ name: 'bull-board' }).use(await serverAdapter.registerPlugin());
}
