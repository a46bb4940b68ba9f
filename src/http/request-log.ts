import { Elysia } from 'elysia';
import type { Logger } from '../logger';
import type { Metrics } from '../metrics/metrics';

/**
 * One log line and one metrics sample per request: method, route (the matched pattern, so ids
 * do not explode the label set), status and duration. Never headers or bodies: no secrets.
 */
export function createRequestLog(deps: { logger: Logger; metrics: Metrics }) {
  const { logger, metrics } = deps;
  const record = (method: string, route: string, status: number, startedAt: number) => {
    const seconds = (performance.now() - startedAt) / 1000;
    const labels = { method, route, status: String(status) };
    metrics.httpRequests.inc(labels);
    metrics.httpDuration.observe(labels, seconds);
    // Below info (many deployments, and the bench, run at warn) pino would drop the line anyway:
    // skip building it.
    if (logger.isLevelEnabled('info')) {
      logger.info(
        { method, route, status, durationMs: Math.round(seconds * 100_000) / 100 },
        'request',
      );
    }
  };
  const plugin = new Elysia({ name: 'request-log' })
    // The start time rides on the request's own context, which Elysia hands to every hook,
    // rather than in a WeakMap keyed by the Request: no extra entry to insert, look up and
    // have the garbage collector clear on every request.
    .decorate('requestStartedAt', 0)
    .onRequest((context) => {
      context.requestStartedAt = performance.now();
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set, requestStartedAt }) => {
      const status = typeof set.status === 'number' ? set.status : 200;
      record(request.method, route || 'unmatched', status, requestStartedAt);
    });
  // Requests answered before routing (the auth gate's 401s) never reach onAfterResponse.
  return { plugin, record };
}
