import { t } from 'elysia';
import { ERROR_STATUS, type ErrorCode } from '../errors';
import { examples } from './openapi';

/** What each error code means, and a message it comes with: the document's examples. */
const ERROR_DOCS: Record<ErrorCode, { description: string; message: string }> = {
  invalid_request: {
    description: 'a bad or unknown field, malformed JSON, or a value out of range',
    message: 'content must be 1 to 32000 characters after trimming',
  },
  invalid_cursor: {
    description: 'the cursor (`before`, `cursor`) is not one this list gave',
    message: '"run_…" is not a run of this thread',
  },
  model_not_allowed: {
    description: 'the model is not in CHAT_ALLOWED_MODELS; details: {allowed}',
    message: 'model "gpt-5" is not allowed',
  },
  tool_not_found: {
    description: 'a name in `tools` is not a server tool (GET /api/chat/tools); details: {name}',
    message: 'no tool named "weather"',
  },
  message_too_long: {
    description:
      "the message alone is more tokens than the model's prompt can hold (its context window " +
      'less CHAT_MAX_OUTPUT_TOKENS, the system prompt and a 5 % margin); details: {tokens, budget}',
    message:
      'the message is 130000 tokens; model "gpt-4o-mini" takes at most 117504 in one message',
  },
  webhook_not_allowed: {
    description:
      '`webhook.url` matches no prefix of WEBHOOK_ALLOWED_URLS (or that is empty): nothing was stored',
    message: 'webhook.url matches no prefix of WEBHOOK_ALLOWED_URLS',
  },
  unauthorized: {
    description: 'a missing or wrong API key (when API_KEYS is set)',
    message: 'an API key is required: Authorization: Bearer <key>',
  },
  not_found: { description: 'no such id', message: 'run "run_…" not found' },
  idempotency_key_reused: {
    description: 'the Idempotency-Key was used before with a different body',
    message: 'this Idempotency-Key was used with a different request body',
  },
  run_finished: {
    description: 'the run has completed or failed already; details: {status}',
    message: 'run "run_…" has completed already',
  },
  thread_busy: {
    description: 'multitask `reject` and the thread has an unfinished run; details: {runId}',
    message: 'thread "thr_…" has a run that has not finished',
  },
  thread_exists: {
    description: 'a thread with this id exists already; nothing was changed',
    message: 'thread "support-4711" exists already',
  },
  run_not_waiting: {
    description:
      'the run is not `requires_action`, or it waits for the other kind of answer; details: {status}',
    message: 'run "run_…" is not waiting for tool outputs: it is running',
  },
  delivery_in_flight: {
    description: 'a sender is attempting this delivery right now; details: {status, attempts}',
    message: 'delivery "whd_…" is being attempted right now; ask again once it has ended',
  },
  payload_too_large: {
    description: 'the body is over HTTP_MAX_BODY_BYTES',
    message: 'the body is larger than 1048576 bytes',
  },
  unsupported_media_type: {
    description: 'the Content-Type is not application/json',
    message: 'the body must be JSON with Content-Type: application/json',
  },
  internal_error: { description: 'a bug: it is logged', message: 'internal error' },
  store_unavailable: {
    description: 'the database is not answering: nothing was read or accepted; retry',
    message: 'the database is not answering; try again (an Idempotency-Key makes a retry safe)',
  },
};

const ERROR_CODES = Object.keys(ERROR_STATUS) as ErrorCode[];

/** An error's fields but its code. */
const errorFields = {
  message: t.String({ description: 'For a person; may change.' }),
  details: t.Optional(t.Unknown({ description: 'Some codes say more here.' })),
};

const codeOf = (codes: readonly ErrorCode[]) =>
  t.Union(
    codes.map((code) => t.Literal(code)),
    { description: 'Stable: branch on it, not on the message.' },
  );

/** The one error shape, named `Error` in the document. */
export const apiError = t.Object(
  { error: t.Object({ code: codeOf(ERROR_CODES), ...errorFields }) },
  { $id: 'Error', description: 'Every error answer: `{error: {code, message, details?}}`.' },
);

/**
 * An error response of one status: the `Error` shape with `code` narrowed to these codes, one
 * example each. The description lists what each code means, unless the route says it better.
 * `response: { 409: errorResponse(['idempotency_key_reused', 'thread_busy']) }`.
 */
export function errorResponse(codes: readonly [ErrorCode, ...ErrorCode[]], description?: string) {
  return t.Intersect(
    // Every field again beside the narrowed code: a linter holds each part of an allOf to the
    // examples on its own.
    [apiError, t.Object({ error: t.Object({ code: codeOf(codes), ...errorFields }) })],
    {
      description:
        description ??
        codes.map((code) => `\`${code}\`: ${ERROR_DOCS[code].description}`).join('; '),
      ...examples(
        Object.fromEntries(
          codes.map((code) => [code, { error: { code, message: ERROR_DOCS[code].message } }]),
        ),
      ),
    },
  );
}

/** The error responses most routes share. */
export const errors = {
  invalid: errorResponse(['invalid_request']),
  unauthorized: errorResponse(['unauthorized']),
  notFound: errorResponse(['not_found']),
  tooLarge: errorResponse(['payload_too_large']),
  mediaType: errorResponse(['unsupported_media_type']),
  unavailable: errorResponse(['store_unavailable']),
};
