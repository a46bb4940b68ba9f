/**
 * Whether PostgreSQL can hold this text at all (no U+0000, no unpaired surrogate). An id that it
 * cannot hold was never stored: a lookup by it finds nothing, as it does on SQLite, rather than
 * failing. (Ingress rejects such text before it is stored.)
 */
export const storable = (text: string) => !text.includes('\u0000') && text.isWellFormed();
