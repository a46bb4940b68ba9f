import { Counter, collectDefaultMetrics, Histogram, Registry } from 'prom-client';
import type { Llm } from '../llm/llm';
import { LlmError } from '../llm/llm';

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The process's Prometheus metrics, in a registry of its own (no global state, so tests can
 * build as many apps as they like). Queue counts come from BullMQ's own export at scrape time.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    httpRequests: new Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      registers,
    }),
    httpDuration: new Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request latency by method, route and status',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    runsFinished: new Counter({
      name: 'agent_runs_finished_total',
      help: 'Runs made terminal by this process, by status (completed, failed, cancelled)',
      labelNames: ['status'] as const,
      registers,
    }),
    runsCancelled: new Counter({
      name: 'agent_runs_cancelled_total',
      help: 'Runs cancelled by this process, by who asked (client, interrupt, rollback, thread_deleted)',
      labelNames: ['by'] as const,
      registers,
    }),
    llmDuration: new Histogram({
      name: 'llm_call_duration_seconds',
      help: 'Model calls by model and outcome (ok, or the error code)',
      labelNames: ['model', 'outcome'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 60],
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome: delivered (a 2xx), retry (to be tried again), failed (out of attempts), refused (its URL is no longer allowed)',
      labelNames: ['outcome'] as const,
      registers,
    }),
    toolCalls: new Counter({
      name: 'tool_calls_total',
      help: 'Server tool calls by tool, source (http, mcp) and outcome (ok, error, invalid_arguments, timeout, cancelled, unavailable)',
      labelNames: ['tool', 'source', 'outcome'] as const,
      registers,
    }),
    toolDuration: new Histogram({
      name: 'tool_call_duration_seconds',
      help: 'Server tool call latency by tool, source and outcome',
      labelNames: ['tool', 'source', 'outcome'] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    llmTokens: new Counter({
      name: 'llm_tokens_total',
      help: 'Tokens spent by model and kind (prompt, completion)',
      labelNames: ['model', 'kind'] as const,
      registers,
    }),
  };
}

/** Wraps a model client so every call (runs and summaries) is timed and its tokens counted. */
export function instrumentLlm(llm: Llm, metrics: Metrics): Llm {
  return {
    async chat(request) {
      const stop = metrics.llmDuration.startTimer({ model: request.model });
      try {
        const result = await llm.chat(request); // onDelta passes through untouched
        stop({ outcome: 'ok' });
        metrics.llmTokens.inc({ model: request.model, kind: 'prompt' }, result.usage.promptTokens);
        metrics.llmTokens.inc(
          { model: request.model, kind: 'completion' },
          result.usage.completionTokens,
        );
        return result;
      } catch (error) {
        stop({ outcome: error instanceof LlmError ? error.code : 'error' });
        throw error;
      }
    },
  };
}
