import { Elysia } from 'elysia';
import type { Config } from '../config';
import { errors } from '../http/error-schemas';
import { readOptionalJsonBody } from '../http/json-body';
import { type CancelDeps, cancelRun } from './cancel';
import { cancelBody, cancelledRun, runParams, runView } from './model';
import { getRunView } from './service';

export function runRoutes(deps: CancelDeps & { config: Config }) {
  return new Elysia({ name: 'runs', prefix: '/api/chat/runs', tags: ['runs'], normalize: false })
    .get('/:runId', ({ params }) => getRunView(deps.db, params.runId), {
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
    })
    .post(
      '/:runId/cancel',
      async ({ params, body, set }) => {
        const { runId, status } = await cancelRun(deps, params.runId, { reason: body.reason });
        set.status = 202;
        return { runId, status };
      },
      {
        parse: ({ request }) => readOptionalJsonBody(request, deps.config.http.maxBodyBytes),
        params: runParams,
        body: cancelBody,
        response: {
          202: cancelledRun,
          400: errors.invalid,
          401: errors.unauthorized,
          404: errors.notFound,
          409: errors.runFinished,
          413: errors.tooLarge,
          415: errors.mediaType,
          503: errors.unavailable,
        },
        detail: {
          summary: 'Cancel a run',
          description:
            'A queued run (waiting its turn, or in a retry backoff) is cancelled at once: 202 ' +
            '`cancelled`, no model call is made, and its thread moves on. A running run answers ' +
            '202 `cancelling`: its worker, in whichever process, aborts the model call within ' +
            'about a second. Either way a 202 means the run ends `cancelled` (one ' +
            '`agent.run.cancelled`, no reply stored), even if the model finished in the same ' +
            'instant. Cancelling again is safe and answers the same; a completed or failed run ' +
            'is a 409 `run_finished`. The body is optional.',
        },
      },
    );
}
