/** Reading the OpenAPI document in tests: named schemas are `$ref`s into components.schemas. */

// biome-ignore lint/suspicious/noExplicitAny: tests read the document freely
type Doc = any;

/** `value` with every `$ref` replaced by the schema it names, all the way down. */
export function resolveRefs(doc: Doc, value: unknown): Doc {
  if (Array.isArray(value)) return value.map((item) => resolveRefs(doc, item));
  if (typeof value !== 'object' || value === null) return value;
  const ref = (value as { $ref?: unknown }).$ref;
  if (typeof ref === 'string') {
    const name = ref.replace('#/components/schemas/', '');
    return resolveRefs(doc, doc.components.schemas[name]);
  }
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, resolveRefs(doc, item)]),
  );
}

/** Every operation of the document, with where it is. */
export function operationsOf(doc: Doc): { where: string; operation: Doc }[] {
  return Object.entries(doc.paths as Record<string, Record<string, Doc>>).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({
      where: `${method.toUpperCase()} ${path}`,
      operation,
    })),
  );
}
