import { AppError } from '../errors';
import { isStorableText } from '../storable-text';

/** Where a page of a newest-first list ends: the last row's timestamp and id. */
export interface PageCursor {
  at: Date;
  id: string;
}

/** The opaque cursor of a list (`nextCursor`): base64url of `{at, id}`. */
export function encodeCursor(cursor: PageCursor): string {
  return Buffer.from(JSON.stringify({ at: cursor.at.toISOString(), id: cursor.id })).toString(
    'base64url',
  );
}

/** A `cursor` parameter back into its place; anything not made by `encodeCursor` is a 400. */
export function decodeCursor(text: string): PageCursor {
  const invalid = () => new AppError('invalid_cursor', 'cursor is not a nextCursor of this list');
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (typeof parsed !== 'object' || parsed === null) throw invalid();
  const { at, id } = parsed as Record<string, unknown>;
  if (typeof at !== 'string' || typeof id !== 'string' || !isStorableText(id)) throw invalid();
  const date = new Date(at);
  if (Number.isNaN(date.getTime()) || date.toISOString() !== at) throw invalid();
  return { at: date, id };
}
