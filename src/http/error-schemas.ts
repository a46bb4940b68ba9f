import { t } from 'elysia';

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
  toolNotFound: errorBody(
    'A tool named in `tools` is not a server tool (see GET /api/chat/tools)',
    {
      code: 'tool_not_found',
      message: 'no tool named "weather"',
    },
  ),
  messageTooLong: errorBody(
    "The message alone is more tokens than the model's prompt can hold (its context window less CHAT_MAX_OUTPUT_TOKENS, the system prompt and a 5 % margin); details: {tokens, budget}",
    {
      code: 'message_too_long',
      message:
        'the message is 130000 tokens; model "gpt-4o-mini" takes at most 117504 in one message',
    },
  ),
  unauthorized: errorBody('Missing or wrong API key (when API_KEYS is set)', {
    code: 'unauthorized',
    message: 'an API key is required: Authorization: Bearer <key>',
  }),
  keyReused: errorBody('The Idempotency-Key was already used with a different body', {
    code: 'idempotency_key_reused',
    message: 'this Idempotency-Key was used with a different request body',
  }),
  runFinished: errorBody('The run has completed or failed already: nothing to cancel', {
    code: 'run_finished',
    message: 'run "run_…" has completed already',
  }),
  runNotWaiting: errorBody(
    'The run is not waiting for this answer: it is not `requires_action`, or it waits for the other kind (details.status)',
    {
      code: 'run_not_waiting',
      message: 'run "run_…" is not waiting for tool outputs: it is running',
    },
  ),
  invalidAnswer: errorBody(
    'Invalid answer: a bad or unknown field, malformed JSON, or tool call ids that are not each pending call exactly once (details: missing, unknown, repeated)',
    {
      code: 'invalid_request',
      message: 'the answer must name every pending tool call exactly once: missing "call_9d3m4"',
    },
  ),
  threadExists: errorBody('A thread with this id exists already: nothing was changed', {
    code: 'thread_exists',
    message: 'thread "support-4711" exists already',
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
