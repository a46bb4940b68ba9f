import { Elysia } from 'elysia';
import type { RunQueue } from '../../jobs/catalog';
import { withTimeout } from '../timeouts';
import type { Metrics } from './metrics';

const QUEUE_METRICS_TIMEOUT_MS = 1000;

/** GET /metrics in Prometheus text format; behind the admin basic auth (admin/auth.ts). */
export function metricsRoutes(deps: { metrics: Metrics; queue: RunQueue }) {
  return new Elysia({ name: 'metrics' }).get(
    '/metrics',
    async () => {
      const [own, queue] = await Promise.all([
        deps.metrics.registry.metrics(),
        // With Redis down the scrape still answers, without the queue's figures.
        withTimeout(
          deps.queue.exportPrometheusMetrics(),
          QUEUE_METRICS_TIMEOUT_MS,
          'queue metrics',
        ).catch(() => ''),
      ]);
      return new Response(`${own}\n${queue}\n`, {
        headers: { 'content-type': deps.metrics.registry.contentType },
      });
    },
    { detail: { hide: true } },
  );
}
