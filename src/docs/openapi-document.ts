import { mapProperties, toOpenAPIPath } from '@elysiajs/swagger/utils';
import { EXAMPLE_NAMES } from '../http/openapi';

/**
 * Finishes the document @elysiajs/swagger builds, in this one place, where the plugin cannot be
 * told better by the routes (src/http/openapi.ts says what the routes declare):
 *
 * * it writes JSON Schema as TypeBox has it (2020-12: `const`, `type: "null"`, numeric
 *   `exclusiveMinimum`, `examples`, `patternProperties`), which OpenAPI 3.0.3 does not have, and
 *   it shows Elysia's `t.Integer`/`t.Numeric` as "a numeric string or a number";
 * * it offers every body as JSON, multipart and plain text, when a route with its own body
 *   reader takes JSON only, and it moves a response schema's `examples` and options onto the
 *   response object, where Swagger UI ignores them (and a generated client never sees them);
 * * it lists no named schemas unless they are Elysia models.
 *
 * So each operation's request body and responses are made again from its route's own schemas,
 * every schema is written as OpenAPI 3.0.3, and each schema with an `$id` goes to
 * `components.schemas` under that name, referred to by `$ref`.
 */

type Json = Record<string, unknown>;

export interface DocumentedRoute {
  method: string;
  path: string;
  hooks: {
    body?: unknown;
    response?: unknown;
    headers?: unknown;
    params?: unknown;
    query?: unknown;
    detail?: { responses?: unknown; parameters?: unknown };
  };
}

/** OpenAPI 3.0.3 Schema Object keywords that need no conversion. */
const KEPT = new Set([
  'title',
  'multipleOf',
  'maximum',
  'minimum',
  'maxLength',
  'minLength',
  'pattern',
  'maxItems',
  'minItems',
  'uniqueItems',
  'maxProperties',
  'minProperties',
  'required',
  'enum',
  'type',
  'description',
  'format',
  'default',
  'nullable',
  'readOnly',
  'writeOnly',
  'deprecated',
  'example',
]);

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const isObject = (value: unknown): value is Json =>
  typeof value === 'object' && value !== null && !Array.isArray(value);
const isNull = (schema: unknown) => isObject(schema) && schema.type === 'null';
const Kind = Symbol.for('TypeBox.Kind');

/**
 * JSON, as the document is served: symbols (TypeBox's Kind) and functions (transforms) go. So
 * does the `default` Elysia's t.UnionEnum gives itself (its first value, for its own error
 * messages): a field that has no default must not be shown one.
 */
const plain = <T>(value: T): T =>
  JSON.parse(
    JSON.stringify(value, (_key, node) => {
      if (!isObject(node) || (node as { [Kind]?: unknown })[Kind] !== 'UnionEnum') return node;
      const { default: given, ...rest } = node;
      return Array.isArray(node.enum) && given === node.enum[0] ? rest : node;
    }),
  );

export function finishDocument(raw: Json, routes: readonly DocumentedRoute[]): Json {
  const doc = plain(raw);
  const schemas = new NamedSchemas();
  const byOperation = new Map(
    routes.map((route) => [`${route.method.toLowerCase()} ${toOpenAPIPath(route.path)}`, route]),
  );
  for (const [path, item] of Object.entries((doc.paths ?? {}) as Record<string, Json>)) {
    for (const [method, operation] of Object.entries(item as Record<string, Json>)) {
      const where = `${method.toUpperCase()} ${path}`;
      const route = byOperation.get(`${method} ${path}`);
      if (route) rebuildOperation(operation, plain(route.hooks), schemas, path, where);
      if (Array.isArray(operation.parameters)) {
        operation.parameters = operation.parameters.map((parameter: Json) =>
          convertParameter(parameter, schemas, where),
        );
      }
    }
  }
  const components = (doc.components ?? {}) as Json;
  const own = (components.schemas ?? {}) as Record<string, Json>;
  for (const [name, schema] of Object.entries(own)) schemas.define(name, schema, 'components');
  doc.components = { ...components, schemas: schemas.all() };
  return doc;
}

