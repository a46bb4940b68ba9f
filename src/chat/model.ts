import { t } from 'elysia';
import { THREAD_ID_PATTERN } from '../ids';

/** The one error shape, documented per status with what causes it. */
export const errorBody = (description: string, example: { code: string; message: string }) =>
  t.Object(
    {
      error: t.Object({
        code: t.String(),
        message: t.String(),
        details: t.Optional(t.Unknown()),
      }),
    },
    { description, examples: [{ error: example }] },
  );

export const errors = {
  invalid: errorBody(
    'Invalid request: a bad or unknown field, blank or too long content, malformed JSON, a disallowed model (model_not_allowed) or an unknown cursor (invalid_cursor)',
    { code: 'invalid_request', message: 'content must be 1 to 32000 characters after trimming' },
  ),
  unauthorized: errorBody('Missing or wrong API key (when API_KEYS is set)', {
    code: 'unauthorized',
    message: 'an API key is required: Authorization: Bearer <key>',
  }),
  keyReused: errorBody('The Idempotency-Key was already used with a different body', {
    code: 'idempotency_key_reused',
    message: 'this Idempotency-Key was used with a different request body',
  }),
  notFound: errorBody('Unknown id', { code: 'not_found', message: 'run "run_…" not found' }),
  tooLarge: errorBody('Body over HTTP_MAX_BODY_BYTES', {
    code: 'payload_too_large',
    message: 'the body is larger than 1048576 bytes',
  }),
  mediaType: errorBody('Content-Type is not application/json', {
    code: 'unsupported_media_type',
    message: 'the body must be JSON with Content-Type: application/json',
  }),
  unavailable: errorBody('The database is not answering: nothing was read or accepted; retry', {
    code: 'store_unavailable',
    message: 'the database is not answering; try again (an Idempotency-Key makes a retry safe)',
  }),
};

export const postMessageBody = t.Object(
  {
    content: t.String({
      description: 'The message. Trimmed; 1 to CHAT_MAX_MESSAGE_CHARS characters after trimming.',
    }),
    threadId: t.Optional(
      t.Nullable(
        t.String({
          pattern: THREAD_ID_PATTERN,
          description: 'Omit (or null) to start a new thread; an unknown id starts one with it.',
        }),
      ),
    ),
    model: t.Optional(
      t.Nullable(
        t.String({ minLength: 1, maxLength: 200, description: 'Defaults to CHAT_DEFAULT_MODEL.' }),
      ),
    ),
  },
  { additionalProperties: false, examples: [{ content: 'Hello! What can you do?' }] },
);
export type PostMessageBody = typeof postMessageBody.static;

export const acceptedMessage = t.Object({
  threadId: t.String(),
  messageId: t.String(),
  runId: t.String(),
  model: t.String(),
  status: t.Literal('queued'),
});
export type AcceptedMessage = typeof acceptedMessage.static;

export const modelsView = t.Object({
  default: t.String(),
  allowed: t.Nullable(t.Array(t.String()), { description: 'null: any model id is accepted' }),
});

export const threadParams = t.Object({ threadId: t.String() });

export const threadView = t.Object({
  id: t.String(),
  createdAt: t.String({ format: 'date-time' }),
  updatedAt: t.String({ format: 'date-time' }),
  messageCount: t.Integer(),
  summary: t.Nullable(t.String()),
  summaryThroughMessageId: t.Nullable(t.String()),
});

export const messageView = t.Object({
  id: t.String(),
  threadId: t.String(),
  runId: t.String(),
  role: t.UnionEnum(['user', 'assistant']),
  content: t.String(),
  createdAt: t.String({ format: 'date-time' }),
});
export type MessageView = typeof messageView.static;

export const messagesQuery = t.Object(
  {
    limit: t.Optional(t.Numeric({ minimum: 1, maximum: 200, multipleOf: 1, default: 50 })),
    before: t.Optional(t.String({ description: 'A message id: return the messages before it.' })),
  },
  { additionalProperties: false },
);

export const messagesPage = t.Object({
  threadId: t.String(),
  messages: t.Array(messageView),
  hasMore: t.Boolean(),
  nextBefore: t.Nullable(t.String({ description: 'Pass as `before` for the previous page.' })),
});
