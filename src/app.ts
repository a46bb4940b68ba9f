import { cors } from '@elysiajs/cors';
import { Elysia, ValidationError } from 'elysia';
import { StoreUnavailableError } from '../db/store';
import { createAuthGate } from './admin/auth';
import { boardRoutes } from './admin/board';
import { chatRoutes } from './chat/routes';
import { consoleRoutes } from './console/routes';
import type { Deps } from './deps';
import { docsRoutes } from './docs/swagger';
import { AppError } from './errors';
import { feedRoutes } from './feeds/routes';
import { healthRoutes } from './health/routes';
import { homeRoutes } from './home/routes';
import { createRequestLog } from './http/request-log';
import { metricsRoutes } from './metrics/routes';
import { runRoutes, threadRunRoutes } from './runs/routes';
import { threadRoutes } from './threads/routes';
import { webhookRoutes } from './webhooks/routes';
import { toolRoutes } from './tools/routes';

/**
 * The root app: one auth gate, one error handler, the domains, the docs, the board, the
 * metrics and the console, and last the front door at `/`, which links what the rest serves. No listening
 * here: see main.ts.
 */
export async function createApp(deps: Deps) {
  const gate = createAuthGate(deps.config);
  const requestLog = createRequestLog(deps);
  const { corsOrigins } = deps.config.http;
  // normalize: false makes unknown body fields a 400 instead of silently dropping them.
  const app = new Elysia({ name: 'agent-run-server', normalize: false })
    .use(requestLog.plugin)
    .onRequest(({ request, requestStartedAt }) => {
      if (request.method === 'OPTIONS') return;
      const url = request.url;
      const path = url.slice(url.indexOf('/', url.indexOf('//') + 2)).split('?')[0] ?? '/';
      const denied = gate(request, path);
      if (denied)
        requestLog.record(
          request.method,
          path === '/metrics' ? path : path.replace(/^(\/[^/]+).*$/, '$1/*'),
          401,
          requestStartedAt,
        );
      return denied;
    })
    .onError(({ error, code, set, request }) => {
      const appError = toAppError(error, code);
      if (appError.code === 'store_unavailable') {
        deps.logger.warn(
          { method: request.method, url: request.url },
          'the database is not answering',
        );
      } else if (appError.status >= 500) {
        deps.logger.error(
          { err: error, method: request.method, url: request.url },
          'unhandled error',
        );
      }
      set.status = appError.status;
      set.headers['content-type'] = 'application/json';
      return appError.toBody();
    })
    .use(
      // No origins configured: no CORS headers at all, so browsers keep cross-origin calls out.
      corsOrigins.length > 0
        ? cors({
            origin: corsOrigins,
            allowedHeaders: ['content-type', 'authorization', 'idempotency-key'],
          })
        : new Elysia({ name: 'no-cors' }),
    )
    .use(docsRoutes())
    .use(healthRoutes(deps))
    .use(chatRoutes(deps))
    .use(threadRoutes(deps))
    .use(toolRoutes(deps))
    .use(runRoutes(deps))
    .use(threadRunRoutes(deps))
    .use(feedRoutes(deps))
    .use(webhookRoutes(deps))
    .use(metricsRoutes(deps))
    .use(await boardRoutes(deps.queue))
    .use(consoleRoutes({ apiKeys: deps.config.apiKeys.length > 0, logger: deps.logger }));
  const servedPaths = app.routes
    .filter((route) => route.method === 'GET')
    .map((route) => route.path);
  return app.use(homeRoutes({ apiKeys: deps.config.apiKeys.length > 0, servedPaths }));
}

export type App = Awaited<ReturnType<typeof createApp>>;

function toAppError(error: unknown, code: string | number): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof ValidationError) {
    const issues = error.all.map((issue) => ({
      path: 'path' in issue ? issue.path : '',
      message: issue.summary ?? issue.message,
    }));
    return new AppError(
      'invalid_request',
      `invalid ${error.type}: ${issues[0]?.path || '(root)'} ${issues[0]?.message ?? ''}`.trim(),
      issues,
    );
  }
  if (code === 'PARSE') {
    // Our own body reader throws AppErrors (415, 413, bad JSON); Elysia wraps them.
    const cause = (error as Error).cause;
    if (cause instanceof AppError) return cause;
    return new AppError('invalid_request', 'the body could not be parsed');
  }
  if (code === 'NOT_FOUND') return new AppError('not_found', 'no such route');
  if (error instanceof StoreUnavailableError) {
    return new AppError(
      'store_unavailable',
      'the database is not answering; try again (an Idempotency-Key makes a retry safe)',
    );
  }
  return new AppError('internal_error', 'internal error');
}
