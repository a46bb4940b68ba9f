import { swagger } from '@elysiajs/swagger';
import { Elysia, ValidationError } from 'elysia';
import pkg from '../package.json';
import { chatRoutes } from './chat/routes';
import type { Deps } from './deps';
import { AppError } from './errors';
import { healthRoutes } from './health/routes';
import { runRoutes } from './runs/routes';

/** The root app: one error handler, the domains, the docs. No listening here: see main.ts. */
export function createApp(deps: Deps) {
  // normalize: false makes unknown body fields a 400 instead of silently dropping them.
  return new Elysia({ name: 'agent-run-server', normalize: false })
    .onError(({ error, code, set, request }) => {
      const appError = toAppError(error, code);
      if (appError.status >= 500) {
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
      swagger({
        path: '/swagger',
        documentation: {
          info: { title: 'Agent run server', version: pkg.version, description: pkg.description },
          tags: [
            { name: 'chat', description: 'Post messages, read threads' },
            { name: 'runs', description: 'Follow runs' },
            { name: 'health', description: 'Liveness and readiness' },
          ],
        },
      }),
    )
    .use(healthRoutes(deps))
    .use(chatRoutes(deps))
    .use(runRoutes(deps));
}

export type App = ReturnType<typeof createApp>;

function toAppError(error: unknown, code: string | number): AppError {
  if (error instanceof AppError) return error;
  if (error instanceof ValidationError) {
    const issues = error.all.map((issue) => ({
      path: 'path' in issue ? issue.path : '',
      message: issue.summary ?? issue.message,
    }));
    const where = error.type === 'body' ? 'body' : `${error.type}`;
    return new AppError(
      'invalid_request',
      `invalid ${where}: ${issues[0]?.path || '(root)'} ${issues[0]?.message ?? ''}`.trim(),
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
  return new AppError('internal_error', 'internal error');
}
