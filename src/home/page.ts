import { BOARD_PATH } from '../admin/board';
import { CONSOLE_PATH } from '../console/links';

/** A surface the front door links to, and who may open it. */
export interface Surface {
  path: string;
  name: string;
  what: string;
  /** `open`; `admin`: HTTP basic auth (ADMIN_USER / ADMIN_PASSWORD); `api-key`: API_KEYS. */
  access: 'open' | 'admin' | 'api-key';
}

/** Every surface the server can have, in the order the page lists them. */
export const SURFACES: Surface[] = [
  {
    path: CONSOLE_PATH,
    name: 'Console',
    what: 'the web console over runs and threads',
    access: 'api-key',
  },
  {
    path: '/swagger',
    name: 'Swagger',
    what: 'the API docs: every route with its schemas and errors, and “Try it out”',
    access: 'open',
  },
  {
    path: BOARD_PATH,
    name: 'Bull Board',
    what: 'the runs queue: each job’s story, progress and result; retry a failed run',
    access: 'admin',
  },
  { path: '/metrics', name: 'Metrics', what: 'Prometheus text', access: 'admin' },
  { path: '/health', name: 'Health', what: 'liveness; readiness is /ready', access: 'open' },
];

/**
 * The front door: one small page, self-contained (no script, no outside request, not even a
 * favicon), that says which version runs and links to the surfaces this server serves, each
 * with who may open it.
 */
export function renderFrontDoor(opts: {
  version: string;
  surfaces: Surface[];
  /** API_KEYS is set: /api (and the console) want a key. */
  apiKeys: boolean;
}): string {
  const access = (surface: Surface) => {
    if (surface.access === 'admin') return 'basic auth: ADMIN_USER / ADMIN_PASSWORD';
    if (surface.access === 'api-key') {
      return opts.apiKeys ? 'needs a key from API_KEYS' : 'open: API_KEYS is empty';
    }
    if (surface.path === '/swagger' && opts.apiKeys) {
      return 'open; “Try it out” needs a key from API_KEYS (Authorize)';
    }
    return 'open';
  };
  const rows = opts.surfaces
    .map(
      (surface) => `    <li><a href="${escapeHtml(surface.path)}">${escapeHtml(surface.name)}</a>
      <code>${escapeHtml(surface.path)}</code><span>${escapeHtml(surface.what)}</span>
      <small>${escapeHtml(access(surface))}</small></li>`,
    )
    .join('\n');
  const api = opts.apiKeys
    ? 'Every <code>/api</code> call needs <code>Authorization: Bearer &lt;key&gt;</code> with a key from <code>API_KEYS</code>.'
    : '<code>API_KEYS</code> is empty: <code>/api</code> is open to anyone who reaches this server.';
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>Agent run server ${escapeHtml(opts.version)}</title>
  <link rel="icon" href="data:," />
  <style>
    body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 3rem auto; padding: 0 1rem; color: #1d2433; }
    h1 { font-size: 1.5rem; margin-bottom: 0; }
    .version { color: #5b6578; margin-top: 0; }
    ul { list-style: none; padding: 0; }
    li { border-top: 1px solid #e2e5eb; padding: 0.75rem 0; display: grid; grid-template-columns: 11rem 1fr; gap: 0 1rem; }
    li a { font-weight: 600; }
    li code { color: #5b6578; }
    li span, li small { grid-column: 2; }
    li small { color: #5b6578; }
  </style>
</head>
<body>
  <h1>Agent run server</h1>
  <p class="version">version ${escapeHtml(opts.version)}</p>
  <p>Post chat messages to <code>/api/chat/messages</code>; each one starts a run of the model and its tools.</p>
  <ul>
${rows}
  </ul>
  <p>${api}</p>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] ?? c,
  );
}
