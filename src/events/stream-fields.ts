/** A stream entry's fields, as XRANGE, XREAD and XREADGROUP return them: a flat name/value list. */
export type Fields = Record<string, string>;

export function toFields(raw: string[]): Fields {
  const fields: Fields = {};
  for (let i = 0; i < raw.length; i += 2) fields[raw[i] as string] = raw[i + 1] as string;
  return fields;
}
