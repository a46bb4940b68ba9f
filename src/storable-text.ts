/**
 * Text every store keeps as sent: PostgreSQL's text and jsonb cannot hold U+0000, and an
 * unpaired surrogate has no UTF-8 form (it would be stored as U+FFFD). Rejected on either
 * engine, so a client sees one rule whichever store runs.
 */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && text.isWellFormed();
}

/** Every string in a JSON value, keys too, is storable text. */
export function isStorableValue(value: unknown): boolean {
  if (typeof value === 'string') return isStorableText(value);
  if (Array.isArray(value)) return value.every(isStorableValue);
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).every(
      ([key, item]) => isStorableText(key) && isStorableValue(item),
    );
  }
  return true;
}
