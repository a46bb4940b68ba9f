import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';

/**
 * JSON Schema for tool arguments, with ajv: one compiler per registry. Not strict, because MCP
 * servers send schemas with keywords of their own (or of a newer draft) that must not stop a
 * server's tools from being listed; `$schema` is dropped for the same reason.
 */
export function createSchemaCompiler() {
  const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: true });
  addFormats(ajv);
  return {
    /** A validator, or the reason the schema is not one. */
    compile(schema: Record<string, unknown>): ValidateFunction | string {
      const { $schema: _ignored, ...rest } = schema;
      if (rest.type !== 'object') return 'must be a JSON Schema with "type": "object"';
      try {
        return ajv.compile(rest);
      } catch (error) {
        return (error as Error).message;
      }
    },
    /** The validator's own message for what it rejected. */
    describe(validate: ValidateFunction): string {
      return ajv.errorsText(validate.errors, { dataVar: 'arguments' });
    },
  };
}

export type SchemaCompiler = ReturnType<typeof createSchemaCompiler>;
