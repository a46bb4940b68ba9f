import { Elysia } from 'elysia';
import type { Store } from '../../db/store';
import { errorBody, errors } from '../http/error-schemas';
import {
  runParams,
  runQuery,
  runView,
  threadRunsPage,
  threadRunsParams,
  threadRunsQuery,
} from './model';
import { getRunView, listThreadRuns } from './service';
import { type RunWaitDeps, waitForRunView } from './wait';

const badWait = errorBody('`wait` is not an integer from 1 to 60 (0, 61, 1.5, abc, empty)', {
  code: 'invalid_request',
  message: "invalid query: /wait Expected string to match '^(?:[1-9]|[1-5][0-9]|60)$'",
});

export function runRoutes(deps: RunWaitDeps) {
  return new Elysia({ name: 'runs', prefix: '/api/chat/runs', tags: ['runs'] }).get(
    '/:runId',
    // async: Elysia 1.4.30 takes a plain arrow whose body is a conditional for a synchronous
    // handler, and validates the pending promise as the response (a 400 "invalid response").
    async ({ params, query, request }) =>
      query.wait === undefined
        ? getRunView(deps.db, params.runId)
        : waitForRunView(deps, params.runId, {
            seconds: Number(query.wait),
            signal: request.signal,
          }),
    {
      params: runParams,
      query: runQuery,
      response: {
        200: runView,
        400: badWait,
        401: errors.unauthorized,
        404: errors.notFound,
        503: errors.unavailable,
      },
      detail: {
        summary: 'A run: status, attempts, error, reply and token usage',
        description:
          'Answers at once with the run as it is. With `?wait=N` (N seconds, 1 to 60, e.g. ' +
          '`GET /api/chat/runs/{runId}?wait=30`) the request is held until the run is terminal ' +
          '(completed, failed or cancelled; a cancelling run is waited on) or the N seconds are ' +
          'up, then answers the same view: check `status` to know which. A run already terminal ' +
          'answers at once. Poll again with wait to keep waiting.',
      },
    },
  );
}

/**
 * `GET /api/chat/threads/:threadId/runs` lives with the runs, not with chat's thread routes:
 * it answers run views, whose schema and builder are the runs domain's (model.ts, `toRunView`),
 * and domains never import each other sideways. The path is the thread's; what it serves is runs.
 */
export function threadRunRoutes(deps: { db: Store }) {
  return new Elysia({ name: 'thread-runs', prefix: '/api/chat/threads', tags: ['runs'] }).get(
    '/:threadId/runs',
    ({ params, query }) => listThreadRuns(deps.db, params.threadId, query),
    {
      params: threadRunsParams,
      query: threadRunsQuery,
      response: {
        200: threadRunsPage,
        400: errorBody(
          '`limit` is not an integer from 1 to 200 (invalid_request), or `before` is not a run of this thread (invalid_cursor)',
          {
            code: 'invalid_cursor',
            message: '"run_…" is not a run of this thread',
          },
        ),
        401: errors.unauthorized,
        404: errors.notFound,
        503: errors.unavailable,
      },
      detail: {
        summary: "A thread's runs, newest first",
        description:
          'Each run as GET /api/chat/runs/{runId} shows it, reply included. Without `before` ' +
          'the newest `limit` runs (default 50, at most 200); page back to older ones with ' +
          '`before=nextBefore` while `hasMore`. A `before` that is not a run of this thread is a ' +
          '400 invalid_cursor; a bad `limit` a 400 invalid_request; an unknown thread a 404.',
      },
    },
  );
}
