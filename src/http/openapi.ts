import { type TSchema, t } from 'elysia';

/**
 * How a route says what the OpenAPI document cannot learn from its TypeBox schemas alone. The
 * document is finished in one place (src/docs/openapi-document.ts), which reads these:
 *
 * * a schema with `$id: 'Run'` is a named schema: listed once under `components.schemas` and
 *   referred to by `$ref` wherever it is used, so a generated client gets a `Run` type;
 * * `examples` on a schema are real values: the first is what Swagger UI fills in for "Try it
 *   out", so it must work when executed; `examples({...})` names them for its drop-down;
 * * a response is `application/json` unless its schema is an `eventStream(...)`;
 * * errors are `errorResponse(...codes)` (src/http/error-schemas.ts): the codes are an enum.
 */

/** The schema option that carries the names of `examples({...})`, in their order. */
export const EXAMPLE_NAMES = 'x-example-names';

/**
 * Named examples, for a schema's options: `t.Object({...}, {...examples({'A first message':
 * {content: 'Hello!'}})})`. Swagger UI offers them by name and fills in the first.
 */
export function examples<T>(byName: Record<string, T>): {
  examples: T[];
  [EXAMPLE_NAMES]: string[];
} {
  return { examples: Object.values(byName), [EXAMPLE_NAMES]: Object.keys(byName) };
}

/**
 * A Server-Sent Events response: `text/event-stream`, each event's `data` one of `frames` (a
 * named schema, or a union of named ones). For `response: { 200: eventStream(frames, '...') }`;
 * the handler returns the streaming `Response` itself, which Elysia does not validate.
 */
export function eventStream(frames: TSchema, description: string) {
  return t.String({ description, contentMediaType: 'text/event-stream', contentSchema: frames });
}
