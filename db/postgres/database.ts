import type { BunSQLDatabase } from 'drizzle-orm/bun-sql';
import { hasErrorCode } from '../store';

/**
 * The drizzle handle the queries take. No relational schema: the queries use the builders only,
 * and a schema costs every transaction.
 */
export type Db = BunSQLDatabase;
/** A transaction of `Db`: what the queries inside `db.transaction` write through. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** The driver under `db`: what the hot writes send their SQL to (see group-commit.ts). */
export const clientOf = (db: Db): Bun.SQL => (db as Db & { $client: Bun.SQL }).$client;

/**
 * The server is down or unreachable: the driver's codes for a connection lost, refused or timed
 * out, the socket's own, and PostgreSQL's connection exceptions (SQLSTATE class 08, in a server
 * error's `errno`) and shutdown states (57P01–57P03).
 */
export const UNAVAILABLE =
  /^(ERR_POSTGRES_CONNECTION_(CLOSED|REFUSED|TIMEOUT|FAILED)|ERR_POSTGRES_(IDLE|LIFETIME)_TIMEOUT|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|ENOTFOUND|08...|57P0[123])$/;

/** Whether `error` means the database is not to be had (see `UNAVAILABLE`). */
export const lostConnection = (error: unknown) => hasErrorCode(error, UNAVAILABLE);
