import { useEffect, useState } from 'preact/hooks';
import { CONSOLE_PATH } from '../links';

export type Route =
  | { page: 'home' }
  | { page: 'thread'; threadId: string }
  | { page: 'run'; runId: string };

export const threadPath = (threadId: string) =>
  `${CONSOLE_PATH}/threads/${encodeURIComponent(threadId)}`;

/** The console's deep links: `/console`, `/console/threads/<id>`, `/console/runs/<id>`. */
export function parseRoute(pathname: string): Route {
  const rest = pathname.startsWith(CONSOLE_PATH) ? pathname.slice(CONSOLE_PATH.length) : '';
  const [, kind, id] = rest.split('/');
  if (kind === 'threads' && id) return { page: 'thread', threadId: decodeURIComponent(id) };
  if (kind === 'runs' && id) return { page: 'run', runId: decodeURIComponent(id) };
  return { page: 'home' };
}

export function navigate(path: string) {
  if (location.pathname === path) return;
  history.pushState(null, '', path);
  dispatchEvent(new PopStateEvent('popstate'));
}

/** The current route; links and `navigate` change it without reloading the page. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.pathname));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.pathname));
    addEventListener('popstate', update);
    return () => removeEventListener('popstate', update);
  }, []);
  return route;
}

/** A same-origin link that moves within the console; a modified click opens a new tab as usual. */
export function onLinkClick(event: MouseEvent) {
  if (event.defaultPrevented || event.button !== 0) return;
  if (event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const href = (event.currentTarget as HTMLAnchorElement).getAttribute('href');
  if (!href) return;
  event.preventDefault();
  navigate(href);
}
