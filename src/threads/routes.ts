import { Elysia, t } from 'elysia';
import { notFound } from '../errors';
import { errorResponse, errors } from '../http/error-schemas';
import { readJsonBody, readOptionalJsonBody } from '../http/json-body';
import {
  createThreadBody,
  MAX_METADATA_KEYS,
  MAX_METADATA_VALUE_CHARS,
  MAX_TITLE_CHARS,
  METADATA_KEY_PATTERN,
  patchThreadBody,
  THREADS_PAGE,
  threadParams,
  threadsPage,
  threadsQuery,
  threadView,
} from './model';
import {
  createThread,
  deleteThread,
  getThreadView,
  listThreads,
  type ThreadDeps,
  updateThread,
} from './service';

const badMetadata = errorResponse(
  ['invalid_request'],
  `Invalid request: a bad or unknown field, malformed JSON, more than ${MAX_METADATA_KEYS} metadata keys, a key not matching ${METADATA_KEY_PATTERN}, a value over ${MAX_METADATA_VALUE_CHARS} characters or with U+0000 or an unpaired surrogate`,
);

const metadataRules =
  `Metadata: at most ${MAX_METADATA_KEYS} keys matching \`${METADATA_KEY_PATTERN}\`, string ` +
  `values of at most ${MAX_METADATA_VALUE_CHARS} characters, no U+0000 and no unpaired ` +
  'surrogate; anything else is a 400 invalid_request and nothing is stored.';

/**
 * The thread as a resource: create, list, read, patch, delete. Its messages are chat's
 * (`chatRoutes`), its runs the runs domain's (`threadRunRoutes`), its feed the feeds'.
 */
export function threadRoutes(deps: ThreadDeps & { config: { http: { maxBodyBytes: number } } }) {
  const { maxBodyBytes } = deps.config.http;
  return new Elysia({
    name: 'threads',
    prefix: '/api/chat/threads',
    tags: ['threads'],
    normalize: false,
  })
    .post(
      '',
      async ({ body, set }) => {
        const view = await createThread(deps.db, body);
        set.status = 201;
        return view;
      },
      {
        parse: ({ request }) => readOptionalJsonBody(request, maxBodyBytes),
        body: createThreadBody,
        response: {
          201: threadView,
          400: badMetadata,
          401: errors.unauthorized,
          409: errorResponse(['thread_exists']),
          413: errors.tooLarge,
          415: errors.mediaType,
          503: errors.unavailable,
        },
        detail: {
          summary: 'Create a thread',
          description:
            'An empty thread, with metadata of your own to find it by. Without `threadId` the ' +
            'server makes one (`thr_` + 24 lowercase alphanumerics); a given one must match ' +
            '`^[A-Za-z0-9_-]{1,64}$`, and one that exists is a 409 thread_exists. The body is ' +
            `optional. ${metadataRules} Post messages to it with POST /api/chat/messages.`,
        },
      },
    )
    .get(
      '',
      ({ query, request }) => listThreads(deps.db, query, new URL(request.url).searchParams),
      {
        query: threadsQuery,
        response: {
          200: threadsPage,
          400: errorResponse(
            ['invalid_request', 'invalid_cursor'],
            '`cursor` is not a nextCursor of this list (invalid_cursor), or `limit` is not an integer from 1 to 100, a `metadata.<key>` is not a metadata key, or another parameter is given (invalid_request)',
          ),
          401: errors.unauthorized,
          503: errors.unavailable,
        },
        detail: {
          summary: 'List threads, most recently updated first',
          description:
            `\`limit\` threads a page (default ${THREADS_PAGE.default}, at most ` +
            `${THREADS_PAGE.max}); follow \`nextCursor\` (null on the last page) as \`cursor\`. ` +
            'Filter by metadata with `?metadata.<key>=<value>`, as many as you like: a thread ' +
            'is listed when its metadata has every one. Paging is stable: a thread is on one ' +
            'page only, unless it is updated meanwhile (it moves to the front).',
          parameters: [
            {
              name: 'metadata.<key>',
              in: 'query',
              required: false,
              description:
                'e.g. `metadata.customer=cus_42`: only threads whose metadata has that key ' +
                'with that value. Repeat with other keys; all must match.',
              schema: { type: 'string', maxLength: MAX_METADATA_VALUE_CHARS },
            },
          ],
        },
      },
    )
    .get('/:threadId', ({ params }) => getThreadView(deps.db, params.threadId), {
      params: threadParams,
      response: {
        200: threadView,
        401: errors.unauthorized,
        404: errors.notFound,
        503: errors.unavailable,
      },
      detail: {
        summary: 'A thread',
        description:
          'Timestamps, message count, title, metadata, its current summary, whether it is ' +
          'busy (a run not finished) and its newest run.',
      },
    })
    .patch('/:threadId', ({ params, body }) => updateThread(deps.db, params.threadId, body), {
      parse: ({ request }) => readJsonBody(request, maxBodyBytes),
      params: threadParams,
      body: patchThreadBody,
      response: {
        200: threadView,
        400: badMetadata,
        401: errors.unauthorized,
        404: errors.notFound,
        413: errors.tooLarge,
        415: errors.mediaType,
        503: errors.unavailable,
      },
      detail: {
        summary: "Change a thread's metadata or title",
        description:
          '`metadata` replaces the old metadata whole (`{}` clears it); `title` (trimmed, 1 ' +
          `to ${MAX_TITLE_CHARS} characters) is a user's title, which the title model never ` +
          'overwrites. At least one of the two; `updatedAt` moves. ' +
          `${metadataRules} A bad body changes nothing.`,
      },
    })
    .delete(
      '/:threadId',
      async ({ params, set }) => {
        const { threadId } = params;
        if (!(await deleteThread(deps, threadId))) throw notFound('thread', threadId);
        set.status = 204;
      },
      {
        params: threadParams,
        response: {
          204: t.Void({ description: 'Deleted' }),
          401: errors.unauthorized,
          404: errors.notFound,
          503: errors.unavailable,
        },
        detail: {
          summary: 'Delete a thread and everything in it',
          description:
            'Its unfinished runs are cancelled first (each announced by agent.run.cancelled ' +
            'with `by: "thread_deleted"`; a running one stops within about a second), then the ' +
            'thread, its messages, runs, steps, summary, metadata and idempotency keys are ' +
            'deleted in one transaction, agent.thread.deleted is announced with the cancelled ' +
            "run ids, and the runs' streams and jobs are removed. Afterwards the thread is a " +
            '404, and a message with its id starts a new, empty thread.',
        },
      },
    );
}
