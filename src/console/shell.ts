import { CONSOLE_PATH } from './links';

/**
 * The console's one page: a mount point, the stylesheet and the script, and whether this server
 * wants an API key (so the console asks for one before its first call instead of meeting a 401).
 */
export function renderShell(opts: { version: string; apiKeys: boolean }): string {
  const v = encodeURIComponent(opts.version);
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <meta name="agent-run-api-keys" content="${opts.apiKeys ? 'required' : 'none'}" />
  <title>Console · agent run server</title>
  <link rel="icon" href="data:," />
  <link rel="stylesheet" href="${CONSOLE_PATH}/assets/console.css?v=${v}" />
  <script type="module" src="${CONSOLE_PATH}/assets/console.js?v=${v}"></script>
</head>
<body>
  <div id="console"><noscript>The console needs JavaScript.</noscript></div>
</body>
</html>
`;
}
