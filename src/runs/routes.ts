import { Elysia } from 'elysia';
import type { Store } from '../../db/store';
import { errors } from '../http/error-schemas';
import { runParams, runView } from './model';
import { getRunView } from './service';

export function runRoutes(deps: { db: Store }) {
  return new Elysia({ name: 'runs', prefix: '/api/chat/runs', tags: ['runs'] }).get(
    '/:runId',
    ({ params }) => getRunView(deps.db, params.runId),
    {
      params: runParams,
      response: {
        200: runView,
        401: errors.unauthorized,
        404: errors.notFound,
        503: errors.unavailable,
      },
      detail: {
        summary: 'A run: status, attempts, error, reply and token usage',
      },
    },
  );
}
