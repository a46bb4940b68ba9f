import { type ApiClient, createApiClient } from '../../client';

const KEY = 'agent-run-console.api-key';

/** Whether this server wants an API key: the shell says so (console/shell.ts). */
export const keyRequired =
  document.querySelector('meta[name="agent-run-api-keys"]')?.getAttribute('content') === 'required';

/** The key is kept for this tab only (sessionStorage): closing the tab forgets it. */
export const storedKey = () => sessionStorage.getItem(KEY) ?? undefined;
export const storeKey = (key: string) => sessionStorage.setItem(KEY, key);
export const forgetKey = () => sessionStorage.removeItem(KEY);

/** Headers for the calls the typed client does not make (the feeds). */
export function authHeaders(): Record<string, string> {
  const key = storedKey();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/**
 * The typed client (src/client/), over this origin, with the tab's key. `onUnauthorized` is told
 * of any 401, so the console can ask for a key again.
 */
export function createConsoleApi(onUnauthorized: () => void): ApiClient {
  const api = createApiClient({ baseUrl: location.origin, apiKey: storedKey() });
  api.use({
    onResponse({ response }) {
      if (response.status === 401) onUnauthorized();
      return response;
    },
  });
  return api;
}

/** An API error body's `code: message`, or the status when there is none. */
export function errorText(error: unknown, response?: Response): string {
  const body = error as { error?: { code?: string; message?: string } } | undefined;
  if (body?.error?.code) return `${body.error.code}: ${body.error.message ?? ''}`;
  return `HTTP ${response?.status ?? '?'}`;
}
