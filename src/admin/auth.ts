import { createHash, timingSafeEqual } from 'node:crypto';
import type { Config } from '../config';
import { AppError } from '../errors';

/** Compares secrets in constant time (hashing first evens out the lengths). */
export function safeEqual(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

const unauthorized = (challenge: string, message: string) => {
  const body = new AppError('unauthorized', message).toBody();
  return Response.json(body, { status: 401, headers: { 'www-authenticate': challenge } });
};

/**
 * One gate in front of routing: `/admin/*` and `/metrics` need HTTP basic auth; `/api/*` needs a
 * bearer key when API_KEYS is set. `/health`, `/ready` and `/swagger` stay open. Returns the 401
 * to send, or undefined to let the request through. Credentials are never echoed or logged.
 */
export function createAuthGate(config: Pick<Config, 'admin' | 'apiKeys'>) {
  const { user, password } = config.admin;
  const keys = config.apiKeys;
  return (request: Request, path: string): Response | undefined => {
    if (path.startsWith('/admin') || path === '/metrics') {
      const header = request.headers.get('authorization') ?? '';
      const [scheme, encoded] = header.split(' ');
      if (scheme?.toLowerCase() === 'basic' && encoded) {
        const decoded = Buffer.from(encoded, 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        const ok =
          colon >= 0 &&
          safeEqual(decoded.slice(0, colon), user) &&
          safeEqual(decoded.slice(colon + 1), password);
        if (ok) return undefined;
      }
      return unauthorized(
        'Basic realm="agent-run admin", charset="UTF-8"',
        'admin credentials required (HTTP basic auth: ADMIN_USER / ADMIN_PASSWORD)',
      );
    }
    if (keys.length > 0 && path.startsWith('/api/')) {
      const header = request.headers.get('authorization') ?? '';
      const match = /^Bearer\s+(.+)$/i.exec(header);
      const token = match?.[1]?.trim();
      // Check every key so the time taken does not tell which one nearly matched.
      let ok = false;
      for (const key of keys) if (token && safeEqual(token, key)) ok = true;
      if (ok) return undefined;
      return unauthorized(
        'Bearer realm="agent-run api"',
        token ? 'invalid API key' : 'an API key is required: Authorization: Bearer <key>',
      );
    }
    return undefined;
  };
}
