import type { Static, TSchema } from '@sinclair/typebox';
import { TypeCompiler } from '@sinclair/typebox/compiler';
import { AppError } from '../errors';

/**
 * A checker for a body that does not come through Elysia (a producer's command on the stream),
 * made from the very schema the HTTP route uses: it returns the body, or throws the 400
 * `invalid_request` an HTTP client would get for it.
 */
export function bodyChecker<T extends TSchema>(schema: T): (value: unknown) => Static<T> {
  const check = TypeCompiler.Compile(schema);
  return (value) => {
    if (check.Check(value)) return value;
    const issues = [...check.Errors(value)].map((e) => ({ path: e.path, message: e.message }));
    throw new AppError(
      'invalid_request',
      `invalid body: ${issues[0]?.path || '(root)'} ${issues[0]?.message ?? ''}`.trim(),
      issues,
    );
  };
}
