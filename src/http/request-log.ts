import { Elysia } from 'elysia';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics/metrics';

/**
 * One log line and one metrics sample per request: method, route (the matched pattern, so ids
 * do not explode the label set), status and duration. Never headers or bodies: no secrets.
 */
export function createRequestLog(deps: { logger: Logger; metrics: Metrics }) {
  const started = new WeakMap<Request, number>();
  const record = (request: Request, route: string, status: number) => {
    const start = started.get(request);
    const seconds = start === undefined ? 0 : (performance.now() - start) / 1000;
    const labels = { method: request.method, route, status: String(status) };
    deps.metrics.httpRequests.inc(labels);
    deps.metrics.httpDuration.observe(labels, seconds);
    deps.logger.info(
      { ...labels, status, durationMs: Math.round(seconds * 100_000) / 100 },
      'request',
    );
  };
  const plugin = new Elysia({ name: 'request-log' })
    .onRequest(({ request }) => {
      started.set(request, performance.now());
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set }) => {
      record(request, route || 'unmatched', typeof set.status === 'number' ? set.status : 200);
    });
  // Requests answered before routing (the auth gate's 401s) never reach onAfterResponse.
  return { plugin, record };
}
