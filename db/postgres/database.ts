import type { PostgresJsDatabase } from 'drizzle-orm/postgres-js';
import type postgres from 'postgres';

/**
 * The drizzle handle the queries take. No relational schema: the queries use the builders only,
 * and a schema costs every transaction.
 */
export type Db = PostgresJsDatabase;
/** A transaction of `Db`: what the queries inside `db.transaction` write through. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** The driver under `db`: what the hot writes send their SQL to (see group-commit.ts). */
export const clientOf = (db: Db): postgres.Sql => (db as Db & { $client: postgres.Sql }).$client;
