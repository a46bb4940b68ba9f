/**
 * Every error a client can see. Services throw `AppError`; the app's single `onError` maps its
 * code to a status here and renders `{ error: { code, message, details? } }`.
 */
export const ERROR_STATUS = {
  invalid_request: 400,
  invalid_cursor: 400,
  model_not_allowed: 400,
  tool_not_found: 400,
  message_too_long: 400,
  webhook_not_allowed: 400,
  unauthorized: 401,
  not_found: 404,
  idempotency_key_reused: 409,
  run_finished: 409,
  thread_busy: 409,
  thread_exists: 409,
  run_not_waiting: 409,
  delivery_in_flight: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  internal_error: 500,
  store_unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'AppError';
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }

  toBody() {
    return {
      error: {
        code: this.code,
        message: this.message,
        ...(this.details === undefined ? {} : { details: this.details }),
      },
    };
  }
}

/** The one 404 of every domain: an id that names nothing (thread, run). */
export function notFound(what: string, id: string): AppError {
  return new AppError('not_found', `${what} "${id}" not found`);
}
