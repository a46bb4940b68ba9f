import { Elysia, t } from 'elysia';
import type { Deps } from '../deps';
import { withTimeout } from '../timeouts';

const PING_TIMEOUT_MS = 1000;

/** Liveness and readiness: open to probes, never behind auth. */
export function healthRoutes(deps: Pick<Deps, 'db' | 'redis'>) {
  const checks = t.Object({
    database: t.UnionEnum(['ok', 'unreachable']),
    redis: t.UnionEnum(['ok', 'unreachable']),
  });
  return new Elysia({ name: 'health', tags: ['health'] })
    .get('/health', () => ({ status: 'ok' as const }), {
      response: { 200: t.Object({ status: t.Literal('ok') }, { description: 'It answers.' }) },
      // Open to probes: no API key, whatever API_KEYS says.
      detail: { summary: 'Liveness: the process answers', security: [] },
    })
    .get(
      '/ready',
      async ({ status }) => {
        const [database, redis] = await Promise.all([
          probe(() => deps.db.ping()),
          probe(async () => {
            if (deps.redis.status !== 'ready') throw new Error('not connected');
            await deps.redis.ping();
          }),
        ]);
        const result = { database, redis };
        if (database === 'ok' && redis === 'ok')
          return { status: 'ready' as const, checks: result };
        return status(503, { status: 'not_ready' as const, checks: result });
      },
      {
        response: {
          200: t.Object(
            { status: t.Literal('ready'), checks },
            { description: 'The database and Redis answer.' },
          ),
          503: t.Object(
            { status: t.Literal('not_ready'), checks },
            { description: 'The database or Redis does not answer: `checks` says which.' },
          ),
        },
        detail: {
          summary: 'Readiness: 200 when the database and Redis answer, else 503 naming which',
          security: [],
        },
      },
    );
}

async function probe(check: () => Promise<void>): Promise<'ok' | 'unreachable'> {
  try {
    await withTimeout(check(), PING_TIMEOUT_MS, 'ping');
    return 'ok';
  } catch {
    return 'unreachable';
  }
}
