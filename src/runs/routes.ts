import { Elysia } from 'elysia';
import type { Store } from '../../db/store';
import type { Config } from '../config';
import { errorResponse, errors } from '../http/error-schemas';
import { readJsonBody, readOptionalJsonBody } from '../http/json-body';
import { type AnswerDeps, answerAction } from './actions';
import { type CancelDeps, cancelRun } from './cancel';
import {
  answeredRun,
  approvalsBody,
  cancelBody,
  cancelledRun,
  runParams,
  runQuery,
  runView,
  threadRunsPage,
  threadRunsParams,
  threadRunsQuery,
  toolOutputsBody,
} from './model';
import { getRunView, listThreadRuns } from './service';
import { type RunWaitDeps, waitForRunView } from './wait';

const badWait = errorResponse(
  ['invalid_request'],
  '`wait` is not an integer from 1 to 60 (0, 61, 1.5, abc, empty)',
);

const answerResponses = {
  202: answeredRun,
  400: errorResponse(
    ['invalid_request'],
    'Invalid answer: a bad or unknown field, malformed JSON, or tool call ids that are not each pending call exactly once (details: missing, unknown, repeated)',
  ),
  401: errors.unauthorized,
  404: errors.notFound,
  409: errorResponse(['run_not_waiting']),
  413: errors.tooLarge,
  415: errors.mediaType,
  503: errors.unavailable,
};

export function runRoutes(deps: RunWaitDeps & CancelDeps & AnswerDeps & { config: Config }) {
  return new Elysia({ name: 'runs', prefix: '/api/chat/runs', tags: ['runs'], normalize: false })
    .get(
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
            '(completed, failed or cancelled; a cancelling run is waited on), waits for its ' +
            'client (`requires_action`: answer its `pendingAction`), or the N seconds are up, ' +
            'then answers the same view: check `status` to know which. A run already terminal ' +
            'or waiting answers at once. Poll again with wait to keep waiting.',
        },
      },
    )
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
          409: errorResponse(['run_finished']),
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
    )
    .post(
      '/:runId/tool-outputs',
      async ({ params, body, set }) => {
        const { runId, status } = await answerAction(deps, params.runId, {
          kind: 'tool_outputs',
          outputs: body.outputs,
        });
        set.status = 202;
        return { runId, status };
      },
      {
        parse: ({ request }) => readJsonBody(request, deps.config.http.maxBodyBytes),
        params: runParams,
        body: toolOutputsBody,
        response: answerResponses,
        detail: {
          summary: "Answer a run's client tool calls",
          description:
            'For a run in `requires_action` whose `pendingAction.kind` is `tool_outputs`: one ' +
            'output for every call in `pendingAction.toolCalls`, each exactly once (a missing, ' +
            'unknown or repeated `toolCallId` is a 400 and changes nothing). Each output is cut ' +
            'to TOOL_MAX_OUTPUT_CHARS characters, stored as a `tool` message of the thread and ' +
            'announced as agent.run.tool_result; the run is queued again (202) and goes on ' +
            'from there, spending no attempt. A run not waiting for tool outputs is a 409 ' +
            '`run_not_waiting` with its `status`.',
        },
      },
    )
    .post(
      '/:runId/approvals',
      async ({ params, body, set }) => {
        const { runId, status } = await answerAction(deps, params.runId, {
          kind: 'approval',
          decisions: body.decisions,
        });
        set.status = 202;
        return { runId, status };
      },
      {
        parse: ({ request }) => readJsonBody(request, deps.config.http.maxBodyBytes),
        params: runParams,
        body: approvalsBody,
        response: answerResponses,
        detail: {
          summary: "Approve or deny a run's server tool calls",
          description:
            'For a run in `requires_action` whose `pendingAction.kind` is `approval` (server ' +
            'tools configured with `approval: true`): one decision for every call in ' +
            '`pendingAction.toolCalls`, each exactly once (a missing, unknown or repeated ' +
            '`toolCallId` is a 400 and changes nothing). An approved call is made when the run ' +
            'goes on; a denied one is not made, and the model is given "denied by the user" ' +
            '(and ": <reason>" when given) as its error result. The run is queued again (202), ' +
            'spending no attempt. A run not waiting for approvals is a 409 `run_not_waiting`.',
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
        400: errorResponse(
          ['invalid_request', 'invalid_cursor'],
          '`limit` is not an integer from 1 to 200 (invalid_request), or `before` is not a run of this thread (invalid_cursor)',
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
