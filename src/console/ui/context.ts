import { createContext } from 'preact';
import { useContext } from 'preact/hooks';
import type { ApiClient } from '../../client';

export const ApiContext = createContext<ApiClient | null>(null);

/** The typed client of this tab (main.tsx makes it, with the tab's key). */
export function useApi(): ApiClient {
  const api = useContext(ApiContext);
  if (!api) throw new Error('useApi outside ApiContext');
  return api;
}
