import type { Config } from '../config';

/** Whether a delivery to `url` may be sent: WEBHOOK_URL, or a message's own allowed URL. */
export function isWebhookTarget(config: Pick<Config, 'webhooks'>, url: string): boolean {
  return url === config.webhooks.url || isAllowedMessageWebhook(config, url);
}

/**
 * Whether a message may name `url` as its own webhook: a match of a WEBHOOK_ALLOWED_URLS prefix
 * — the same scheme, host and port, and a path that equals the prefix's or continues it after a
 * `/` (`https://hooks.example.com/a` admits `/a` and `/a/b`, not `/ab`). A URL with credentials
 * in it never matches; with no prefixes, nothing does.
 */
export function isAllowedMessageWebhook(config: Pick<Config, 'webhooks'>, url: string): boolean {
  const target = URL.parse(url);
  if (!target || target.username || target.password) return false;
  return config.webhooks.allowedUrls.some((prefix) => matchesPrefix(target, prefix));
}

function matchesPrefix(target: URL, prefix: string): boolean {
  const allowed = URL.parse(prefix);
  if (!allowed) return false;
  if (target.protocol !== allowed.protocol || target.host !== allowed.host) return false;
  const path = allowed.pathname.replace(/\/+$/, '');
  return path === '' || target.pathname === path || target.pathname.startsWith(`${path}/`);
}

/** A URL fit for a log line: its origin and path, no query (it may carry a token). */
export function loggableUrl(url: string): string {
  const parsed = URL.parse(url);
  return parsed ? `${parsed.origin}${parsed.pathname}` : '(not a URL)';
}
