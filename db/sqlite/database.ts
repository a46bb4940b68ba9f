import type { drizzle } from 'drizzle-orm/bun-sqlite';
import type * as schema from './schema';

/** The drizzle handle the queries take: bun:sqlite with the schema. */
export type Db = ReturnType<typeof drizzle<typeof schema>>;
