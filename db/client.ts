import { isPostgresUrl } from './path';
import { openPostgresStore } from './postgres/client';
import { openSqliteStore } from './sqlite/client';
import type { Store, WebhookTargets } from './store';

/**
 * Opens the store `DATABASE_URL` names and applies pending migrations. Only `db/` knows the
 * engine: services and jobs get a `Store`.
 */
export async function openStore(
  databaseUrl: string,
  opts: { poolSize?: number; webhooks?: WebhookTargets } = {},
): Promise<Store> {
  return isPostgresUrl(databaseUrl)
    ? openPostgresStore(databaseUrl, opts.poolSize ?? 10, opts.webhooks)
    : openSqliteStore(databaseUrl, opts.webhooks);
}