function rebuildOperation(
  operation: Json,
  hooks: DocumentedRoute['hooks'],
  schemas: NamedSchemas,
  path: string,
  where: string,
) {
  // The route's own parameters and those its `detail` adds: the plugin keeps only the latter.
  const declared = (['header', 'path', 'query'] as const).flatMap((place) => {
    const schema = hooks[place === 'header' ? 'headers' : place === 'path' ? 'params' : 'query'];
    // biome-ignore lint/suspicious/noExplicitAny: the plugin types these as TypeBox schemas
    return isObject(schema) ? mapProperties(place, schema as any, {}) : [];
  });
  const added = Array.isArray(hooks.detail?.parameters) ? hooks.detail.parameters : [];
  const undeclared = [...path.matchAll(/\{([^}]+)\}/g)]
    .map((match) => match[1])
    .filter((name) => !declared.some((p) => p.in === 'path' && p.name === name))
    .map((name) => ({ in: 'path', name, required: true, schema: { type: 'string' } }));
  const parameters = [...undeclared, ...declared, ...added];
  if (parameters.length > 0) operation.parameters = plain(parameters);
  else delete operation.parameters;

  if (isObject(hooks.body)) {
    operation.requestBody = {
      required: true,
      content: { 'application/json': mediaType(hooks.body, schemas, where) },
    };
  }
  if (hooks.response === undefined) return;
  const byStatus = (
    isObject(hooks.response) && 'type' in hooks.response ? { 200: hooks.response } : hooks.response
  ) as Record<string, Json>;
  const given = (isObject(hooks.detail?.responses) ? hooks.detail.responses : {}) as Record<
    string,
    Json
  >;
  const responses: Json = {};
  for (const [status, schema] of Object.entries(byStatus)) {
    const at = `${where} ${status}`;
    const description = given[status]?.description ?? schema.description;
    if (typeof description !== 'string') {
      throw new Error(`${at}: the response schema (or detail.responses) needs a description`);
    }
    if (schema.type === 'void' || schema.type === 'undefined') {
      responses[status] = { description };
      continue;
    }
    const media = typeof schema.contentMediaType === 'string' ? schema.contentMediaType : undefined;
    // An event stream documents its frames; a JSON body is the schema itself, whose own
    // description is the response's (said once).
    const body = media
      ? (schema.contentSchema as Json)
      : typeof schema.$id === 'string'
        ? schema
        : omit(schema, 'description');
    responses[status] = {
      description,
      content: {
        [media ?? 'application/json']: schemas.answering(() => mediaType(body, schemas, at)),
      },
    };
  }
  operation.responses = responses;
}

/** A Media Type Object: the schema, and its examples where Swagger UI shows them. */
function mediaType(schema: Json, schemas: NamedSchemas, where: string): Json {
  const media: Json = { schema: schemas.convert(schema, where) };
  const values = schema.examples;
  if (!Array.isArray(values) || values.length === 0) return media;
  const names = schema[EXAMPLE_NAMES] as string[] | undefined;
  if (values.length === 1 && !names) {
    media.example = values[0];
    return media;
  }
  media.examples = Object.fromEntries(
    values.map((value, i) => {
      const name = names?.[i] ?? `example ${i + 1}`;
      const key = name
        .toLowerCase()
        .replace(/[^a-z0-9._-]+/g, '-')
        .replace(/^-+|-+$/g, '');
      return [key, { summary: name, value }];
    }),
  );
  return media;
}

function convertParameter(parameter: Json, schemas: NamedSchemas, where: string): Json {
  const { examples, schema, ...rest } = parameter;
  const out: Json = { ...rest };
  if (isObject(schema)) out.schema = schemas.convert(schema, `${where} ${String(rest.name)}`);
  if (Array.isArray(examples) && examples.length > 0) out.example = examples[0];
  return out;
}

/** The document's named schemas, and the one conversion of JSON Schema to OpenAPI 3.0.3. */
class NamedSchemas {
  private readonly defined = new Map<string, { schema: Json }>();
  private inResponse = false;

  /**
   * Converts what a response sends. There `additionalProperties: false` is Elysia's, not the
   * route's: it writes it onto the schema objects themselves when it builds a response's
   * validator (at the first request), so the document leaves it out, and stays the same before
   * and after. (Bodies and queries declare theirs, and keep them.)
   */
  answering<T>(convert: () => T): T {
    this.inResponse = true;
    try {
      return convert();
    } finally {
      this.inResponse = false;
    }
  }

  all(): Record<string, Json> {
    const names = [...this.defined.keys()].sort();
    return Object.fromEntries(names.map((name) => [name, this.defined.get(name)?.schema ?? {}]));
  }

  define(name: string, schema: Json, where: string) {
    const known = this.defined.get(name);
    if (known && Object.keys(known.schema).length === 0) return; // it refers to itself
    const entry = { schema: {} };
    if (!known) this.defined.set(name, entry);
    const converted = this.convert(schema, `components.schemas.${name}`, true);
    if (known && JSON.stringify(known.schema) !== JSON.stringify(converted)) {
      throw new Error(`${where}: two different schemas are ${name}`);
    }
    entry.schema = converted;
  }

