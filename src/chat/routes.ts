import { Elysia } from 'elysia';
import { errorResponse, errors } from '../http/error-schemas';
import { readJsonBody } from '../http/json-body';
import {
  acceptedMessage,
  idempotencyKeyHeader,
  messagesPage,
  messagesQuery,
  modelsView,
  postMessageBody,
  threadParams,
} from './model';
import { acceptMessage, type ChatDeps, listMessages, listModels } from './service';

export function chatRoutes(deps: ChatDeps) {
  return new Elysia({ name: 'chat', prefix: '/api/chat', tags: ['chat'], normalize: false })
    .post(
      '/messages',
      async ({ body, set, request }) => {
        const accepted = await acceptMessage(deps, body, {
          idempotencyKey: request.headers.get('idempotency-key'),
        });
        set.status = 202;
        return accepted;
      },
      {
        parse: ({ request }) => readJsonBody(request, deps.config.http.maxBodyBytes),
        body: postMessageBody,
        response: {
          202: acceptedMessage,
          400: errorResponse([
            'invalid_request',
            'model_not_allowed',
            'tool_not_found',
            'message_too_long',
            'webhook_not_allowed',
          ]),
          401: errors.unauthorized,
          409: errorResponse(['idempotency_key_reused', 'thread_busy']),
          413: errors.tooLarge,
          415: errors.mediaType,
          503: errors.unavailable,
        },
        detail: {
          summary: 'Post a chat message',
          description:
            'Stores the message, records a run and queues it. 202 means the run will happen, ' +
            'even if Redis is down at that moment. Follow it with GET /api/chat/runs/{runId}. ' +
            'Send an Idempotency-Key to retry safely: the same key and body return the first ' +
            'response again and create nothing. `tools` names the server tools the run may ' +
            'call (default CHAT_DEFAULT_TOOLS); an unknown one is a 400 tool_not_found. ' +
            '`clientTools` declares tools the client answers itself: when the model calls one ' +
            'the run pauses in `requires_action` until POST /api/chat/runs/{runId}/tool-outputs; ' +
            'a name of a server tool, a name twice or parameters that are not a JSON Schema ' +
            "object are a 400 invalid_request. A message of more tokens than the model's prompt can " +
            'hold is a 400 message_too_long with `details: {tokens, budget}`; nothing is stored.',
          parameters: [idempotencyKeyHeader],
        },
      },
    )
    .get('/models', () => listModels(deps.config), {
      response: { 200: modelsView, 401: errors.unauthorized },
      detail: { summary: 'The default model and the allow list' },
    })
    .get(
      '/threads/:threadId/messages',
      ({ params, query }) => listMessages(deps.db, params.threadId, query),
      {
        params: threadParams,
        query: messagesQuery,
        response: {
          200: messagesPage,
          400: errorResponse(['invalid_request', 'invalid_cursor']),
          401: errors.unauthorized,
          404: errors.notFound,
          503: errors.unavailable,
        },
        detail: {
          summary: "A thread's messages, oldest first",
          description:
            'Conversation order: each reply right after the message it answers. Without `before` ' +
            'the newest `limit` messages; page back with `before=nextBefore`.',
        },
      },
    );
}