  convert(schema: Json, where: string, definition = false): Json {
    if (!definition && typeof schema.$id === 'string') {
      this.define(schema.$id, schema, where);
      return ref(schema.$id);
    }
    const { $id, examples, [EXAMPLE_NAMES]: _names, ...rest } = schema;
    if (Array.isArray(examples) && examples.length > 0 && !('example' in rest)) {
      rest.example = examples[0];
    }
    const anyOf = rest.anyOf;
    if (Array.isArray(anyOf)) {
      const outer = omit(rest, 'anyOf');
      // Elysia's t.Integer and t.Numeric: a numeric string or the number; the number is meant.
      const number = anyOf.find(
        (branch) => isObject(branch) && /^(integer|number)$/.test(String(branch.type)),
      );
      if (anyOf.length === 2 && number && anyOf.some(isNumericString)) {
        return this.convert({ ...number, ...outer }, where);
      }
      // t.Nullable(x): x, or null.
      if (anyOf.some(isNull))
        return this.nullable(
          anyOf.filter((b) => !isNull(b)),
          outer,
          where,
        );
      // A union of literals of one type: an enum.
      const literals = anyOf.every((b) => isObject(b) && 'const' in b);
      const types = new Set(anyOf.map((b) => (isObject(b) ? b.type : undefined)));
      if (literals && types.size === 1) {
        return this.keywords(
          { type: anyOf[0].type, enum: anyOf.map((b) => b.const), ...omit(outer, 'nullable') },
          where,
        );
      }
    }
    return this.keywords(rest, where);
  }

  private nullable(branches: unknown[], outer: Json, where: string): Json {
    if (branches.length !== 1 || !isObject(branches[0])) {
      throw new Error(`${where}: a nullable union of several schemas has no OpenAPI 3.0 form here`);
    }
    const inner = this.convert(branches[0], where);
    const rest = this.keywords(omit(outer, 'nullable'), where);
    if (typeof inner.$ref === 'string') {
      // `nullable` needs a `type` beside it; a `$ref` takes none, so it goes in an allOf.
      const type = this.defined.get(String(branches[0].$id))?.schema.type ?? 'object';
      return { type, allOf: [inner], ...rest, nullable: true };
    }
    return { ...inner, ...rest, nullable: true };
  }

  /** Keyword by keyword: subschemas converted, 3.1-only forms rewritten, anything else refused. */
  private keywords(schema: Json, where: string): Json {
    const out: Json = {};
    for (const [key, value] of Object.entries(schema)) {
      if (KEPT.has(key) || key.startsWith('x-')) out[key] = value;
      else if (key === 'const') out.enum = [value];
      else if (key === 'properties' && isObject(value)) {
        out.properties = Object.fromEntries(
          Object.entries(value).map(([name, sub]) => [
            name,
            this.convert(sub as Json, `${where}.${name}`),
          ]),
        );
      } else if ((key === 'items' || key === 'not') && isObject(value)) {
        out[key] = this.convert(value, `${where}[]`);
      } else if ((key === 'anyOf' || key === 'allOf' || key === 'oneOf') && Array.isArray(value)) {
        out[key] = value.map((sub: Json) => this.convert(sub, where));
      } else if (key === 'additionalProperties' && value === false && this.inResponse) {
        // Elysia's (see `answering`)
      } else if (key === 'additionalProperties') {
        out.additionalProperties = isObject(value) ? this.convert(value, `${where}{}`) : value;
      } else if (key === 'patternProperties' && isObject(value)) {
        // t.Record(t.String(), x): any key, each value an x.
        const values = Object.values(value) as Json[];
        if (values.length !== 1 || !values[0]) {
          throw new Error(`${where}: OpenAPI 3.0 has no patternProperties`);
        }
        out.additionalProperties = this.convert(values[0], `${where}{}`);
      } else if (
        (key === 'exclusiveMinimum' || key === 'exclusiveMaximum') &&
        typeof value === 'number'
      ) {
        out[key === 'exclusiveMinimum' ? 'minimum' : 'maximum'] = value;
        out[key] = true;
      } else {
        throw new Error(`${where}: OpenAPI 3.0 has no "${key}" in a schema`);
      }
    }
    if (out.type === 'null') throw new Error(`${where}: OpenAPI 3.0 has no null type`);
    return out;
  }
}

function isNumericString(schema: unknown) {
  return (
    isObject(schema) &&
    schema.type === 'string' &&
    /^(integer|numeric)$/.test(String(schema.format))
  );
}

function omit(schema: Json, ...keys: string[]): Json {
  return Object.fromEntries(Object.entries(schema).filter(([key]) => !keys.includes(key)));
}
